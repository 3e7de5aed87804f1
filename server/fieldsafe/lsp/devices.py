"""Device lookups for the language server: cloud calls off the event loop, cached, offline-aware.

Why a separate object: every pin check needs "what does field-unit-7 run?", and asking the cloud on
every keystroke in ``settings.json`` would be slow and would burn the rate limit. So answers are
kept in memory for ``ttl_s``; ``fieldsafe.server.refreshDevices`` drops them. When the lookup fails
for any reason but "no such device" (offline, timeout, 401, 429, 5xx, a bad body), or the ``offline``
option is on, the last known state (the cloud module's on-disk cache, else the last live answer of
this process) is used together with its age, which the diagnostics then mention.

All blocking ``requests`` calls run in a worker thread via :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fieldsafe import cloud as cloudmod
from fieldsafe.checking import Lookup, lookup_device

log = logging.getLogger(__name__)


class DeviceResolver:
    """Resolves device names/ids through one :class:`~fieldsafe.cloud.ParticleCloud`.

    The client comes only from the environment and particle-cli's profile (never from workspace
    settings: a cloned repository's ``.vscode/settings.json`` must not choose where the token goes),
    and is rebuilt when the profile files change (a new ``particle login``) or after a 401.
    """

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._client: cloudmod.ParticleCloud | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._memo: dict[tuple[bool, str], tuple[float, Lookup]] = {}
        self._last_good: dict[str, tuple[float, Lookup]] = {}  # name -> (wall time, live answer)

    def cloud(self, api_url: str | None = None) -> cloudmod.ParticleCloud:
        """The client from PARTICLE_API_URL / the particle-cli profile; raises ConfigError.

        ``api_url`` is accepted for older callers and ignored on purpose (see the class docstring).
        """
        stamp = cloudmod.credentials_stamp()
        if self._client is None or stamp != self._stamp:
            # the editor wants an answer soon: fewer, shorter retries than the CLI, within one deadline
            self._client = cloudmod.ParticleCloud(
                cloudmod.resolve_config(), deadline=20.0, max_retries=2, backoff=0.25, max_total_wait=5.0
            )
            if self._stamp is not None:
                log.info("particle-cli credentials changed: using the new login")
            self._stamp = stamp
        return self._client

    def forget_credentials(self) -> None:
        """The cloud rejected the token: build a new client (re-reading the profile) next time."""
        self._client = None

    def invalidate(self) -> None:
        """Forget cached answers (the user asked to refresh)."""
        self._memo.clear()

    async def device(self, name: str, *, api_url: str | None = None, offline: bool) -> Lookup:
        """The device named ``name``: live when possible, else the last known state with its age."""
        key = (offline, name)
        hit = self._memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s and hit[1].error is None:
            cached = hit[1]
            if cached.age_seconds is None:
                return cached
            # an offline answer ages while we keep it
            return Lookup(cached.raw, cached.age_seconds + (time.monotonic() - hit[0]))
        try:
            client = self.cloud()
        except cloudmod.CloudError as exc:
            return self._fallback(name, Lookup(None, None, exc))
        result = await asyncio.to_thread(lookup_device, client, name, offline=offline)
        if isinstance(result.error, cloudmod.TokenExpired):
            self.forget_credentials()
        if result.raw is not None and result.error is None and result.age_seconds is None:
            self._last_good[name] = (time.time(), result)
        result = self._fallback(name, result)
        self._memo[key] = (time.monotonic(), result)
        return result

    def _fallback(self, name: str, result: Lookup) -> Lookup:
        """A failed lookup without a cached state on disk (the cache may be unwritable) falls back to
        the last live answer this process saw, with its age: a fault never erases a known state."""
        if result.raw is not None or result.error is None or cloudmod.is_absence(result.error):
            return result
        seen = self._last_good.get(name)
        if seen is None:
            return result
        return Lookup(seen[1].raw, max(0.0, time.time() - seen[0]), result.error)

    async def devices(self, *, api_url: str | None = None, offline: bool) -> tuple[list[dict[str, Any]], float | None]:
        """All devices of the account and the age of the list (None = live); raises CloudError."""
        client = self.cloud()
        if offline:
            hit = await asyncio.to_thread(client.cached, "devices")
            if hit is None:
                raise cloudmod.Offline("offline mode and no cached device list", host=client.config.host)
            return list(hit[0]), hit[1]
        try:
            return await asyncio.to_thread(client.list_devices_or_cached)
        except cloudmod.TokenExpired:
            self.forget_credentials()
            raise
