"""Platforms: names, aliases, connectivity and the user-part rules per family."""

from __future__ import annotations

import pytest

from fieldsafe import platforms
from fieldsafe.versions import DeviceOSVersion


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        ("e", 10),
        ("electron", 10),
        ("Electron", 10),
        ("photon2", 32),
        ("p2", 32),
        ("muon", 35),
        ("msom", 35),
        ("assettracker", 26),
        ("tracker", 26),
        ("b", 13),
        ("E-SoM-X", 15),
        ("E Som X", 15),
        ("B5 SoM", 25),
        ("Tracker M", 28),
        ("13", 13),
        (6, 6),
    ],
)
def test_names_and_particle_cli_aliases(name: str | int, pid: int) -> None:
    assert platforms.get(name).id == pid


def test_unknown_platform_suggests() -> None:
    with pytest.raises(KeyError, match="did you mean: boron"):
        platforms.get("borom")
    assert platforms.find("nope") is None


def test_connectivity() -> None:
    assert platforms.get("electron").connectivity == "cellular"
    assert platforms.get("argon").connectivity == "wifi"
    assert platforms.get("msom").connectivity == "cellular+wifi"
    assert platforms.get("xenon").connectivity == "mesh"


def test_gen2_cap_and_retired_platforms() -> None:
    assert platforms.get("electron").max_release == DeviceOSVersion(3, 3, 1)
    assert platforms.get("xenon").max_release == DeviceOSVersion(1, 5, 2)
    assert platforms.get("boron").max_release is None


@pytest.mark.parametrize(
    ("name", "release", "index", "dep"),
    [
        ("electron", "0.5.3", 1, (4, 2)),
        ("photon", "2.3.1", 1, (4, 2)),
        ("boron", "3.0.0", 1, (4, 1)),
        ("boron", "3.1.0", 2, (4, 1)),
        ("argon", "6.2.0", 2, (4, 1)),
        ("p2", "5.0.1", 1, (4, 1)),
    ],
)
def test_user_part_rules(name: str, release: str, index: int, dep: tuple[int, int]) -> None:
    platform = platforms.get(name)
    assert platform.user_part_index(release) == index
    assert platform.user_part_dependency(release) == dep


def test_user_part_addresses_match_real_binaries() -> None:
    assert platforms.get("electron").user_part_start_address("0.6.0") == 0x08080000
    assert platforms.get("photon").user_part_start_address("0.4.0") == 0x080A0000
    assert platforms.get("argon").user_part_start_address("1.2.1") == 0x000D4000
    assert platforms.get("argon").user_part_start_address("6.1.1") == 0x000B4000
    assert platforms.get("p2").user_part_start_address("5.0.1", module_size=8192) == 0x085FE000
    with pytest.raises(ValueError, match="grow left"):
        platforms.get("p2").user_part_start_address("5.0.1")
    with pytest.raises(ValueError, match="monolithic"):
        platforms.get("core").user_part_dependency("1.4.4")


def test_electron_system_part_files_differ_from_module_indexes() -> None:
    electron = platforms.get("electron")
    assert [electron.system_part_file(i) for i in (3, 1, 2)] == [
        "electron-system-part1",
        "electron-system-part2",
        "electron-system-part3",
    ]
    assert platforms.get("photon").system_part_file(2) == "photon-system-part2"
