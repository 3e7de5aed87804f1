"""fieldsafe's own fleet listing against the emulator's REAL per-client rate limit and a generated fleet.

The fleet listing tests inject 429 faults; here the budget is the emulator's sliding window (RateLimit) and
the Retry-After it computes, so the client's shared back-off and the server's accounting meet for real.
"""

from __future__ import annotations

import time
from pathlib import Path

from fieldsafe import fleetlisting
from fieldsafe.cloud import CloudConfig, ParticleCloud
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.state import RateLimit, parse_state

TOKEN = "listing-token"
SPEC = {
    "seed": 21, "devices": 2500, "platform": "boron",
    "device_os": {"2.3.0": 20, "4.0.2": 60, "6.1.1": 20}, "offline": 0.1,
}  # fmt: skip


def test_fleet_listing_completes_through_the_rate_limit(tmp_path: Path) -> None:
    state = parse_state({"tokens": [TOKEN], "fleets": [SPEC]}, "<listing>")
    with EmulatorServer(state, rate_limit=RateLimit(requests=10, window=1.0)) as emu:
        client = ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=tmp_path / "cache", sleep=time.sleep, timeout=10)
        started = time.monotonic()
        listing = fleetlisting.list_fleet(client, "boron-fleet", concurrency=4)
        took = time.monotonic() - started
        limited = [r for r in emu.seen("/v1/products/*") if r.status == 429]
    assert listing.complete and listing.listed == 2500 == listing.expected
    by_version = dict(listing.histogram.versions())
    assert by_version == {v: sum(1 for d in state.devices if d.system_firmware_version == v) for v in by_version}
    assert limited, "the budget (10 requests / s) must have been hit by 25 pages"
    assert took >= 1.0  # it waited out the window rather than giving up pages
