"""Work-done progress for feature commands: fresh token, cancellable, always ended.

Why its own helper: long feature commands (a flash that waits for the device, a Device OS update that
sends module after module) must show ``$/progress`` and honour the client's Cancel button, and every
one must end its progress even when it fails. The rules follow lsp-engineering.md §3.2: a fresh uuid
token per run (pygls never forgets tokens), no progress when the client lacks ``window.workDoneProgress``,
``end`` in ``finally`` (use it as an ``async with``).

Cancellation is cooperative: :attr:`FeatureProgress.cancelled` turns true when the client pressed
Cancel (or :meth:`cancel` was called), so the engine's ``should_stop`` callback can read it from a
worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

from lsprotocol import types

log = logging.getLogger(__name__)


class FeatureProgress:
    """One progress run; ``async with host.progress("fieldsafe: flashing") as progress: ...``."""

    def __init__(self, server: Any, title: str, *, cancellable: bool = True, enabled: bool = True) -> None:
        self.server = server  # a pygls LanguageServer (its work_done_progress)
        self.title = title
        self.cancellable = cancellable
        self.enabled = enabled
        self.token: str | None = None
        self.ending = "done"
        self._cancelled = threading.Event()  # read from worker threads
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def should_stop(self) -> bool:
        """For engine callbacks (thread-safe)."""
        return self._cancelled.is_set()

    async def begin(self, message: str | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        if not self.enabled:
            return
        token = str(uuid.uuid4())
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused: run without progress
            log.debug("progress create failed: %s", exc)
            return
        self.token = token
        self.server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(title=self.title, cancellable=self.cancellable, message=message, percentage=0),
        )
        future = self.server.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda _f: self._cancelled.set())

    def report(self, message: str, percentage: int | None = None) -> None:
        """Thread-safe: may be called from the engine's worker thread."""
        if self.token is None:
            return
        token = self.token
        params = types.WorkDoneProgressReport(message=message, percentage=percentage)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self.server.work_done_progress.report, token, params)
        else:
            self.server.work_done_progress.report(token, params)

    def end(self, message: str | None = None) -> None:
        if self.token is not None:
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message or self.ending))
            self.token = None

    async def __aenter__(self) -> FeatureProgress:
        await self.begin()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.ending = "cancelled" if issubclass(exc_type, asyncio.CancelledError) or self.cancelled else "failed"
        elif self.cancelled:
            self.ending = "cancelled"
        self.end()
