"""Fleet listings for the language server: off the event loop, coalesced, kept in memory, refreshable.

Why: a product listing is up to 1,000 requests, so the editor must never list on a keystroke. A listing
is kept for ``ttl_s`` (and on disk by ``fieldsafe.fleetlisting``, which also answers offline with its
age); concurrent checks for the same product wait for one listing instead of starting their own; the
refresh command drops the memory and lists again. Cancelled at shutdown through the listing's event.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from fieldsafe import cloud as cloudmod
from fieldsafe import fleetcheck
from fieldsafe.checking import Lookup, TargetRef


class FleetResolver:
    """One listing per (API URL, product, offline) at a time; answers ``checking.Lookup`` like devices do."""

    def __init__(self, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        self._memo: dict[tuple[str | None, bool, str], tuple[float, Lookup]] = {}
        self._inflight: dict[tuple[str | None, bool, str], asyncio.Task[Lookup]] = {}
        self._cancel = threading.Event()

    def invalidate(self, product: str | None = None) -> None:
        """Forget listings (all, or one product's) so the next check lists again."""
        for key in [k for k in self._memo if product is None or k[2] == product]:
            del self._memo[key]

    def last(self, product: str) -> Lookup | None:
        """The newest listing held for ``product`` (any API), for hover and views; never waits."""
        hits = [v for k, v in self._memo.items() if k[2] == product]
        return max(hits, key=lambda v: v[0])[1] if hits else None

    def shutdown(self) -> None:
        self._cancel.set()

    async def fleet(
        self,
        ref: TargetRef,
        client: cloudmod.ParticleCloud | None,
        *,
        api_url: str | None,
        offline: bool,
        refresh: bool = False,
        progress: Any = None,
    ) -> Lookup:
        """The product's listing as a Lookup (``listing`` set), or the error; one listing per key at a time."""
        if client is None:
            return Lookup(
                None, None, cloudmod.NotLoggedIn(f"no Particle Cloud configured; {cloudmod.NotLoggedIn.hint}")
            )
        key = (api_url, offline, ref.name)
        hit = self._memo.get(key)
        if not refresh and hit is not None and time.monotonic() - hit[0] < self.ttl_s and hit[1].error is None:
            return hit[1]
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(self._list(key, ref, client, offline, refresh, progress))
            self._inflight[key] = running
        return await asyncio.shield(running)

    async def _list(
        self,
        key: tuple[str | None, bool, str],
        ref: TargetRef,
        client: Any,
        offline: bool,
        refresh: bool,
        progress: Any = None,
    ) -> Lookup:
        """List in a worker thread; with ``progress`` (a FeatureProgress factory), pages are reported and the
        user's cancel (or shutdown) stops the listing."""
        reporter = None
        if progress is not None and await asyncio.to_thread(
            fleetcheck.needs_listing, client, ref.name, offline=offline, refresh=refresh
        ):
            reporter = progress()
            await reporter.begin(f"Listing product {ref.name}")
        stop = _Stop(self._cancel, reporter)

        def pages(done: int, total: int) -> None:
            if reporter is not None:
                reporter.report(f"page {done:,} of {total:,}", round(100 * done / max(total, 1)))

        try:
            result = await asyncio.to_thread(
                fleetcheck.lookup_fleet, client, ref, offline=offline, refresh=refresh, cancel=stop, progress=pages
            )
        finally:
            self._inflight.pop(key, None)
            if reporter is not None:
                reporter.end()
        self._memo[key] = (time.monotonic(), result)
        return result


class _Stop:
    """``is_set()`` for the listing: the server is shutting down, or the user cancelled the progress."""

    def __init__(self, shutdown: threading.Event, reporter: Any) -> None:
        self.shutdown = shutdown
        self.reporter = reporter

    def is_set(self) -> bool:
        return self.shutdown.is_set() or bool(self.reporter is not None and self.reporter.should_stop())


async def lookup(ls: Any, project: Any, ref: TargetRef, *, refresh: bool = False) -> Lookup:
    """The project's fleet target through the server's resolver (its API URL and offline option)."""
    options = project.options
    try:
        client = ls.devices.cloud(options.api_url)
    except cloudmod.CloudError as exc:
        return Lookup(None, None, exc)
    result = await ls.fleets.fleet(
        ref,
        client,
        api_url=options.api_url,
        offline=options.offline,
        refresh=refresh,
        progress=lambda: ls.progress(f"fieldsafe: listing product {ref.name}"),
    )
    if result.listing is None and result.error is not None:
        ls.report_failure(result.error, f"listing product '{ref.name}'")
    return result
