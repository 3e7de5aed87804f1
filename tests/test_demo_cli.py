"""``fieldsafe demo``: the README's main job runs offline end to end and tells the whole story."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")


def test_demo_walks_from_mismatch_to_a_safe_build(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "field-unit-7" in out and "0.5.3" in out
    assert "error FS101: Builds for 2.3.1 need Device OS 2.3.1 (module 2302)" in out
    assert "the binary depends on system module 2 at version 2302 (Device OS 2.3.1)" in out
    assert '"particle.firmwareVersion": "0.5.3",' in out
    assert "// Pinned with" in out  # the retarget kept the comments
    assert "the binary depends on system module 2 at version 21 (Device OS 0.5.3)" in out
    assert "is safe to flash to field-unit-7" in out
    # the user's example project was not touched
    settings = (REPO / "examples/field-tracker/.vscode/settings.json").read_text()
    assert '"particle.firmwareVersion": "2.3.1"' in settings


def test_demo_without_a_project_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "demo", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "missing: no such project directory" in result.stderr


def test_demo_with_a_broken_state_file_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "fleet.json"
    state.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "demo", "--state", str(state)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )  # fmt: skip
    assert result.returncode == 2
    assert "fleet.json: not valid JSON" in result.stderr and "Traceback" not in result.stderr
