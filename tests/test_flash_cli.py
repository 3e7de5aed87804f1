"""``fieldsafe flash`` and ``fieldsafe update-os`` from the command line, against a real emulator on loopback.

What needs the field simulator (a flash actually delivered, the ledger) is in tests/test_flash_field.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe.cli import main
from fieldsafe.emulator.server import EmulatorServer
from flash_helpers import app_for

REPO = Path(__file__).resolve().parents[1]
TOKEN = "flash-cli-test-token-0123456789"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(None, [TOKEN]) as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("FIELDSAFE_STATE_DIR", str(tmp_path / "state"))
        yield server


def _puts(server: EmulatorServer) -> list[object]:
    return [r for r in server.seen("/v1/*") if r.method == "PUT"]


def test_mismatched_binary_is_refused_and_nothing_is_sent(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_for("electron", "2.3.1"))
    status = main(["flash", "--device", "field-unit-7", "--binary", str(binary)])
    out = capsys.readouterr().out
    assert status == 1
    assert "Refused: nothing was sent." in out and "[FS101]" in out
    assert "fieldsafe update-os field-unit-7 --to 2.3.1" in out or "Retarget to 0.5.3" in out
    assert _puts(emu) == []
    # the device was read fresh, never from a cache
    assert [r.path for r in emu.seen("/v1/devices/*") if r.method == "GET"]


def test_json_refusal_is_machine_readable(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_for("electron", "2.3.1"))
    status = main(["flash", "--device", "field-unit-7", "--binary", str(binary), "--allow-device-os-update", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert status == 1 and body["outcome"] == "refused" and body["sent"] is False
    assert body["neededRelease"] == "2.3.1" and body["device"]["deviceOs"] == "0.5.3"
    assert {f["code"] for f in body["findings"]} & {"FS602", "FS604"}
    assert _puts(emu) == []


def test_unknown_device_refuses_with_fs601(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_for("electron", "0.5.3"))
    assert main(["flash", "--device", "no-such-unit", "--binary", str(binary)]) == 1
    assert "[FS601]" in capsys.readouterr().out


def test_usage_errors(emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(tmp_path), "--binary", str(tmp_path / "missing.bin")]) == 2  # no device either
    assert main(["flash", "--device", "field-unit-7", "--binary", str(tmp_path / "missing.bin")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err or "no device" in err
    assert main(["update-os", "field-unit-7", "--to", "9.9.9"]) == 2
    assert "not a Device OS release" in capsys.readouterr().err


def test_not_an_app_is_refused(emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    assert main(["flash", "--device", "field-unit-7", "--binary", str(junk)]) == 1
    assert "[FS608]" in capsys.readouterr().out
    assert _puts(emu) == []


def test_offline_device_is_refused(emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_for("electron", "2.3.1"))
    assert main(["flash", "--device", "field-unit-9", "--binary", str(binary)]) == 1  # field-unit-9 is offline
    assert "[FS605]" in capsys.readouterr().out


def test_update_os_dry_run_prints_the_ordered_plan(emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    from fieldsafe import delivery, guard

    assert main(["update-os", "field-unit-7", "--to", "2.3.1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing sent." in out
    raw = {"platform_id": 10, "system_firmware_version": "0.5.3", "product_id": 10, "cellular": True}
    plan = delivery.plan_update_os(guard.device_facts(raw), "2.3.1")
    names = [line.split()[1] for line in out.splitlines() if line.strip()[:3].strip(". ").isdigit()]
    assert names == [s.module.name for s in plan.steps]
    assert f"{guard.kb(plan.total_bytes)}" in out
    assert _puts(emu) == []


def test_update_os_refuses_a_downgrade(emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["update-os", "greenhouse-argon", "--to", "4.0.2", "--yes"]) == 1
    out = capsys.readouterr().out
    assert "[FS610]" in out and "downgrade" in out
    assert _puts(emu) == []


def test_update_os_without_a_terminal_needs_yes(emu: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["update-os", "field-unit-7", "--to", "2.3.1"]) == 2  # pytest's stdin is not a terminal
    captured = capsys.readouterr()
    assert "pass --yes" in captured.err and _puts(emu) == []


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")
def test_flash_without_binary_compiles_the_pin_first(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "field-tracker"
    shutil.copytree(REPO / "examples" / "field-tracker", root)  # pinned 2.3.1 for field-unit-7 (0.5.3)
    status = main(["flash", str(root)])
    out = capsys.readouterr().out
    assert status == 1 and "Compiled field-tracker for electron against Device OS 2.3.1" in out
    assert "Refused: nothing was sent." in out and _puts(emu) == []


def test_check_prints_the_update_fix_as_the_update_os_command(
    emu: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "field-tracker"
    shutil.copytree(REPO / "examples" / "field-tracker", root)  # pinned 2.3.1, target field-unit-7 on 0.5.3
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "[FS101]" in out and "    fix: fieldsafe update-os field-unit-7 --to 2.3.1" in out
