"""Parity with the real particle-cli: its own file selection code runs on the same trees as ours.

Why call its internals: ``particle compile`` needs the network; ``CloudCommand._processDirIncludes``
(particle-cli 3.43.1, ``src/cmd/cloud.js``) is the exact function that builds the upload list from a
folder, so calling it with node gives the list the cloud would receive, offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fieldsafe.project import select_files_report
from test_project_files import PARITY_CASES

REPO = Path(__file__).resolve().parents[1]
CLI_CLOUD = REPO / "tools" / "npm" / "node_modules" / "particle-cli" / "src" / "cmd" / "cloud.js"

NODE_SCRIPT = r"""
const cloud = require(process.argv[1]);
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = {};
for (const c of cases) {
  const cmd = Object.create(cloud.prototype);   // no constructor: nothing touches the network or config
  const mapping = { basePath: c.dir, map: {} };
  cmd._processDirIncludes(mapping, c.dir, { followSymlinks: c.follow });
  out[c.name] = Object.keys(mapping.map);       // multipart file names, in upload order
}
process.stdout.write(JSON.stringify(out));
"""


def _require_tools() -> str:
    node = shutil.which("node")
    if node and CLI_CLOUD.is_file():
        return node
    message = f"node and particle-cli are needed (node={node}, {CLI_CLOUD} exists={CLI_CLOUD.is_file()})"
    if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
        pytest.fail(message + "; run `npm ci` in tools/npm")
    pytest.skip(message)


@pytest.mark.e2e
def test_particle_cli_selects_the_same_files(tmp_path: Path) -> None:
    node = _require_tools()
    cases = []
    for name, (build, follow, _) in PARITY_CASES.items():
        root = tmp_path / name
        root.mkdir()
        build(root)
        cases.append({"name": name, "dir": str(root), "follow": follow})
    example = REPO / "examples" / "field-tracker"
    if example.is_dir():
        cases.append({"name": "example", "dir": str(example), "follow": False})
    proc = subprocess.run(
        [node, "-e", NODE_SCRIPT, str(CLI_CLOUD)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    theirs: dict[str, list[str]] = json.loads(proc.stdout)
    for case in cases:
        name = case["name"]
        ours = select_files_report(Path(case["dir"]), follow_symlinks=case["follow"], max_file_size=None).files
        assert list(ours) == theirs[name], f"{name}: fieldsafe and particle-cli disagree"
        if name in PARITY_CASES:  # the hand-written expectation agrees with particle-cli too
            assert theirs[name] == PARITY_CASES[name][2], name
