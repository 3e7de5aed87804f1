"""``fieldsafe compile`` and the compile orchestration, against a real emulator on loopback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe import cloud
from fieldsafe.cli import main
from fieldsafe.compilejob import compile_project, content_key, gather_files, parse_size_info
from fieldsafe.emulator.server import EmulatorServer
from fieldsafe.findings import Severity
from fieldsafe.targets import TargetError, resolve_target

REPO = Path(__file__).resolve().parents[1]
TOKEN = "compile-test-token-0123456789"

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(None, [TOKEN]) as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "field-tracker"
    shutil.copytree(REPO / "examples" / "field-tracker", root)
    return root


def test_compile_against_the_pin_prints_memory_and_dependency(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_bin = tmp_path / "out" / "fw.bin"
    assert (
        main(["compile", str(project), "--platform", "electron", "--target", "0.5.3", "--save-to", str(out_bin)]) == 0
    )
    text = capsys.readouterr().out
    assert "against Device OS 0.5.3 (module 21)" in text
    assert "Compile succeeded." in text and "Flash" in text and "RAM" in text
    assert "depends on system module 2 at version 21 (Device OS 0.5.3)" in text
    assert out_bin.is_file() and not out_bin.with_name("fw.bin.part").exists()
    assert "lib/GpsFix/examples" not in text  # library examples are never uploaded


def test_compile_error_is_printed_gcc_style_and_exits_1(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sketch = project / "src" / "field-tracker.ino"
    lines = sketch.read_text().splitlines()
    lines.insert(3, "this is not C++;")
    sketch.write_text("\n".join(lines) + "\n")
    assert main(["compile", str(project), "-p", "e", "-t", "0.5.3"]) == 1
    text = capsys.readouterr().out
    assert "src/field-tracker.ino:4:" in text and ": error: " in text and "[FS301]" in text
    assert "Compile failed: " in text


def test_target_device_builds_for_what_the_device_runs(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compile", str(project), "--target", "device:barn-boron", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["platform_id"] == 13 and result["release"] == "4.0.2"
    assert result["dependency"] == {"function": 4, "index": 1, "version": 4006, "device_os": ["4.0.2"]}


def test_pin_is_the_default_and_usage_errors_exit_2(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["compile", str(project), "--json"]) == 0  # the pin: 2.3.1 for electron
    assert json.loads(capsys.readouterr().out)["dependency"]["version"] == 2302
    assert main(["compile", str(project), "--platform", "nosuch"]) == 2
    assert "unknown platform 'nosuch'" in capsys.readouterr().err
    assert main(["compile", str(project), "--target", "9.9.9"]) == 2
    assert "--target: Device OS 9.9.9 is not a known release" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compile", str(empty), "-p", "boron", "-t", "4.0.2"]) == 2
    assert "no source files" in capsys.readouterr().err


def test_offline_cloud_is_a_clear_failure(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(cloud, "DEFAULT_SLEEP", lambda _s: None)
    assert main(["compile", str(project), "-p", "electron", "-t", "0.5.3"]) == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:9" in err and TOKEN not in err


def test_binary_vs_pin_disagreement_is_a_finding(emu: EmulatorServer, project: Path) -> None:
    """A cloud that builds for another release than asked must not go unnoticed (FS110)."""
    client = cloud.ParticleCloud(cloud.resolve_config())
    files = gather_files(project)
    real_compile = client.compile
    client.compile = lambda f, pid, release: real_compile(f, pid, "2.3.1")  # type: ignore[method-assign]
    outcome = compile_project(files, 10, "0.5.3", client)
    assert outcome.ok
    assert [f.code for f in outcome.findings if f.severity == Severity.ERROR] == ["FS110"]


def test_content_key_and_size_info() -> None:
    files = {"src/a.ino": b"void setup(){}", "project.properties": b"name=a"}
    assert content_key(files, 10, "0.5.3") == content_key(dict(reversed(files.items())), 10, "0.5.3")
    assert content_key(files, 10, "0.5.3") != content_key(files, 10, "0.6.0")
    changed = {**files, "src/a.ino": b"void setup(){ }"}
    assert content_key(files, 10, "0.5.3") != content_key(changed, 10, "0.5.3")
    size = parse_size_info(
        "   text\t   data\t    bss\t    dec\t    hex\tfilename\n   7012\t    108\t   1424\t   8544\t   2160\tx.elf\n"
    )
    assert (size.flash, size.ram) == (7120, 1532)
    assert parse_size_info("garbage") is None


def test_resolve_target_explains_missing_pieces(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no Device OS release to build against"):
        resolve_target(tmp_path, platform="boron")
    with pytest.raises(TargetError, match="no platform"):
        resolve_target(tmp_path, target="4.0.2")
    with pytest.raises(TargetError, match="not available for this platform"):
        resolve_target(tmp_path, platform="p2", target="6.1.1")
    assert str(resolve_target(tmp_path, platform="b", target="latest-lts").release.version).startswith("6.")
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "settings.json").write_text('{"particle.firmwareVersion": 2}')
    with pytest.raises(TargetError, match=r"settings\.json"):
        resolve_target(tmp_path)
