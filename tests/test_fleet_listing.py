"""fieldsafe.fleetlisting against a real EmulatorServer: all pages, 429 back-off, partial listings, cache, offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe import cloud, fleetlisting
from fieldsafe.cloud import CloudConfig, ParticleCloud
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.faults import make_rule
from fleet_helpers import TOKEN, fleet_state

MIX = (("2.3.1", 54), ("4.0.2", 900), ("6.3.4", 46))


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(fleet_state(MIX, stale=5, updates_disabled=3), tokens=[TOKEN]) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path, sleeps: list[float]) -> ParticleCloud:
    return ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=tmp_path / "cache", sleep=sleeps.append, timeout=5)


def test_lists_every_page_with_per_page_100_and_a_stable_sort(client: ParticleCloud, emu: EmulatorServer) -> None:
    listing = fleetlisting.list_fleet(client, "trackers")
    assert listing.complete and listing.listed == 1000 and listing.expected == 1000
    assert listing.platform_id == 13 and listing.product_id == 9001
    assert listing.histogram.versions() == [("2.3.1", 54), ("4.0.2", 900), ("6.3.4", 46)]
    queries = [r.query for r in emu.seen("/v1/products/trackers/devices")]
    assert len(queries) == 10
    assert all(q["per_page"] == ["100"] and q["sortAttr"] == ["deviceId"] and q["sortDir"] == ["asc"] for q in queries)
    assert listing.requests <= 10 + 2  # pages + product + firmware list
    assert len(listing.histogram.buckets) < 20  # aggregated, not 1,000 device objects


def test_429_makes_every_worker_wait_for_retry_after(client: ParticleCloud, emu: EmulatorServer, sleeps: list[float]):
    emu.faults.add(make_rule({"pattern": "/v1/products/*/devices", "kind": "rate_limit", "count": 4, "retry_after": 7}))
    listing = fleetlisting.list_fleet(client, "trackers", sleep=sleeps.append)
    assert listing.complete and listing.listed == 1000
    assert sleeps and max(sleeps) <= 7.0 and max(sleeps) > 5.0  # Retry-After honoured (not the 0.5 s back-off)


def test_a_page_that_keeps_failing_is_reported_missing(client: ParticleCloud, emu: EmulatorServer, sleeps: list[float]):
    def break_after_first_page(done: int, total: int) -> None:
        if done == 1:  # page 1 arrived; from now on the endpoint fails for good
            emu.faults.add(make_rule({"pattern": "/v1/products/*/devices", "kind": "error", "status": 503}))

    listing = fleetlisting.list_fleet(client, "trackers", sleep=sleeps.append, progress=break_after_first_page)
    assert not listing.complete
    assert listing.listed == 100 and listing.expected == 1000
    assert listing.missing_pages == tuple(range(2, 11))
    text = listing.missing_text()
    assert "pages 2, 3" in text and "900 devices not listed" in text and "server error" in text


def test_source_caches_then_serves_offline_with_its_age(emu: EmulatorServer, tmp_path: Path) -> None:
    config = CloudConfig(emu.url, TOKEN)
    source = fleetlisting.FleetSource(config, cache_dir=tmp_path / "fleet")
    first = source.get("trackers")
    assert first.source == "cloud" and first.complete
    again = source.get("trackers")  # fresh cache: no new listing
    assert again.source == "cache" and again.cache_reason == "listed recently"
    assert again.histogram.buckets == first.histogram.buckets
    assert source.get("9001").source == "cache"  # saved under the id and the slug
    emu.faults.add(make_rule({"pattern": "*", "kind": "drop"}))
    quick = ParticleCloud(config, cache_dir=tmp_path / "cache", sleep=lambda _s: None, timeout=5)
    offline = fleetlisting.FleetSource(config, cache_dir=tmp_path / "fleet", max_age=0, cloud=quick).get("trackers")
    assert offline.source == "cache" and offline.age_seconds is not None
    assert "could not be reached" in offline.cache_reason


def test_not_found_is_never_answered_from_the_cache(emu: EmulatorServer, tmp_path: Path) -> None:
    source = fleetlisting.FleetSource(CloudConfig(emu.url, TOKEN), cache_dir=tmp_path / "fleet")
    with pytest.raises(cloud.NotFound):
        source.get("no-such-product")
    with pytest.raises(LookupError):
        source.get("no-such-product", offline=True)


def test_cache_file_holds_the_histogram_not_the_devices(emu: EmulatorServer, tmp_path: Path) -> None:
    fleetlisting.FleetSource(CloudConfig(emu.url, TOKEN), cache_dir=tmp_path / "fleet").get("trackers")
    files = list((tmp_path / "fleet").glob("*.json"))
    assert files
    body = json.loads(files[0].read_text())
    assert body["schema"] == fleetlisting.CACHE_SCHEMA and "devices" not in body
    assert TOKEN not in files[0].read_text()
    assert sum(n for _, n in body["histogram"]["buckets"]) == 1000
