"""End to end with a real editor: headless Neovim (0.7+) drives ``fieldsafe lsp`` on the example project.

Marked ``e2e``: skipped when ``nvim`` is missing unless FIELDSAFE_REQUIRE_E2E=1 (then it fails loudly).
Debian 12's ``apt-get install neovim`` gives 0.7.2, which the script targets.
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
EXAMPLE = REPO / "examples" / "field-tracker"


def _nvim() -> str:
    found = shutil.which("nvim")
    if found is None:
        if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
            pytest.fail("FIELDSAFE_REQUIRE_E2E=1 but nvim is not installed (apt-get install neovim)")
        pytest.skip("nvim not installed")
    return found


@pytest.mark.e2e
def test_neovim_shows_mismatch_and_retarget_fix(tmp_path: Path) -> None:
    nvim = _nvim()
    project = tmp_path / "field-tracker"
    shutil.copytree(EXAMPLE, project)
    out = tmp_path / "result.json"
    with EmulatorServer() as emulator:
        env = server_env(emulator, tmp_path / "home")
        env.update(FIELDSAFE_PYTHON=sys.executable, FIELDSAFE_PROJECT=str(project), FIELDSAFE_OUT=str(out))
        proc = subprocess.run(
            [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert out.exists(), f"nvim wrote no result (rc={proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(out.read_text())
    assert result["ok"], result
    codes = {d["code"] for d in result["diagnostics"]}
    assert "FS101" in codes, result["diagnostics"]
    titles = [a["title"] for a in result["actions"]]
    assert "Retarget to 0.5.3 (what field-unit-7 runs)" in titles, titles
    original = (EXAMPLE / ".vscode" / "settings.json").read_text()
    assert result["buffer"] == original.rstrip("\n").replace('"2.3.1"', '"0.5.3"'), result["buffer"]
