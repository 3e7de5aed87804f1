"""Done-when of issue 10, against the emulator's field simulator (OTA consequences and their ledger).

* a mismatched build is refused by ``fieldsafe flash``: the device's ledger shows 0 bytes and 0 Safe Mode
  entries; the same binary through the REAL particle-cli's ``particle flash`` puts the simulated device into
  Safe Mode (the harm prevented, side by side);
* ``--allow-device-os-update`` on a healable device ends on the required release with the ledger's bytes
  equal to what fieldsafe predicted beforehand;
* ``update-os`` moves an Electron from 0.5.3 to 2.3.1 with the predicted modules, order and bytes, and
  resumes after being killed mid-way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldsafe import delivery, guard
from fieldsafe.cli import main
from fieldsafe.emulator import EmulatorServer
from flash_helpers import app_for

REPO = Path(__file__).resolve().parent.parent
PARTICLE = REPO / "tools" / "npm" / "node_modules" / ".bin" / "particle"
TOKEN = "field-flash-token-0123456789"


def ledger(emu: EmulatorServer, device: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{emu.url}/__emulator/field/{device}", timeout=10) as reply:
        return json.load(reply)["device"]


def clock(emu: EmulatorServer, **body: Any) -> None:
    request = urllib.request.Request(
        f"{emu.url}/__emulator/clock",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def device_json(emu: EmulatorServer, device: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{emu.url}/v1/devices/{device}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def _env(emu: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTICLE_")}
    env.update(
        PARTICLE_API_URL=emu.url,
        PARTICLE_ACCESS_TOKEN=TOKEN,
        HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        FIELDSAFE_STATE_DIR=str(tmp_path / "state"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "server"), env.get("PYTHONPATH", "")) if p),
    )
    return env


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FIELDSAFE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    yield


def _use(monkeypatch: pytest.MonkeyPatch, emu: EmulatorServer) -> None:
    monkeypatch.setenv("PARTICLE_API_URL", emu.url)


def _require_particle_cli() -> None:
    missing = [what for what, ok in (("node", shutil.which("node")), (str(PARTICLE), PARTICLE.exists())) if not ok]
    if missing:
        message = f"the particle-cli comparison needs {', '.join(missing)} (run npm ci in tools/npm)"
        if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _particle_env(tmp_path: Path, url: str) -> dict[str, str]:
    home = tmp_path / "particle-home"
    (home / ".particle").mkdir(parents=True)
    config = {"apiUrl": url, "access_token": TOKEN, "username": "demo@fieldsafe.invalid"}
    (home / ".particle" / "particle.config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTICLE_", "HTTP", "http"))}
    env.update(HOME=str(home), PARTICLE_DISABLE_UPDATE="1", NO_COLOR="1", FORCE_COLOR="0")
    return env


@pytest.mark.e2e
def test_refused_flash_versus_particle_cli_flash(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The harm prevented, side by side: same binary, same simulated Electron, two tools."""
    _require_particle_cli()
    binary = tmp_path / "tracker-2.3.1.bin"
    binary.write_bytes(app_for("electron", "2.3.1"))
    with (
        EmulatorServer(None, [TOKEN], clock="instant") as guarded,
        EmulatorServer(None, [TOKEN], clock="instant") as plain,
    ):
        _use(monkeypatch, guarded)
        assert main(["flash", "--device", "field-unit-7", "--binary", str(binary)]) == 1
        assert "Refused: nothing was sent." in capsys.readouterr().out
        ours = ledger(guarded, "field-unit-7")
        assert ours["bytes_total"] == 0 and ours["safe_mode_entries"] == 0 and ours["status"] != "safe_mode"

        result = subprocess.run(
            [str(PARTICLE), "flash", "field-unit-7", str(binary)],
            env=_particle_env(tmp_path, plain.url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        theirs = ledger(plain, "field-unit-7")
        assert theirs["bytes_app"] == binary.stat().st_size
        assert theirs["safe_mode_entries"] == 1 and theirs["status"] == "safe_mode" and not theirs["running_app"]
        assert device_json(plain, "field-unit-7")["system_firmware_version"] == "0.5.3"  # nothing healed it


def test_allowed_update_on_a_healable_device_spends_what_was_predicted(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "barn-4.2.0.bin"
    binary.write_bytes(app_for("boron", "4.2.0"))
    with EmulatorServer(None, [TOKEN], clock=200) as emu:
        _use(monkeypatch, emu)
        # prediction first (nothing sent), then the flash with the cost accepted
        assert (
            main(["flash", "--device", "north-field-boron", "--product", "31337", "--binary", str(binary), "--json"])
            == 1
        )
        predicted = json.loads(capsys.readouterr().out)
        assert predicted["outcome"] == "refused" and predicted["plan"]["path"] in ("healer", "combined_ota")
        assert ledger(emu, "north-field-boron")["bytes_total"] == 0
        status = main(
            [
                "flash",
                "--device",
                "north-field-boron",
                "--product",
                "31337",
                "--binary",
                str(binary),
                "--allow-device-os-update",
                "--json",
            ]
        )
        body = json.loads(capsys.readouterr().out)
        assert status == 0, body["findings"]
        assert body["outcome"] == "done" and body["markedDevelopment"] is True
        assert {"FS603", "FS606"} <= {f["code"] for f in body["findings"]}
        spent = ledger(emu, "north-field-boron")
        assert spent["device_os"] == "4.2.0" == body["deviceAfter"]["deviceOs"] and spent["running_app"]
        assert abs(spent["bytes_total"] - predicted["predictedBytes"]) <= predicted["appBytes"]
        assert spent["bytes_total"] == predicted["predictedBytes"]  # the model is exact in the simulator
        assert spent["reboots"] == predicted["plan"]["reboots"]


def test_flash_that_runs_as_is_has_no_safe_mode(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "argon.bin"
    binary.write_bytes(app_for("argon", "6.1.1"))
    with EmulatorServer(None, [TOKEN], clock="instant") as emu:
        _use(monkeypatch, emu)
        assert main(["flash", "--device", "greenhouse-argon", "--binary", str(binary)]) == 0
        out = capsys.readouterr().out
        assert "back online running this app on Device OS 6.1.1" in out
        spent = ledger(emu, "greenhouse-argon")
        assert spent["safe_mode_entries"] == 0 and spent["bytes_total"] == binary.stat().st_size
        assert spent["app_hash"] == guard_hash(binary)


def guard_hash(path: Path) -> str:
    from fieldsafe.modules import parse_file

    return parse_file(path).sha256_stored.lower()


def _progress(state_dir: Path, device_id: str) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / f"{device_id}.json").read_text())
    except (OSError, ValueError):
        return None


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_update_os_electron_resumes_after_being_killed(tmp_path: Path) -> None:
    """0.5.3 -> 2.3.1 module by module; SIGKILL while the second module is on its way; run again."""
    with EmulatorServer(None, [TOKEN], clock="manual") as emu:
        env = _env(emu, tmp_path)
        device_id = device_json(emu, "field-unit-7")["id"]
        raw = device_json(emu, "field-unit-7")
        plan = delivery.plan_update_os(guard.device_facts(raw), "2.3.1")
        names = [s.module.name for s in plan.steps]
        assert len(names) >= 3 and names[0] == "bootloader"
        command = [sys.executable, "-m", "fieldsafe", "update-os", "field-unit-7", "--to", "2.3.1", "--yes"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            state = tmp_path / "state"
            _wait(lambda: len(ledger(emu, "field-unit-7")["transfers"]) == 1, 30, "the first module sent")
            clock(emu, settle=True)  # the bootloader arrives, the device reboots on it
            _wait(lambda: (_progress(state, device_id) or {}).get("in_flight") == 1, 30, "the second module in flight")
            _wait(lambda: len(ledger(emu, "field-unit-7")["transfers"]) == 2, 30, "the second module sent")
            first.send_signal(signal.SIGKILL)  # mid-way: one module confirmed, one on its way
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        saved = _progress(state, device_id)
        assert saved is not None and saved["done"] == [0] and saved["in_flight"] == 1
        clock(emu, speed=500)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "[FS612]" in second.stdout  # says it resumed, and that the unconfirmed module is sent again
        spent = ledger(emu, "field-unit-7")
        sent = [p["name"] for t in spent["transfers"] for p in t["parts"]]
        # the predicted order, with exactly the module whose result the killed run never saw sent twice
        assert sent == [names[0], names[1], *names[1:]]
        assert spent["bytes_total"] == plan.total_bytes + plan.steps[1].module.bytes
        assert spent["rejected_modules"] == 0 and spent["safe_mode_entries"] == 0
        assert device_json(emu, "field-unit-7")["system_firmware_version"] == "2.3.1"
        assert _progress(state, device_id) is None  # finished: the record is gone


def test_update_os_uninterrupted_matches_the_plan(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(None, [TOKEN], clock=500) as emu:
        _use(monkeypatch, emu)
        raw = device_json(emu, "field-unit-7")
        plan = delivery.plan_update_os(guard.device_facts(raw), "2.3.1")
        assert main(["update-os", "field-unit-7", "--to", "2.3.1", "--yes", "--json"]) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["outcome"] == "done" and body["sentBytes"] == plan.total_bytes
        assert [s["module"] for s in body["steps"]] == [s.module.name for s in plan.steps]
        spent = ledger(emu, "field-unit-7")
        assert [p["name"] for t in spent["transfers"] for p in t["parts"]] == [s.module.name for s in plan.steps]
        assert spent["bytes_total"] == plan.total_bytes and spent["reboots"] == plan.reboots
        assert spent["device_os"] == "2.3.1"


def test_update_os_on_a_product_device_you_do_not_own(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorServer(None, [TOKEN], clock=500) as emu:
        _use(monkeypatch, emu)
        assert main(["update-os", "north-field-boron", "--to", "4.2.0", "--yes", "--json"]) == 1  # not in /v1/devices
        assert json.loads(capsys.readouterr().out)["findings"][0]["code"] == "FS601"
        assert main(["update-os", "north-field-boron", "--product", "31337", "--to", "4.2.0", "--yes", "--json"]) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["outcome"] == "done" and body["deviceAfter"]["deviceOs"] == "4.2.0"
        spent = ledger(emu, "north-field-boron")
        assert spent["bytes_total"] == body["plan"]["totalBytes"] == body["sentBytes"]
        assert spent["safe_mode_entries"] == 0 and spent["device_os"] == "4.2.0"
