"""Flycheck-style scheduling on asyncio: start at once, one trailing run, generations.

Why this exists: a cloud compile takes seconds, editors save in bursts ("Save All", format on save)
and ``didSave`` is a notification the client can never cancel. So the server keeps its own
bookkeeping, after rust-analyzer's flycheck actor (see docs/lsp.md, "Scheduling"):

* an idle scheduler **starts the run at once** (no coalescing window: a lone save, and a cache hit,
  must not wait for saves that never come);
* a request that arrives while a run is pending or in progress only bumps the **generation** and
  marks **one trailing run**: however many saves arrive meanwhile, they cost one more run, which
  starts as soon as the current one ends and sees the latest files;
* the runner receives its generation and must publish only while ``is_current(gen)`` holds: the run
  a newer request overtook stops before its next network step (``should_stop``) and its late
  result is dropped, never published.

Nothing here knows about compiling; the runner is injected, which keeps this unit-testable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Runner = Callable[[int], Awaitable[None]]


class GenerationScheduler:
    """One per project. ``request()`` starts the runner now, or queues one trailing run."""

    def __init__(self, runner: Runner, name: str = "compile") -> None:
        self._runner = runner
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._trailing = False
        self.generation = 0
        self.runs = 0  # runs started (for tests and the benchmark)

    def request(self, delay_s: float = 0.0) -> int:
        """Ask for a run of the newest inputs; returns its generation.

        Idle: start now (after ``delay_s``, 0 unless the user configured a wait). Busy (pending or
        running): the newest generation makes the current run stale and one trailing run follows it.
        """
        self.generation += 1
        if self.busy:
            self._trailing = True
        else:
            self._trailing = False
            self._task = asyncio.get_running_loop().create_task(
                self._drain(max(0.0, delay_s)), name=f"{self._name}-{self.generation}"
            )
        return self.generation

    def cancel(self) -> None:
        """Cancel the pending/running run (and any trailing one) and make any in-flight result stale."""
        self.generation += 1
        self._trailing = False
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def is_current(self, gen: int) -> bool:
        """True while no newer request (or cancel) has happened since ``gen`` was issued."""
        return gen == self.generation

    @property
    def busy(self) -> bool:
        """Whether a run is pending or in progress."""
        return self._task is not None and not self._task.done()

    async def wait_idle(self) -> None:
        """Wait until the current task (and its trailing run) finished; used by shutdown and tests."""
        while self._task is not None and not self._task.done():
            task = self._task
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def _drain(self, delay_s: float) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        while True:
            self._trailing = False  # what arrived so far is covered by this run (it reads the newest inputs)
            gen = self.generation
            self.runs += 1
            try:
                await self._runner(gen)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one run must not kill later runs
                log.exception("%s run %d failed", self._name, gen)
            if not self._trailing:
                return


class KeyedDebouncer:
    """Debounce per key (a document URI): only the last call within ``delay_s`` runs.

    Used for API-availability linting as the user types: each keystroke replaces the pending
    lint of that document, so a burst of edits costs one lint.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def call(self, key: str, delay_s: float, func: Callable[[], Awaitable[None]]) -> None:
        """Schedule ``func`` for ``key`` after ``delay_s``, cancelling the previous one for that key."""
        old = self._tasks.pop(key, None)
        if old is not None and not old.done():
            old.cancel()
        self._tasks[key] = asyncio.get_running_loop().create_task(self._later(key, delay_s, func))

    def cancel(self, key: str) -> None:
        """Drop the pending call for ``key`` (e.g. the document was closed)."""
        task = self._tasks.pop(key, None)
        if task is not None and not task.done():
            task.cancel()

    def cancel_all(self) -> list[asyncio.Task[None]]:
        """Cancel every pending call (server shutdown); returns the tasks so the caller can await them."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        return tasks

    async def _later(self, key: str, delay_s: float, func: Callable[[], Awaitable[None]]) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        try:
            await func()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("debounced call for %s failed", key)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]
