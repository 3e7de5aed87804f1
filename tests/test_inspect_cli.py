"""``fieldsafe inspect``: human lines in Device OS terms, the JSON contract, per-file errors, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fieldsafe.cli import main
from fieldsafe.modules import Dependency, build_user_module, parse_file

BIN_DIR = Path(__file__).parent / "fixtures" / "particle-binaries"
ALL_BINS = sorted(BIN_DIR.glob("*.bin"))
INVALID = {"RC2_bootloader.bin", "emptybin.bin", "RC4_bootloader_pad_BM-09.bin"}
JSON_KEYS = {
    "file", "ok", "error", "crc", "sha256_ok", "uuid", "prefix_offset", "start_address", "end_address",
    "flags", "platform_id", "platform", "module_function", "function_name", "module_index",
    "module_version", "device_os", "dependencies", "product_id", "product_version", "suffix_size",
    "extensions",
}  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(["inspect", *argv])
    return status, capsys.readouterr().out


def _json(capsys: pytest.CaptureFixture[str], *files: Path | str) -> tuple[int, list[dict]]:
    status, out = _run(capsys, "--json", *map(str, files))
    return status, json.loads(out)


def test_human_output_electron_tinker(capsys: pytest.CaptureFixture[str]) -> None:
    path = BIN_DIR / "electron_tinker.bin"
    status, out = _run(capsys, str(path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == str(path)
    assert " CRC is ok (b3934494)" in lines
    assert " Compiled for electron (Electron, platform id 10)" in lines
    assert " This is application module 1 at version 3" in lines
    assert f" It has a UUID of {parse_file(path).uuid}" in lines
    assert " It is firmware for product id 10 at version 2" in lines
    assert (
        " It depends on system module 2 (the file electron-system-part3) at version 10 (Device OS 0.4.8-rc.6)" in lines
    )


def test_human_output_system_part_and_two_dependencies(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, str(BIN_DIR / "argon-system-part1@4.1.0.bin"))
    assert status == 0
    assert " This is system module 1 at version 4100 (Device OS 4.1.0)" in out
    assert " It depends on radio stack module 0 at version 202\n" in out
    assert " It also depends on bootloader 0 at version 1200\n" in out
    assert "Prefix at file offset 512 (0x200)" in out


def test_human_output_product_and_gen3(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, str(BIN_DIR / "product_firmware.bin"), str(BIN_DIR / "tinker-6.3.4-esomx.bin"))
    assert status == 0
    assert " It is firmware for product id 8178 at version 13" in out
    assert (
        " It depends on system module 2 (the file electron-system-part3) at version 1201 (Device OS 1.2.0-beta.1)"
        in out
    )
    assert " It depends on system module 1 at version 6305 (Device OS 6.3.4)" in out
    assert " This is application module 2 at version 6" in out


def test_device_os_ga_first_then_prereleases(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Module version 13 is both 0.5.0 and 0.5.0-rc.2 on Photon: name the GA release first."""
    image = build_user_module(
        platform_id=6, module_index=1, dependency=Dependency(4, 2, 13), start_address=0x080A0000, payload=b"x" * 99
    )
    (tmp_path / "app.bin").write_bytes(image)
    status, out = _run(capsys, str(tmp_path / "app.bin"))
    assert status == 0
    assert " It depends on system module 2 at version 13 (Device OS 0.5.0; also prerelease 0.5.0-rc.2)" in out
    status, data = _json(capsys, tmp_path / "app.bin")
    assert data[0]["dependencies"][0]["device_os"] == ["0.5.0", "0.5.0-rc.2"]


def test_unknown_module_version_is_said_plainly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = build_user_module(
        platform_id=13, module_index=2, dependency=Dependency(4, 1, 65000), start_address=0xB4000, payload=b"y"
    )
    (tmp_path / "future.bin").write_bytes(image)
    status, out = _run(capsys, str(tmp_path / "future.bin"))
    assert status == 0
    assert "at version 65000 (no Device OS release in fieldsafe's table" in out


def test_bad_file_does_not_stop_the_rest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.bin"
    status, out = _run(
        capsys, str(BIN_DIR / "photon_tinker.bin"), str(BIN_DIR / "emptybin.bin"), str(missing),
        str(BIN_DIR / "boron_blank.bin"),
    )  # fmt: skip
    assert status == 1
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 4
    assert blocks[1].startswith(str(BIN_DIR / "emptybin.bin")) and "Could not parse: the file is empty" in blocks[1]
    assert "Could not parse: no such file" in blocks[2]
    assert "Compiled for boron" in blocks[3]


def test_crc_failure_is_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _run(capsys, str(BIN_DIR / "RC4_bootloader_pad_BM-09.bin"))
    assert status == 1
    assert " CRC failed (should be ffffffff but is 25714394)" in out
    assert "Note: the file is 100 bytes longer" in out


def test_json_contract_over_all_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    status, data = _json(capsys, *ALL_BINS)
    assert status == 1  # the negative fixtures are in the set
    assert [Path(d["file"]).name for d in data] == [p.name for p in ALL_BINS]
    for entry in data:
        assert set(entry) >= JSON_KEYS, entry["file"]
        name = Path(entry["file"]).name
        assert entry["ok"] is (name not in INVALID), name
        assert (entry["error"] is None) is entry["ok"]
        if entry["crc"] is not None:
            info = parse_file(entry["file"])
            assert entry["crc"] == {"ok": info.crc_ok, "stored": f"{info.crc_stored:08x}",
                                    "actual": f"{info.crc_actual:08x}"}  # fmt: skip
            assert (entry["platform_id"], entry["module_version"], entry["uuid"]) == (
                info.platform_id, info.module_version, info.uuid,
            )  # fmt: skip
            assert len(entry["dependencies"]) == len(info.dependencies)
    by_name = {Path(d["file"]).name: d for d in data}
    assert by_name["emptybin.bin"]["crc"] is None and "empty" in by_name["emptybin.bin"]["error"]
    assert by_name["RC2_bootloader.bin"]["error"].startswith("Invalid extension length")
    assert by_name["RC4_bootloader_pad_BM-09.bin"]["error"].startswith("CRC-32 mismatch")


def test_json_fields_for_known_files(capsys: pytest.CaptureFixture[str]) -> None:
    status, data = _json(
        capsys, BIN_DIR / "argon-system-part1@4.1.0.bin", BIN_DIR / "photon_tinker.bin",
        BIN_DIR / "p2-user-part-prefix-extensions.bin", BIN_DIR / "argon-softdevice-6.1.1.bin",
    )  # fmt: skip
    assert status == 0
    system, photon, p2, softdevice = data
    assert system["device_os"] == ["4.1.0"] and system["function_name"] == "system_part"
    assert system["dependencies"] == [
        {"function": 8, "function_name": "radio_stack", "index": 0, "version": 202, "device_os": None},
        {"function": 2, "function_name": "bootloader", "index": 0, "version": 1200, "device_os": None},
    ]
    assert system["platform"] == "argon" and system["start_address"] == 0x30000 and system["prefix_offset"] == 512
    assert photon["product_id"] is None and photon["product_version"] is None and photon["suffix_size"] == 36
    assert photon["device_os"] is None
    assert photon["dependencies"][0]["device_os"] == ["0.4.1"]
    assert p2["flags"] == 0x10 and p2["flag_names"] == ["prefix_extensions"]
    assert [(e["where"], e["type"], e["length"]) for e in p2["extensions"]][-2:] == [
        ("suffix", 2, 16),
        ("suffix", 1, 10),
    ]
    assert [e["where"] for e in p2["extensions"]].count("prefix") == 3
    assert softdevice["flag_names"] == ["drop_module_info"]


def test_missing_file_json_entry(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, data = _json(capsys, tmp_path / "nope.bin")
    assert status == 1
    assert data == [dict(data[0], file=str(tmp_path / "nope.bin"), ok=False, error="no such file")]
    assert set(data[0]) >= JSON_KEYS


def test_no_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["inspect"])
    assert exc.value.code == 2


def test_whole_process_exit_status() -> None:
    """The real entry point: JSON on stdout, nothing on stderr, exit 1 when one file fails its CRC."""
    proc = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "inspect", "--json",
         str(BIN_DIR / "boron_blank.bin"), str(BIN_DIR / "RC4_bootloader_pad_BM-09.bin")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert [d["ok"] for d in json.loads(proc.stdout)] == [True, False]
    ok = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "inspect", str(BIN_DIR / "boron_blank.bin")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and "It depends on system module 1 at version 1213 (Device OS 1.2.1)" in ok.stdout
