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
        monkeypatch.chdir(tmp_path)  # the default binary name lands in the current directory
        yield server


@pytest.fixture
def fielded(tmp_path: Path) -> Path:
    """The example project as shipped: pinned to 2.3.1 for the Electron, target device field-unit-7 (0.5.3)."""
    root = tmp_path / "field-tracker"
    shutil.copytree(REPO / "examples" / "field-tracker", root)
    return root


@pytest.fixture
def project(fielded: Path) -> Path:
    """The example project without its target device (builds only checked against the pin)."""
    settings = fielded / ".vscode" / "settings.json"
    settings.write_text("\n".join(x for x in settings.read_text().splitlines() if "targetDevice" not in x) + "\n")
    settings.write_text(settings.read_text().replace('"electron",\n}', '"electron"\n}'))
    return fielded


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
    assert main(["compile", str(project), "--target", "device:barn-boron", "-p", "boron", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["platform_id"] == 13 and result["release"] == "4.0.2"
    assert result["dependency"] == {"function": 4, "index": 1, "version": 4006, "device_os": ["4.0.2"]}
    assert result["target"]["targets"][0]["name"] == "barn-boron" and result["target"]["platform"] == "boron"
    assert Path(result["saved_to"]).name.startswith("boron_firmware_")


def test_device_of_another_platform_is_fs102_not_a_silent_switch(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The project is pinned for the Electron; barn-boron is a Boron: say so, upload nothing."""
    uploads = len(emu.seen("/v1/binaries*"))
    assert main(["compile", str(project), "--target", "device:barn-boron"]) == 1
    captured = capsys.readouterr()
    assert "[FS102]" in captured.out and "not compiling" in captured.err
    assert len(emu.seen("/v1/binaries*")) == uploads
    assert main(["check", str(project), "--target", "device:barn-boron", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["target"]["platform"] == "electron" and "FS102" in {f["code"] for f in result["findings"]}


def test_pin_is_the_default_and_usage_errors_exit_2(
    emu: EmulatorServer, fielded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the pin: 2.3.1 for electron; the target device field-unit-7 runs 0.5.3, so the build fails it (FS101)
    project = fielded
    assert main(["compile", str(project), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["dependency"]["version"] == 2302 and result["ok"]
    assert "FS101" in {f["code"] for f in result["findings"]}
    assert main(["compile", str(project), "--platform", "nosuch"]) == 2
    assert "--platform: unknown platform 'nosuch'" in capsys.readouterr().err
    # one policy for an unknown release: FS104 and exit 1, in compile as in check (a CI failure, not usage)
    assert main(["compile", str(project), "--target", "9.9.9"]) == 1
    assert "Device OS 9.9.9 is not in fieldsafe's release table" in capsys.readouterr().out
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


# ---- bad input (QA pass): every case ends in a clear message and an exit status, never a traceback


def test_bad_save_to_is_a_usage_error_before_any_upload(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["compile", str(project), "--save-to", str(tmp_path)]) == 2
    assert "is a directory; name the file" in capsys.readouterr().err
    assert main(["compile", str(project), "--save-to", str(project / "project.properties" / "fw.bin")]) == 2
    assert "project.properties is a file, not a directory" in capsys.readouterr().err
    assert not emu.seen("/v1/binaries*")  # no cloud build was spent on a path typo


def test_unreadable_binary_from_the_cloud_is_not_saved(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emu.faults.set("/v1/binaries/*", "malformed_json")
    out_bin = tmp_path / "fw.bin"
    assert main(["compile", str(project), "--save-to", str(out_bin)]) == 1
    text = capsys.readouterr().out
    assert "[FS307]" in text and "Not saved to" in text and "Compile succeeded.\n" not in text
    assert not out_bin.exists() and list(tmp_path.glob("*.part")) == []
    assert main(["compile", str(project), "--save-to", str(out_bin), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["saved_to"] is None and not out_bin.exists()


def test_interrupted_save_leaves_no_partial_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fieldsafe.cli import compile as compile_cli

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compile_cli.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compile_cli._save(tmp_path / "out" / "fw.bin", b"\0" * 4096)
    assert list((tmp_path / "out").iterdir()) == []


def test_skipped_files_are_named_and_a_project_without_sources_is_refused(
    emu: EmulatorServer, project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with open(project / "src" / "table.cpp", "wb") as handle:  # sparse: cheap to create
        handle.truncate(10 * 1024 * 1024 + 1)
    assert main(["compile", str(project)]) == 0
    assert "warning: not uploading src/table.cpp: 10485761 bytes is over the 10 MiB limit" in capsys.readouterr().err
    only_props = tmp_path / "only-props"
    only_props.mkdir()
    (only_props / "project.properties").write_text("name=x\n")
    assert main(["compile", str(only_props), "-p", "electron", "-t", "2.3.1"]) == 2
    assert "no source files to compile" in capsys.readouterr().err
    assert main(["compile", str(project / "project.properties")]) == 2
    assert "is a file, not a project directory" in capsys.readouterr().err


class _OneDevice:
    """A cloud double answering ``get_device`` with one fixed device object."""

    def __init__(self, device: dict[str, object]) -> None:
        self.device = device

    def get_device_or_cached(self, name: str) -> tuple[dict[str, object], float | None]:
        return self.device, None

    def lookup_device(self, name: str) -> tuple[dict[str, object], None, None]:
        return self.device, None, None


def test_device_targets_that_cannot_be_resolved_explain_why(tmp_path: Path) -> None:
    electron = {"id": "e00fce68a1b2c3d4e5f60701", "name": "unit", "platform_id": 10}
    cases = [
        ("device:", None, electron, "needs a device name"),
        ("device:unit", "toaster", electron, "unknown platform 'toaster'"),
        ("device:unit", None, {**electron, "system_firmware_version": None}, "does not report its Device OS"),
        ("device:unit", None, {**electron, "system_firmware_version": "0.4.9"}, "not a release fieldsafe knows"),
        ("device:unit", None, {**electron, "platform_id": 999, "system_firmware_version": "2.3.1"}, "platform 999"),
        ("device:unit", None, {**electron, "platform_id": None}, "pass --platform NAME"),
    ]
    for target, platform, device, needle in cases:
        with pytest.raises(TargetError, match=needle):
            resolve_target(tmp_path, target=target, platform=platform, cloud=_OneDevice(device))  # type: ignore[arg-type]


def test_unreadable_source_and_bad_api_url_are_clear_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fieldsafe import compilejob

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:99999")
    assert main(["compile", str(project)]) == 2
    err = capsys.readouterr().err
    assert "has an invalid port" in err and TOKEN not in err
    monkeypatch.setenv("PARTICLE_API_URL", "http://127.0.0.1:9")

    def denied(root: Path, **kwargs: object) -> dict[str, bytes]:
        raise PermissionError(13, "Permission denied", str(root / "src" / "field-tracker.ino"))

    monkeypatch.setattr(compilejob, "gather_files", denied)  # as root, chmod 000 would still read
    assert main(["compile", str(project)]) == 1
    assert "field-tracker.ino: Permission denied" in capsys.readouterr().err


def test_a_pin_that_is_not_an_exact_release_warns_about_drift(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    settings = tmp_path / ".vscode" / "settings.json"
    for pin, release in (("latest", "3.3.1"), ("2.3", "2.3.1")):
        settings.write_text(json.dumps({"particle.firmwareVersion": pin, "particle.targetPlatform": "electron"}))
        target = resolve_target(tmp_path)
        assert str(target.release.version) == release
        assert f"`{pin}` is not an exact release" in (target.pin_warning() or "")
        assert f"today it means Device OS {release}" in (target.pin_warning() or "")
    settings.write_text(json.dumps({"particle.firmwareVersion": "v2.3.1", "particle.targetPlatform": "electron"}))
    assert resolve_target(tmp_path).pin_warning() is None
    assert resolve_target(tmp_path, target="latest-lts").pin_warning() is None  # a flag is a one-off choice
