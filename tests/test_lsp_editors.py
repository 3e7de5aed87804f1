"""End to end with real editors: headless Neovim (0.7+) and Emacs + eglot drive ``fieldsafe lsp``.

Both open the example project's ``.vscode/settings.json``, wait for the FS101 pin mismatch, ask for
code actions there and apply "Retarget to 0.5.3".
Marked ``e2e``: skipped when the editor is missing unless FIELDSAFE_REQUIRE_E2E=1 (then it fails loudly).
Debian 12: ``apt-get install neovim`` gives 0.7.2; ``apt-get install --no-install-recommends emacs-nox
elpa-eglot`` gives Emacs 28.2 + eglot 1.9. The scripts target those versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fieldsafe.emulator import EmulatorServer
from lsp_helpers import server_env

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "editors" / "nvim_smoke.lua"
EGLOT_SCRIPT = REPO / "tests" / "editors" / "eglot_smoke.el"
EXAMPLE = REPO / "examples" / "field-tracker"
RETARGET = "Retarget to 0.5.3 (what field-unit-7 runs)"


def _tool(name: str, install: str) -> str:
    """The editor binary, or skip (fail under FIELDSAFE_REQUIRE_E2E=1) with the install command."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
            pytest.fail(f"FIELDSAFE_REQUIRE_E2E=1 but {name} is not installed ({install})")
        pytest.skip(f"{name} not installed")
    return found


def _nvim() -> str:
    return _tool("nvim", "apt-get install neovim")


def _retargeted_settings() -> str:
    """The example's settings.json after the quick-fix: only the pinned version changes."""
    return (EXAMPLE / ".vscode" / "settings.json").read_text().replace('"2.3.1"', '"0.5.3"')


def _run_smoke(cmd: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path, dict]:
    """Run an editor's smoke script on a copy of the example project against an emulator.

    Returns the process, the project copy and the script's JSON result (the test fails when there is none).
    """
    project = tmp_path / "field-tracker"
    shutil.copytree(EXAMPLE, project)
    out = tmp_path / "result.json"
    with EmulatorServer() as emulator:
        env = server_env(emulator, tmp_path / "home")
        env.update(FIELDSAFE_PYTHON=sys.executable, FIELDSAFE_PROJECT=str(project), FIELDSAFE_OUT=str(out))
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,  # eglot may y-or-n-p; a batch editor would block reading stdin
        )
    assert out.exists(), f"{Path(cmd[0]).name} wrote no result (rc={proc.returncode}): {proc.stderr[-2000:]}"
    return proc, project, json.loads(out.read_text())


@pytest.mark.e2e
def test_neovim_shows_mismatch_and_retarget_fix(tmp_path: Path) -> None:
    _proc, _project, result = _run_smoke(
        [_nvim(), "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"], tmp_path
    )
    assert result["ok"], result
    codes = {d["code"] for d in result["diagnostics"]}
    assert "FS101" in codes, result["diagnostics"]
    titles = [a["title"] for a in result["actions"]]
    assert "Retarget to 0.5.3 (what field-unit-7 runs)" in titles, titles
    original = (EXAMPLE / ".vscode" / "settings.json").read_text()
    assert result["buffer"] == original.rstrip("\n").replace('"2.3.1"', '"0.5.3"'), result["buffer"]


# Same load-path step as eglot_smoke.el, then fail if eglot is still missing.
_EGLOT_PROBE = (
    '(let ((elpa "/usr/share/emacs/site-lisp/elpa")) (when (file-directory-p elpa)'
    " (dolist (d (directory-files elpa t directory-files-no-dot-files-regexp)) (push d load-path)))"
    " (require (quote eglot)))"
)


def _emacs_with_eglot() -> str:
    """Emacs whose eglot loads under -Q (Debian's elpa-eglot, or built in from Emacs 29)."""
    install = "apt-get install --no-install-recommends emacs-nox elpa-eglot"
    emacs = _tool("emacs", install)
    probe = subprocess.run(
        [emacs, "--batch", "-Q", "--eval", _EGLOT_PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode != 0:
        if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
            pytest.fail(f"FIELDSAFE_REQUIRE_E2E=1 but eglot does not load ({install}): {probe.stderr[-500:]}")
        pytest.skip("emacs has no eglot")
    return emacs


@pytest.mark.e2e
def test_emacs_eglot_shows_mismatch_and_retarget_fix(tmp_path: Path) -> None:
    _proc, project, result = _run_smoke([_emacs_with_eglot(), "--batch", "-Q", "-l", str(EGLOT_SCRIPT)], tmp_path)
    assert result["ok"], {**result, "events": result.get("events", "")[-1500:]}  # events: JSON-RPC tail
    assert Path(result["project_root"]) == project, result["project_root"]
    mismatch = [d for d in result["diagnostics"] if d["code"] == "FS101"]
    assert mismatch, result["diagnostics"]
    assert '"particle.firmwareVersion"' in mismatch[0]["text"], mismatch[0]
    pin_line = next(
        i
        for i, line in enumerate((EXAMPLE / ".vscode" / "settings.json").read_text().splitlines())
        if '"particle.firmwareVersion"' in line
    )
    assert mismatch[0]["line"] == pin_line, (pin_line, mismatch[0])
    titles = [a["title"] for a in result["actions"]]
    assert RETARGET in titles, titles
    assert result["applied"] == RETARGET
    assert result["buffer"] == _retargeted_settings(), result["buffer"]
    assert "mismatch" in result["statuses"], result["statuses"]
    assert result["server_exited"] and result["server_exit_status"] == 0, result
