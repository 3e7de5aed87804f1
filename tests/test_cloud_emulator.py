"""The cloud client against a real EmulatorServer on loopback: endpoints, typed errors, retries, cache.

No mocks of requests: every call crosses a real socket. Faults come from the emulator's switchboard,
sleeps are recorded instead of slept so retry tests are instant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe import cloud
from fieldsafe.cloud import CloudConfig, ParticleCloud
from fieldsafe.emulator import EmulatorServer, default_state
from fieldsafe.emulator.state import Device, utcnow
from test_emulator_fakes import FakeCompiler

TOKEN = "t0k3n-under-test-7f3a9c"


@pytest.fixture
def fake() -> FakeCompiler:
    return FakeCompiler()


@pytest.fixture
def emu(fake: FakeCompiler) -> Iterator[EmulatorServer]:
    with EmulatorServer(default_state(), tokens=[TOKEN], compiler=fake) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path, sleeps: list[float]) -> ParticleCloud:
    return ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=tmp_path / "cache", sleep=sleeps.append, timeout=5)


# ---- happy paths ----------------------------------------------------------------------------------


def test_build_targets_shape(client: ParticleCloud) -> None:
    body = client.build_targets()
    assert set(body) == {"targets", "platforms", "default_versions"}
    target = next(t for t in body["targets"] if t["version"] == "0.5.3")
    assert 10 in target["platforms"] and target["firmware_vendor"] == "Particle"
    assert body["platforms"]["Electron"] == 10
    assert body["default_versions"]["10"] == "2.3.1"
    five = next(t for t in body["targets"] if t["version"] == "5.8.0")
    assert five["prereleases"] == five["platforms"]


def test_devices_and_single_device(client: ParticleCloud, emu: EmulatorServer) -> None:
    names = {d["name"] for d in client.list_devices()}
    assert {"field-unit-7", "field-unit-9", "barn-boron"} <= names
    assert "north-field-boron" not in names  # unclaimed product device
    by_name = client.get_device("field-unit-7")
    assert by_name["system_firmware_version"] == "0.5.3" and by_name["cellular"] is True
    assert client.get_device(by_name["id"])["name"] == "field-unit-7"
    record = emu.seen("/v1/devices")[0]
    assert record.auth_scheme == "Bearer" and not record.token_in_query
    assert record.user_agent and record.user_agent.startswith("fieldsafe/")
    assert record.particle_tool == "fieldsafe"


def test_device_os_versions_pages_and_single_lookups(client: ParticleCloud, emu: EmulatorServer) -> None:
    versions = client.device_os_versions(10, per_page=20)
    assert len(emu.seen("/v1/device-os/versions")) > 1, "more than one page was fetched"
    assert len(versions) == len({v["version"] for v in versions})
    assert "0.5.3" in {v["version"] for v in versions}
    assert client.device_os_version("0.5.3", 10)["internal_version"] == 21
    assert client.device_os_version(21, 10)["version"] == "0.5.3"
    assert client.device_os_version("latest", 10)["version"] == "3.3.1"
    with pytest.raises(cloud.NotFound, match=r"Device OS version 9\.9\.9"):
        client.device_os_version("9.9.9", 10)


def test_product_devices_pages_until_total_pages(emu: EmulatorServer, client: ParticleCloud) -> None:
    for i in range(130):
        emu.state.devices.append(
            Device(
                id=f"{i:024x}", name=f"bulk-{i:03d}", platform_id=13, system_firmware_version="4.0.2", cellular=True,
                product_id=31337, online=False, last_heard=utcnow(), owned=False, groups=["bulk"] if i % 2 else [],
            )
        )  # fmt: skip
    everything = client.product_devices("barn-monitors")
    assert len(everything) == 132
    pages = emu.seen("/v1/products/*/devices")
    assert [r.query["page"] for r in pages] == [["1"], ["2"]]
    assert len(client.product_devices(31337, groups=["bulk"])) == 65
    assert {d["name"] for d in client.product_devices(31337, groups=["north-field"])} == {"north-field-boron"}


def test_compile_and_download(client: ParticleCloud, fake: FakeCompiler) -> None:
    files = {"src/app.ino": b"void setup(){}\nvoid loop(){}\n", "lib/x/src/x.h": b"#pragma once\n"}
    result = client.compile(files, 10, "0.5.3")
    assert result["ok"] is True and len(result["binary_id"]) == 24
    assert result["binary_url"] == f"/v1/binaries/{result['binary_id']}"
    assert "text" in result["sizeInfo"]
    assert fake.calls[-1] == (files, 10, "0.5.3")
    data = client.download_binary(result["binary_id"])
    assert data == client.download_binary(result["binary_url"])
    from fieldsafe.modules import parse_module

    assert parse_module(data).dependencies[0].version == 21


def test_compile_latest_uses_catalog_latest(client: ParticleCloud, fake: FakeCompiler) -> None:
    client.compile({"a.ino": b"void setup(){}\n"}, 13, None)
    assert fake.calls[-1][1:] == (13, "6.5.0")


def test_compile_failure_carries_the_log(client: ParticleCloud) -> None:
    with pytest.raises(cloud.CompileFailed) as info:
        client.compile({"src/app.ino": b"void setup(){}\n#error bad\n"}, 10, "0.5.3")
    assert "src/app.ino:2:2: error" in info.value.log
    assert info.value.status == 200  # the emulator answers 200 + ok:false (see emulator/server.py)


def test_unknown_build_target_is_a_bad_request(client: ParticleCloud) -> None:
    with pytest.raises(cloud.BadRequest, match="not available for Electron"):
        client.compile({"a.ino": b""}, 10, "6.1.1")


# ---- typed errors ---------------------------------------------------------------------------------


def test_not_found_names_the_device(client: ParticleCloud) -> None:
    with pytest.raises(cloud.NotFound) as info:
        client.get_device("no-such-unit")
    assert "no-such-unit" in str(info.value) and info.value.resource == "device 'no-such-unit'"


def test_unknown_token_is_token_expired(emu: EmulatorServer, tmp_path: Path) -> None:
    client = ParticleCloud(CloudConfig(emu.url, "not-a-valid-token"), cache_dir=tmp_path)
    with pytest.raises(cloud.TokenExpired, match="particle login"):
        client.list_devices()


def test_token_expiry_fault(emu: EmulatorServer, client: ParticleCloud) -> None:
    emu.faults.set("/v1/devices", "token_expired", count=1)
    with pytest.raises(cloud.TokenExpired, match="expired"):
        client.list_devices()
    assert client.list_devices()


def test_forbidden(emu: EmulatorServer, client: ParticleCloud) -> None:
    emu.faults.set("/v1/products/*", "error", status=403)
    with pytest.raises(cloud.Forbidden, match="product 'barn-monitors'"):
        client.product_devices("barn-monitors")


def test_malformed_json_is_bad_response(emu: EmulatorServer, client: ParticleCloud) -> None:
    emu.faults.set("/v1/devices", "malformed_json", count=1)
    with pytest.raises(cloud.BadResponse, match="malformed JSON"):
        client.list_devices()


def test_truncated_binary_retries_then_fails(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    binary_id = client.compile({"a.ino": b"void setup(){}\n"}, 10, "0.5.3")["binary_id"]
    emu.faults.set("/v1/binaries/*", "truncate", count=1, method="GET")
    assert len(client.download_binary(binary_id)) > 100  # one truncated reply, then a good one
    assert len(sleeps) == 1
    emu.faults.set("/v1/binaries/*", "truncate", method="GET")
    with pytest.raises(cloud.BadResponse, match="truncated"):
        client.download_binary(binary_id)


# ---- retries --------------------------------------------------------------------------------------


def test_5xx_retried_with_backoff(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    emu.faults.set("/v1/devices", "error", count=2, status=503)
    assert client.list_devices()
    assert sleeps == [0.5, 1.0]
    assert [r.status for r in emu.seen("/v1/devices")] == [503, 503, 200]


def test_5xx_gives_up_after_max_retries(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    emu.faults.set("/v1/devices", "error")
    with pytest.raises(cloud.ServerError, match="HTTP 500"):
        client.list_devices()
    assert len(sleeps) == client.max_retries == 3
    assert len(emu.seen("/v1/devices")) == 4


def test_retry_after_is_honoured(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    emu.faults.set("/v1/devices", "rate_limit", count=2, retry_after=7)
    assert client.list_devices()
    assert sleeps == [7.0, 7.0]


def test_retry_after_beyond_budget_raises_rate_limited(
    emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]
) -> None:
    emu.faults.set("/v1/devices", "rate_limit", retry_after=120)
    with pytest.raises(cloud.RateLimited) as info:
        client.list_devices()
    assert info.value.retry_after == 120
    assert sleeps == []


def test_total_wait_is_bounded(emu: EmulatorServer, tmp_path: Path, sleeps: list[float]) -> None:
    client = ParticleCloud(
        CloudConfig(emu.url, TOKEN), cache_dir=tmp_path, sleep=sleeps.append, max_retries=10, max_total_wait=10
    )
    emu.faults.set("/v1/devices", "rate_limit", retry_after=4)
    with pytest.raises(cloud.RateLimited):
        client.list_devices()
    assert sleeps == [4.0, 4.0] and sum(sleeps) <= 10


def test_posts_are_not_retried(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    emu.faults.set("/v1/binaries", "error", count=1, method="POST")
    with pytest.raises(cloud.ServerError):
        client.compile({"a.ino": b""}, 10, "0.5.3")
    assert sleeps == [] and len(emu.seen("/v1/binaries", "POST")) == 1


def test_dropped_connection_is_retried(emu: EmulatorServer, client: ParticleCloud, sleeps: list[float]) -> None:
    emu.faults.set("/v1/devices", "drop", count=1)
    assert client.list_devices()
    assert sleeps == [0.5]


def test_latency_fault_delays_but_answers(emu: EmulatorServer, client: ParticleCloud) -> None:
    emu.faults.set("/v1/build_targets", "latency", delay=0.2, count=1)
    start = time.monotonic()
    client.build_targets()
    assert time.monotonic() - start >= 0.2


def test_timeout_becomes_offline(emu: EmulatorServer, tmp_path: Path, sleeps: list[float]) -> None:
    client = ParticleCloud(
        CloudConfig(emu.url, TOKEN), cache_dir=tmp_path, sleep=sleeps.append, timeout=0.2, max_retries=1
    )
    emu.faults.set("/v1/devices", "latency", delay=1.0)
    with pytest.raises(cloud.Offline) as info:
        client.list_devices()
    assert info.value.host == client.config.host


# ---- offline + cache ------------------------------------------------------------------------------


def test_offline_falls_back_to_cached_devices_with_age(fake: FakeCompiler, tmp_path: Path, sleeps: list[float]) -> None:
    with EmulatorServer(tokens=[TOKEN], compiler=fake) as server:
        url = server.url
        client = ParticleCloud(CloudConfig(url, TOKEN), cache_dir=tmp_path, sleep=sleeps.append)
        online, age = client.list_devices_or_cached()
        assert age is None
        client.get_device("field-unit-7")
    with pytest.raises(cloud.Offline) as info:
        client.list_devices()
    assert info.value.host in url
    cached, age = client.list_devices_or_cached()
    assert cached == online and age is not None and 0 <= age < 60
    device, device_age = client.get_device_or_cached("field-unit-7")
    assert device["system_firmware_version"] == "0.5.3" and device_age is not None
    assert client.cached("build_targets") is None
    with pytest.raises(cloud.Offline):
        client.get_device_or_cached("field-unit-9")  # never fetched: nothing to fall back on


# ---- the token never leaks ------------------------------------------------------------------------


def test_token_never_appears_in_logs_errors_or_files(
    emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []
    sleeps: list[float] = []
    cache_dir = tmp_path / "cache"
    client = ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=cache_dir, sleep=sleeps.append, timeout=2)
    texts += [repr(client), repr(client.config), str(client.config)]

    def attempt(fn, *args):  # type: ignore[no-untyped-def]
        try:
            fn(*args)
        except cloud.CloudError as exc:
            texts.extend([str(exc), repr(exc), repr(exc.args), exc.url or ""])
            if isinstance(exc, cloud.CompileFailed):
                texts.append(exc.log)

    with caplog.at_level(logging.DEBUG):
        client.list_devices()
        client.get_device("field-unit-7")
        attempt(client.get_device, "missing-device")
        for kind in ("token_expired", "error", "rate_limit", "drop", "malformed_json"):
            emu.faults.clear()
            emu.faults.set("/v1/devices", kind, retry_after=0)
            attempt(client.list_devices)
        emu.faults.clear()
        emu.faults.set("/v1/binaries/*", "truncate", method="GET")
        attempt(client.download_binary, "0" * 24)
        attempt(client.compile, {"a.ino": b"#error x"}, 10, "0.5.3")
        attempt(client.compile, {"a.ino": b""}, 10, "1.0.0-nope")
        attempt(ParticleCloud(CloudConfig("http://api.example.test", TOKEN), cache_dir=cache_dir).list_devices)
        emu.faults.set("/v1/devices/*", "latency", delay=1)
        attempt(
            ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=cache_dir, timeout=0.1, max_retries=0).get_device, "x"
        )
        emu.faults.clear()
        emu.stop()
        attempt(client.list_devices)
        attempt(client.device_os_versions, 10)
    assert len(texts) > 20
    assert caplog.records, "debug logging was captured"
    everything = "\n".join(texts) + "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for path in cache_dir.rglob("*"):
        if path.is_file():
            everything += path.read_text()
    everything += repr([r.__dict__ for r in emu.requests])
    assert TOKEN not in everything
    assert "Bearer" not in caplog.text or "Bearer <redacted>" in caplog.text
