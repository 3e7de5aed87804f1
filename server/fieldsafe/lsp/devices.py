"""Device lookups for the language server: cloud calls off the event loop, cached, offline-aware.

Why a separate object: every pin check needs "what does field-unit-7 run?", and asking the cloud on
every keystroke in ``settings.json`` would be slow and would burn the rate limit. So answers are
kept in memory for ``ttl_s``; ``fieldsafe.server.refreshDevices`` drops them. When the cloud cannot
be reached (or the ``offline`` option is on) the cloud module's on-disk cache supplies the last known
state together with its age, which the diagnostics then mention.

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
    """Resolves device names/ids through one :class:`~fieldsafe.cloud.ParticleCloud` per API URL."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._clouds: dict[str | None, cloudmod.ParticleCloud] = {}
        self._memo: dict[tuple[str | None, bool, str], tuple[float, Lookup]] = {}
        self._lock = asyncio.Lock()

    def cloud(self, api_url: str | None) -> cloudmod.ParticleCloud:
        """The client for ``api_url`` (None = particle-cli profile / environment); raises ConfigError."""
        client = self._clouds.get(api_url)
        if client is None:
            client = cloudmod.ParticleCloud(cloudmod.resolve_config(explicit_url=api_url))
            self._clouds[api_url] = client
        return client

    def invalidate(self) -> None:
        """Forget cached answers (the user asked to refresh)."""
        self._memo.clear()

    async def device(self, name: str, *, api_url: str | None, offline: bool) -> Lookup:
        """The device named ``name``: live when possible, else the last known state with its age."""
        key = (api_url, offline, name)
        hit = self._memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s and hit[1].error is None:
            cached = hit[1]
            if cached.age_seconds is None:
                return cached
            # an offline answer ages while we keep it
            return Lookup(cached.raw, cached.age_seconds + (time.monotonic() - hit[0]))
        try:
            client = self.cloud(api_url)
        except cloudmod.CloudError as exc:
            return Lookup(None, None, exc)
        result = await asyncio.to_thread(lookup_device, client, name, offline=offline)
        self._memo[key] = (time.monotonic(), result)
        return result

    async def devices(self, *, api_url: str | None, offline: bool) -> tuple[list[dict[str, Any]], float | None]:
        """All devices of the account and the age of the list (None = live); raises CloudError."""
        client = self.cloud(api_url)
        if offline:
            hit = await asyncio.to_thread(client.cached, "devices")
            if hit is None:
                raise cloudmod.Offline("offline mode and no cached device list", host=client.config.host)
            return list(hit[0]), hit[1]
        return await asyncio.to_thread(client.list_devices_or_cached)
