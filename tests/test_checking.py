"""The shared target-check engine (``fieldsafe.checking``) and the CLI behaviours it gives ``check``/``compile``.

Against the real emulator on loopback (its default state has field-unit-7, an Electron on 0.5.3, and
barn-boron, a Boron on 4.0.2), with HOME/XDG_CACHE_HOME isolated so the offline cache is the test's own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe import checking, cloud
from fieldsafe.cli import main
from fieldsafe.emulator.server import EmulatorServer
from fieldsafe.findings import Severity
from fieldsafe.project import WorkbenchSettings

REPO = Path(__file__).resolve().parents[1]
TOKEN = "checking-test-token-0123456789"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(None, [TOKEN]) as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example: pinned 2.3.1 for the Electron, target device field-unit-7 (which runs 0.5.3)."""
    root = tmp_path / "field-tracker"
    shutil.copytree(REPO / "examples" / "field-tracker", root)
    return root


def set_device(root: Path, name: str) -> None:
    settings = root / ".vscode" / "settings.json"
    settings.write_text(settings.read_text().replace('"field-unit-7"', f'"{name}"'))


def codes(out: str) -> set[str]:
    return {f["code"] for f in json.loads(out)["findings"]}


def test_check_checks_the_target_device_like_the_editor(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(project), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "FS101" in {f["code"] for f in out["findings"]}
    assert out["target"]["release"] == "2.3.1" and out["target"]["platform"] == "electron"
    (device,) = out["target"]["targets"]
    assert (device["name"], device["checked"], device["device_os"], device["source"]) == (
        "field-unit-7", True, "0.5.3", "live",
    )  # fmt: skip


def test_unknown_device_is_fs403(emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_device(project, "feild-unit-7")
    assert main(["check", str(project), "--json"]) == 0  # a warning, but said: nothing was checked against it
    out = json.loads(capsys.readouterr().out)
    assert "FS403" in {f["code"] for f in out["findings"]}
    assert out["target"]["targets"][0]["checked"] is False


def test_no_token_is_fs404_and_fails_ci(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("PARTICLE_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nocache"))
    assert main(["check", str(project)]) == 1
    captured = capsys.readouterr()
    line = next(x for x in captured.out.splitlines() if "[FS404]" in x)
    assert "field-unit-7" in line and "particle login" in line and "PARTICLE_ACCESS_TOKEN" in line
    assert "NOT checked" in captured.err


def test_unreachable_cloud_uses_the_cached_state_and_says_its_age(
    emu: EmulatorServer, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldsafe.emulator.faults import make_rule

    assert main(["check", str(project)]) == 1  # online once: the device state is cached
    capsys.readouterr()
    monkeypatch.setattr(cloud, "DEFAULT_SLEEP", lambda _s: None)
    emu.faults.add(make_rule({"pattern": "/v1/devices*", "kind": "drop", "count": None}))
    for extra in ([], ["--offline"]):  # the cloud unreachable, or not asked at all
        assert main(["check", str(project), "--json", *extra]) == 1
        out = json.loads(capsys.readouterr().out)
        (device,) = out["target"]["targets"]
        assert device["source"] == "cache" and device["age_seconds"] is not None
        fs101 = next(f for f in out["findings"] if f["code"] == "FS101")
        assert "last known state" in fs101["message"]


def test_offline_without_a_cache_is_unchecked(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(project), "--offline"]) == 1
    assert "[FS404]" in capsys.readouterr().out
    assert not emu.seen("/v1/devices*")


def test_root_is_found_from_src(emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(project / "src"), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["target"]["release"] == "2.3.1"
    assert f"project {project}" in captured.err


def test_an_unknown_release_fails_check_and_compile_alike(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_device(project, "barn-boron")
    for command in ("check", "compile"):
        assert main([command, str(project), "--target", "9.9.9"]) == 1, command
        assert "[FS104]" in capsys.readouterr().out


def test_a_device_of_another_platform_is_fs102(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(project), "--target", "device:barn-boron", "--json"]) == 1
    out = capsys.readouterr().out
    assert "FS102" in codes(out)
    assert json.loads(out)["target"]["platform"] == "electron"


def test_engine_is_pure_over_lookups() -> None:
    """``evaluate`` needs no cloud: the faces fetch, the engine judges."""
    settings = WorkbenchSettings("2.3.1", "electron", "unit", Path("settings.json"))
    refs = checking.project_targets(settings)
    raw = {"id": "e00fce68a1b2c3d4e5f60701", "name": "unit", "platform_id": 10, "system_firmware_version": "0.5.3"}
    report = checking.evaluate("2.3.1", "electron", refs, {refs[0]: checking.Lookup(raw, 7200.0)})
    assert [f.code for f in report.findings] == ["FS101"] and report.exit_status() == 1
    assert "2 h old" in report.checked[0].describe()
    failed = checking.evaluate(
        "2.3.1", "electron", refs, {refs[0]: checking.Lookup(None, None, cloud.Offline("x", host="h"))}
    )
    (finding,) = failed.findings
    assert finding.code == "FS404" and finding.severity == Severity.WARNING and failed.exit_status() == 1
    assert checking.project_targets(settings, device_override="other")[0].setting == "--target device:other"
