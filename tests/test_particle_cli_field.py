"""The REAL particle-cli against the field simulator: a cloud flash of a mismatched binary really does damage.

``particle flash DEVICE firmware.bin`` (the CLI does no Device OS check, fleet-api.md §1.7) sends the simulated
device into Safe Mode; with ``--product`` the CLI first marks the device as a development device, then flashes,
and the healer repairs it. ``particle update`` needs a USB device, so the part of it that only needs the cloud,
particle-cli's own ``downloadDeviceOsVersionBinaries`` (versions API + module files), runs on its own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from field_helpers import PRODUCT, app_for, device, fleet, ledger
from fieldsafe import delivery, modules
from fieldsafe.emulator import EmulatorServer
from test_particle_cli_interop import PARTICLE, TOKEN, _particle, _particle_home, _require_cli

pytestmark = pytest.mark.e2e

ELECTRON = device(1, 10, "2.0.1", cellular=True)
BORON = device(2, 13, "4.0.2", product_id=PRODUCT, cellular=True)


def _require_flash_deps() -> None:
    """particle-cli 3.43.1 needs execa at runtime for `flash` (only a devDependency upstream; tools/npm adds it)."""
    import os

    _require_cli()
    if (PARTICLE.parent.parent / "execa").exists():
        return
    message = "particle flash needs execa in tools/npm/node_modules: run npm ci in tools/npm"
    if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    _require_flash_deps()
    server = EmulatorServer(fleet(ELECTRON, BORON)).start()
    server.add_token(TOKEN)
    try:
        yield server
    finally:
        server.stop()


def test_particle_flash_of_a_newer_app_leaves_a_developer_electron_in_safe_mode(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    app = tmp_path / "firmware.bin"
    app.write_bytes(app_for(10, "2.3.1"))
    env = _particle_home(tmp_path, emu.url)
    result = _particle(["flash", ELECTRON["name"], str(app)], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Flash success!" in result.stdout
    entry = ledger(emu, ELECTRON["id"])
    assert entry["status"] == "safe_mode" and not entry["running_app"]
    assert entry["decision"]["rule"] == "developer_electron"
    assert entry["bytes_total"] == app.stat().st_size
    detail = _particle(["list", ELECTRON["name"]], env, tmp_path)
    assert ELECTRON["name"] in detail.stdout


def test_particle_flash_product_device_is_healed(emu: EmulatorServer, tmp_path: Path) -> None:
    app = tmp_path / "product.bin"
    data = app_for(13, "4.2.0", product_version=4)
    app.write_bytes(data)
    env = _particle_home(tmp_path, emu.url)
    result = _particle(["cloud", "flash", BORON["id"], str(app), "--product", str(PRODUCT)], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "marked as a developement device" in result.stdout  # (sic) particle-cli's wording
    assert emu.seen(f"/v1/products/{PRODUCT}/devices/{BORON['id']}", "PUT")
    entry = ledger(emu, BORON["id"])
    assert entry["running_app"] and entry["device_os"] == "4.2.0" and entry["safe_mode_entries"] == 1
    assert entry["app_hash"] == modules.parse_module(data).sha256_stored
    assert emu.state.find_device(BORON["id"]).development is True
    plan = delivery.plan_flash(
        delivery.DeviceFacts(13, "4.0.2", in_product=True, development=True, cellular=True),
        "4.2.0",
        app_bytes=len(data),
    )
    assert entry["bytes_total"] == plan.total_bytes and entry["reboots"] == plan.reboots


def test_particle_cli_downloads_device_os_from_the_versions_api(emu: EmulatorServer, tmp_path: Path) -> None:
    """What ``particle update`` does before it needs USB: list the release's modules and download them."""
    env = _particle_home(tmp_path, emu.url)
    cli = PARTICLE.parent.parent / "particle-cli"  # tools/npm/node_modules/particle-cli
    script = (
        "const ParticleApi = require(process.argv[1] + '/src/cmd/api');"
        "const util = require(process.argv[1] + '/src/lib/device-os-version-util');"
        "const api = new ParticleApi(process.argv[2], { accessToken: process.argv[3] });"
        "const ui = { showBusySpinnerUntilResolved: (d, p) => p, stdout: { write: () => {} } };"
        "util.downloadDeviceOsVersionBinaries({ api, platformId: 13, version: process.argv[4], ui })"
        ".then(f => console.log(JSON.stringify(f))).catch(e => { console.error(e.message); process.exit(3); });"
    )
    result = subprocess.run(
        ["node", "-e", script, str(cli), emu.url, TOKEN, "4200"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = [Path(f) for f in json.loads(result.stdout)]
    assert sorted(f.name for f in files) == [
        "boron-bootloader@4.2.0.bin",
        "boron-softdevice@4.2.0.bin",
        "boron-system-part1@4.2.0.bin",
    ]
    sizes = {s.name: s.bytes for s in delivery.release_modules(13, "4.2.0")}
    for f in files:
        name = f.name.split("@")[0].removeprefix("boron-")
        assert f.stat().st_size == sizes[name]
        assert modules.parse_file(f).crc_ok
    missing = subprocess.run(
        ["node", "-e", script, str(cli), emu.url, TOKEN, "6305x"], env=env, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 3 and "Device OS version not found" in missing.stderr


def test_particle_subscribe_reads_the_event_stream(tmp_path: Path) -> None:
    """The real particle-api-js EventStream parses the emulator's SSE: `particle subscribe --device`."""
    import time

    _require_cli()
    argon = device(3, 12, "6.1.1")
    with EmulatorServer(fleet(argon, clock="manual")) as server:
        server.add_token(TOKEN)
        data = app_for(12, "6.1.1")
        app_hash = modules.parse_module(data).sha256_stored
        proc = subprocess.Popen(
            [str(PARTICLE), "subscribe", "--device", argon["id"], "--until", app_hash],
            env=_particle_home(tmp_path, server.url),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not server.seen(f"/v1/devices/{argon['id']}/events") and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the stream is open once its request is in; give it a moment to register
            server.api.field.deliver(server.state.find_device(argon["id"]), data)
            server.api.field.settle()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, out + err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    names = [e["name"] for e in events]
    assert names[:2] == ["spark/flash/status", "spark/flash/status"] and names[-1] == "spark/device/app-hash"
    assert [e["data"] for e in events[:2]] == ["started ", "success "]
    assert all(e["coreid"] == argon["id"] for e in events)
    assert "Matching event received" in out
