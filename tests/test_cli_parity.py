"""CLI behaviours a new user (and CI) relies on: closed pipes, where the binary went, truncated files,
the example shipped with the package, and faces that do not import each other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe.cli import main
from fieldsafe.emulator.server import EmulatorServer

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "server" / "fieldsafe"
TOKEN = "parity-test-token-0123456789"
BINARIES = REPO / "tests" / "fixtures" / "particle-binaries"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(None, [TOKEN]) as server:
        yield server


def _env(emu: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO / "server"),
        "PARTICLE_API_URL": emu.url,
        "PARTICLE_ACCESS_TOKEN": TOKEN,
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def _closed_pipe(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``fieldsafe ARGS | head -1``: the reader goes away after the first line."""
    command = " ".join([sys.executable, "-m", "fieldsafe", *args]) + " | head -1; exit ${PIPESTATUS[0]}"
    return subprocess.run(
        command, shell=True, executable="/bin/bash", env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [["devices"], ["devices", "--json"]])
def test_a_closed_stdout_exits_quietly_with_the_commands_status(
    emu: EmulatorServer, tmp_path: Path, args: list[str]
) -> None:
    result = _closed_pipe(args, _env(emu, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.stdout.strip()


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")
def test_compile_into_a_closed_pipe_still_succeeds_and_saves(emu: EmulatorServer, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(REPO / "examples" / "field-tracker", project)
    result = _closed_pipe(["compile", str(project), "-p", "electron", "-t", "0.5.3"], _env(emu, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("Compiling ")
    assert list(tmp_path.glob("electron_firmware_*.bin"))  # the work was done although nobody read the output


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")
def test_compile_says_where_the_binary_went(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in _env(emu, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "p"
    shutil.copytree(REPO / "examples" / "field-tracker", project)
    assert main(["compile", str(project), "-p", "electron", "-t", "0.5.3"]) == 0
    out = capsys.readouterr().out
    saved = re.search(r"^Saved firmware to: (.+)$", out, re.MULTILINE)
    assert saved is not None, out
    path = Path(saved[1])
    assert path.parent == tmp_path and re.fullmatch(r"electron_firmware_\d{13}\.bin", path.name)
    assert path.stat().st_size > 0


def test_inspect_says_truncated_for_a_file_one_byte_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (BINARIES / "040_system-part1.bin").read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:-1])
    assert main(["inspect", str(short)]) == 1
    out = capsys.readouterr().out
    assert "truncated" in out and "1 missing" in out and "not a Particle module" not in out


def test_no_face_imports_another_face() -> None:
    """What both faces show is computed in the engine; ``cli/lsp.py`` only starts the server."""
    pattern = re.compile(r"^\s*(?:from|import)\s+fieldsafe\.(cli|lsp)\b", re.MULTILINE)
    for face, other in (("cli", "lsp"), ("lsp", "cli")):
        for path in (SERVER / face).rglob("*.py"):
            if path.name == "lsp.py" and face == "cli":
                continue
            hits = [m[1] for m in pattern.finditer(path.read_text()) if m[1] == other]
            assert not hits, f"{path.relative_to(REPO)} imports fieldsafe.{other}"


def test_the_example_project_ships_as_package_data() -> None:
    """``fieldsafe demo`` from a wheel needs the example inside the package (pyproject package-data)."""
    from fieldsafe.cli.demo import find_example

    example = find_example()
    assert example is not None and (example / ".vscode" / "settings.json").is_file()
    text = (REPO / "pyproject.toml").read_text()
    assert '"examples/**/*"' in text and '"examples/*/.vscode/*"' in text


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("g++") is None, reason="the demo's emulator compiler needs g++")
def test_demo_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv (no checkout on the path) and run the demo."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    if build.returncode != 0:
        if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
            pytest.fail(f"pip wheel failed: {build.stderr[-2000:]}")
        pytest.skip("pip wheel needs setuptools from the package index")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    wheel = next((tmp_path / "dist").glob("fieldsafe-*.whl"))
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)], check=True, timeout=300
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    where = subprocess.run([str(py), "-c", "import fieldsafe; print(fieldsafe.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert str(venv) in where.stdout  # the installed copy, not the checkout
    demo = subprocess.run([str(venv / "bin" / "fieldsafe"), "demo"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "safe to flash" in demo.stdout


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")
def test_a_compiler_error_for_a_missing_api_carries_the_api_checks_reason(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """gcc says "did you mean 'Logger'?"; the line also says the release lacks ``Ledger`` and which one has it."""
    for key, value in _env(emu, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "ledger"
    (root / "src").mkdir(parents=True)
    (root / "project.properties").write_text("name=ledger\n")
    (root / "src" / "a.ino").write_text(
        '#include "Particle.h"\nvoid setup() {\n    Ledger l = Particle.ledger("x");\n}\nvoid loop() {}\n'
    )
    assert main(["compile", str(root), "-p", "boron", "-t", "4.0.2"]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if "[FS301]" in x)
    assert line.startswith("src/a.ino:3:") and "'Ledger' was not declared" in line
    assert "fieldsafe [FS201]: `Ledger` needs Device OS 5.8.0 (the 5.x line; 6.x: 6.1.0)" in line


def _project(tmp_path: Path, settings: str) -> Path:
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / ".vscode").mkdir()
    (root / "project.properties").write_text("name=p\n")
    (root / "src" / "p.ino").write_text("void setup() {}\nvoid loop() {}\n")
    (root / ".vscode" / "settings.json").write_text(settings)
    return root


@pytest.mark.parametrize("command", ["check", "compile"])
def test_a_misspelled_pinned_platform_names_the_setting_and_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    root = _project(tmp_path, '{"particle.firmwareVersion": "4.0.2", "particle.targetPlatform": "borron"}\n')
    assert main([command, str(root)]) == 2
    err = capsys.readouterr().err
    assert '"particle.targetPlatform" in ' in err and str(root / ".vscode" / "settings.json") in err
    assert "unknown platform 'borron'; did you mean: boron?" in err


def test_reading_a_broken_settings_file_does_not_talk_about_rewriting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, '{"particle.firmwareVersion": "4.0.2",, }\n')
    assert main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert "settings.json:1:" in err and "rewrite" not in err
    from fieldsafe.project import ProjectSettingsError, write_setting

    with pytest.raises(ProjectSettingsError, match="will not rewrite a settings file it cannot parse"):
        write_setting(root, "particle.targetPlatform", "boron")  # where a write was asked for, it is said


def test_device_target_text_says_the_release_is_the_devices(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in _env(emu, tmp_path).items():
        monkeypatch.setenv(key, value)
    root = _project(tmp_path, '{"particle.firmwareVersion": "6.3.4", "particle.targetPlatform": "boron"}\n')
    (root / "src" / "p.ino").write_text('void setup() {\n    Ledger l = Particle.ledger("x");\n}\nvoid loop() {}\n')
    assert main(["check", str(root), "--target", "device:barn-boron"]) == 1
    out = capsys.readouterr().out
    assert "this project targets 4.0.2 (what barn-boron runs)" in out


def test_check_help_names_every_target_form(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "device:NAME" in text and "latest-lts" in text and "FS404" in text and "src/" in text
