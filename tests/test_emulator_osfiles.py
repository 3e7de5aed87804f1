"""Device OS versions API with real module files: listings, lookups, downloads, and the files themselves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from field_helpers import TOKEN, device, fleet, get
from fieldsafe import delivery, modules
from fieldsafe.emulator import EmulatorServer, osfiles

REPO = Path(__file__).resolve().parent.parent
BVR = REPO / "tools" / "npm" / "node_modules" / "binary-version-reader"

CASES = [(13, "4.2.0"), (13, "6.3.4"), (10, "2.3.1"), (6, "2.3.1"), (32, "6.3.4"), (12, "6.1.1"), (26, "5.8.0")]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(fleet(device(1, 13, "4.2.0"))) as server:
        yield server


@pytest.mark.parametrize(("platform_id", "release"), CASES)
def test_module_files_are_real_modules_of_the_tabled_sizes(platform_id: int, release: str) -> None:
    specs = delivery.release_modules(platform_id, release)
    assert specs
    for spec in specs:
        data = osfiles.module_file(platform_id, release, spec.name)
        assert len(data) == spec.bytes
        info = modules.parse_module(data)
        assert info.crc_ok and info.sha256_ok and not info.notes
        assert info.platform_id == platform_id and info.module_version == spec.version
        assert (info.function_name, info.module_index) == (spec.function, spec.index)
        deps = [(d.function_name, d.index, d.version) for d in info.dependencies]
        assert deps == list(spec.dependencies)
        assert info.module_size == len(data)


def test_layouts_follow_the_documented_prefix_offsets() -> None:
    def info(platform_id: int, release: str, name: str) -> modules.ModuleInfo:
        return modules.parse_module(osfiles.module_file(platform_id, release, name))

    assert info(13, "6.3.4", "system-part1").prefix_offset == 0x200
    assert info(13, "6.3.4", "bootloader").prefix_offset == 0x200
    soft = info(13, "6.3.4", "softdevice")
    assert soft.prefix_offset == 0 and soft.drop_module_info and soft.suffix_size == 36
    assert info(10, "2.3.1", "system-part1").prefix_offset == 0  # module index 3
    assert info(10, "2.3.1", "system-part3").prefix_offset == 0x184
    assert info(32, "6.3.4", "bootloader").prefix_offset == 0x20
    assert info(32, "6.3.4", "system-part1").prefix_offset == 0


def test_versions_api_lists_modules_with_base_url(emu: EmulatorServer) -> None:
    body = get(emu, "/v1/device-os/versions/4.2.0", platform_id=13).json()
    assert body["version"] == "4.2.0" and body["internal_version"] == 4200
    assert body["base_url"] == f"{emu.url}/v1/firmware/device-os/v4.2.0"
    names = [m["filename"] for m in body["modules"]]
    assert names == ["boron-softdevice@4.2.0.bin", "boron-bootloader@4.2.0.bin", "boron-system-part1@4.2.0.bin"]
    part = body["modules"][2]
    assert part["prefixInfo"]["moduleFunction"] == "system-part" and part["prefixInfo"]["moduleVersion"] == 4200
    prefix = part["prefixInfo"]
    deps = {
        (prefix["depModuleFunction"], prefix["depModuleVersion"]),
        (prefix["dep2ModuleFunction"], prefix["dep2ModuleVersion"]),
    }
    assert deps == {(2, 1200), (8, 202)} and prefix["platformID"] == 13  # bootloader 1200, SoftDevice 202
    assert part["crc"]["ok"] and part["crc"]["storedCrc"] == part["suffixInfo"]["crcBlock"]
    assert body["modules"][1]["prefixInfo"]["moduleFunction"] == "bootloader"


def test_versions_api_accepts_internal_versions_and_latest(emu: EmulatorServer) -> None:
    assert get(emu, "/v1/device-os/versions/4200", platform_id=13).json()["version"] == "4.2.0"
    assert get(emu, "/v1/device-os/versions/2302", platform_id=10).json()["version"] == "2.3.1"
    latest = get(emu, "/v1/device-os/versions/latest", platform_id=6).json()
    assert latest["version"].startswith(("2.", "3.")) and latest["modules"]
    gen2_bootloader = [m["filename"] for m in get(emu, "/v1/device-os/versions/2.3.1", platform_id=6).json()["modules"]]
    assert "photon-bootloader@2.3.1+lto.bin" in gen2_bootloader and "photon-system-part1@2.3.1.bin" in gen2_bootloader


def test_versions_api_404s_for_a_platform_that_lacks_the_release(emu: EmulatorServer) -> None:
    assert get(emu, "/v1/device-os/versions/6.3.4", platform_id=10).status_code == 404
    assert get(emu, "/v1/device-os/versions/6305", platform_id=6).status_code == 404
    assert get(emu, "/v1/device-os/versions/9.9.9", platform_id=13).status_code == 404
    assert get(emu, "/v1/device-os/versions/latest").status_code == 404


def test_files_download_without_a_token_and_match_the_listing(emu: EmulatorServer) -> None:
    body = get(emu, "/v1/device-os/versions/6.3.4", platform_id=32).json()
    for module in body["modules"]:
        response = requests.get(body["base_url"] + "/" + module["filename"], timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/octet-stream"
        assert len(response.content) == module["size"]
        info = modules.parse_module(response.content)
        assert f"{info.crc_stored:08x}" == module["crc"]["storedCrc"]
    assert requests.get(body["base_url"] + "/p2-nothing@6.3.4.bin", timeout=10).status_code == 404


def _require_bvr() -> None:
    if shutil.which("node") and BVR.exists():
        return
    message = "binary-version-reader e2e needs node and tools/npm (npm ci)"
    if os.environ.get("FIELDSAFE_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.e2e
def test_binary_version_reader_reads_the_served_files(tmp_path: Path) -> None:
    """Particle's own parser agrees on every field of the files (what particle-cli would see)."""
    _require_bvr()
    files = []
    for platform_id, release in CASES:
        for spec in delivery.release_modules(platform_id, release):
            path = tmp_path / f"{platform_id}-{release}-{spec.name}.bin"
            path.write_bytes(osfiles.module_file(platform_id, release, spec.name))
            files.append((path, spec))
    script = (
        "const {HalModuleParser} = require(process.argv[1]);"
        "(async () => { const out = [];"
        " for (const f of process.argv.slice(2)) { const i = await new HalModuleParser().parseFile(f);"
        "  out.push({crc: i.crc.ok, fn: i.prefixInfo.moduleFunction, v: i.prefixInfo.moduleVersion,"
        "   idx: i.prefixInfo.moduleIndex, p: i.prefixInfo.platformID, off: i.prefixInfo.prefixOffset,"
        "   dep: i.prefixInfo.depModuleVersion}); }"
        " console.log(JSON.stringify(out)); })();"
    )
    result = subprocess.run(
        ["node", "-e", script, str(BVR), *(str(p) for p, _ in files)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for (path, spec), seen in zip(files, json.loads(result.stdout), strict=True):
        info = modules.parse_module(path.read_bytes())
        assert seen["crc"] is True, path
        assert (seen["v"], seen["idx"], seen["p"], seen["off"]) == (
            spec.version,
            spec.index,
            info.platform_id,
            info.prefix_offset,
        )
        assert seen["fn"] == info.module_function
        assert seen["dep"] == (info.dependencies[0].version if info.dependencies else 0)


def test_token_required_for_the_listing(emu: EmulatorServer) -> None:
    assert requests.get(emu.url + "/v1/device-os/versions/4.2.0?platform_id=13", timeout=5).status_code == 401
    assert get(emu, "/v1/device-os/versions/4.2.0", platform_id=13).status_code == 200
    assert TOKEN


def test_build_module_rejects_impossible_layouts() -> None:
    common = {"platform_id": 13, "module_function": 4, "module_index": 1, "module_version": 1, "start_address": 0}
    with pytest.raises(ValueError, match="at least"):
        modules.build_module(**common, size=10, prefix_offset=0x200)
    with pytest.raises(ValueError, match="exactly one"):
        modules.build_module(**common)
    with pytest.raises(ValueError, match="at most 2"):
        modules.build_module(**common, size=4096, dependencies=(modules.Dependency(2, 0, 1),) * 3)
    with pytest.raises(ValueError, match="suffix_size"):
        modules.build_module(**common, size=4096, suffix_size=38)
    data = modules.build_module(**common, payload=b"abc", suffix_size=36)
    assert modules.parse_module(data).suffix_size == 36 and len(data) == 24 + 3 + 36 + 4
