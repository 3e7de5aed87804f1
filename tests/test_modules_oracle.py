"""Oracle test: Particle's own binary-version-reader (node) and our parser agree field by field on
every fixture, including which files are rejected. Needs node and tools/npm/node_modules (npm ci)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fieldsafe.modules import ModuleInfo, ModuleParseError, parse_file

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = ROOT / "tests" / "fixtures" / "particle-binaries"
BVR = ROOT / "tools" / "npm" / "node_modules" / "binary-version-reader"

pytestmark = pytest.mark.e2e

# Parses each file named on the command line with HalModuleParser.parseFile and prints one JSON array.
DUMP_JS = r"""
const path = require('path');
const { HalModuleParser } = require(process.env.BVR_PATH);
(async () => {
  const out = [];
  for (const f of process.argv.slice(2)) {
    try {
      const r = await new HalModuleParser().parseFile(f);
      delete r.fileBuffer;
      for (const k of ['prefixInfo', 'suffixInfo']) {
        for (const e of (r[k] && r[k].extensions) || []) { delete e.data; delete e.certificate; }
      }
      out.push({ file: path.basename(f), ok: true, r });
    } catch (e) {
      out.push({ file: path.basename(f), ok: false, error: String(e && e.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def _require_tools() -> str:
    node = shutil.which("node")
    if node and (BVR / "package.json").is_file():
        return node
    message = "node and tools/npm/node_modules/binary-version-reader are needed (run npm ci in tools/npm)"
    if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    node = _require_tools()
    script = tmp_path_factory.mktemp("oracle") / "dump.js"
    script.write_text(DUMP_JS, encoding="utf-8")
    files = [str(p) for p in sorted(BIN_DIR.glob("*.bin"))]
    proc = subprocess.run(
        [node, str(script), *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "BVR_PATH": str(BVR)},
    )
    return {entry["file"]: entry for entry in json.loads(proc.stdout)}


FIXTURES = sorted(p.name for p in BIN_DIR.glob("*.bin"))


def _ext_view(ext: dict[str, Any]) -> dict[str, Any]:
    """binary-version-reader's decoded extension, reduced to what both sides express."""
    view = {"type": ext["type"], "length": ext["length"]}
    for key in ("productId", "productVersion", "hashType", "hashLength", "hash", "name", "moduleStartAddress"):
        if key in ext:
            view[key] = ext[key]
    return view


def _our_ext_view(info: ModuleInfo, where: str) -> list[dict[str, Any]]:
    out = []
    for ext in info.extensions:
        if ext.where != where:
            continue
        fields = ext.fields()
        view: dict[str, Any] = {"type": ext.type, "length": ext.length}
        mapping = {
            "product_id": "productId",
            "product_version": "productVersion",
            "hash_type": "hashType",
            "hash_length": "hashLength",
            "hash": "hash",
            "name": "name",
        }
        for ours, theirs in mapping.items():
            if ours in fields:
                view[theirs] = fields[ours]
        if "module_start_address" in fields:
            view["moduleStartAddress"] = f"{fields['module_start_address']:x}"
        out.append(view)
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_agrees_with_binary_version_reader(name: str, oracle: dict[str, dict[str, Any]]) -> None:
    theirs = oracle[name]
    try:
        info = parse_file(BIN_DIR / name)
    except ModuleParseError as exc:
        assert not theirs["ok"], f"we reject {name} ({exc.reason}) but binary-version-reader parses it"
        return
    assert theirs["ok"], f"binary-version-reader rejects {name} ({theirs.get('error')}) but we parse it"
    r = theirs["r"]
    crc, pre, suf = r["crc"], r["prefixInfo"], r["suffixInfo"]
    assert crc == {"ok": info.crc_ok, "storedCrc": f"{info.crc_stored:08x}", "actualCrc": f"{info.crc_actual:08x}"}
    assert int(pre["moduleStartAddy"], 16) == info.start_address
    assert int(pre["moduleEndAddy"], 16) == info.end_address
    assert pre["reserved"] == info.reserved
    assert pre["moduleFlags"] == info.flags
    assert pre["moduleVersion"] == info.module_version
    assert pre["platformID"] == info.platform_id
    assert pre["moduleFunction"] == info.module_function
    assert pre["moduleIndex"] == info.module_index
    raw_deps = [
        (pre["depModuleFunction"], pre["depModuleIndex"], pre["depModuleVersion"]),
        (pre["dep2ModuleFunction"], pre["dep2ModuleIndex"], pre["dep2ModuleVersion"]),
    ]
    assert [(d.function, d.index, d.version) for d in info.dependencies] == [d for d in raw_deps if d[0] != 0]
    assert pre["prefixSize"] == info.prefix_size
    assert pre["prefixOffset"] == info.prefix_offset
    assert [_ext_view(e) for e in pre.get("extensions", [])] == _our_ext_view(info, "prefix")
    expected_pid = None if suf["productId"] == -1 else suf["productId"]
    expected_pver = None if suf["productVersion"] == -1 else suf["productVersion"]
    assert (expected_pid, expected_pver) == (info.product_id, info.product_version)
    assert suf["fwUniqueId"] == info.sha256_stored
    assert suf["suffixSize"] == info.suffix_size
    assert suf["crcBlock"] == f"{info.crc_stored:08x}"
    assert [_ext_view(e) for e in suf.get("extensions", [])] == _our_ext_view(info, "suffix")


def test_oracle_rejects_the_files_the_manifest_says(oracle: dict[str, dict[str, Any]]) -> None:
    rejected = sorted(name for name, entry in oracle.items() if not entry["ok"])
    assert rejected == ["RC2_bootloader.bin", "emptybin.bin"]
    assert oracle["RC2_bootloader.bin"]["error"] == "Invalid extension length"
