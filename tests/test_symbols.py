"""The packed Device OS symbol index (fieldsafe.symbols): facts checked by hand in API-DATA.md."""

from __future__ import annotations

from fieldsafe import symbols
from fieldsafe.versions import DeviceOSVersion as V


def _present(name: str, release: str, platform: str) -> bool:
    at = symbols.indexed_release(release, platform)
    return at is not None and any(s.present(at, platform) for s in symbols.by_name().get(name, ()))


def test_hand_checked_rows() -> None:
    assert _present("CloudClass::publishVitals", "1.2.1", "photon")
    assert not _present("CloudClass::publishVitals", "1.1.1", "photon")
    assert _present("particle::Ledger", "5.9.0", "boron") and not _present("particle::Ledger", "6.0.0", "boron")
    assert _present("particle::Ledger", "6.1.0", "boron")
    assert _present("os_mutex_t", "0.4.6", "electron") and _present("system_event_t", "6.2.0", "msom")
    assert not _present("spark::WiFi", "4.0.2", "boron") and _present("spark::WiFi", "3.0.0", "tracker")
    assert not _present("spark::WiFi", "2.3.1", "tracker")


def test_release_mapping_prereleases_gaps_and_newer_releases() -> None:
    assert symbols.indexed_release("1.2.0-rc.1", "photon") == V(1, 2, 1)  # no final 1.2.0
    assert symbols.indexed_release("1.0.0", "argon") == V(0, 9, 0)  # 1.0.x had no Gen 3 build
    assert symbols.indexed_release("6.3.2", "boron") == V(6, 2, 0)
    assert symbols.indexed_release("2.3.0", "photon") == V(2, 3, 0)
    assert symbols.built_releases("p2")[0] == V(5, 0, 0)


def test_platform_macros_and_std_includes() -> None:
    boron = symbols.platform_macros(V(2, 0, 0), "boron")
    assert boron["HAL_PLATFORM_FILESYSTEM"][0] == "1"
    assert symbols.platform_macros(V(2, 0, 0), "photon")["HAL_PLATFORM_FILESYSTEM"][0] == "0"
    assert symbols.platform_macros(V(0, 7, 0), "photon")["HAL_PLATFORM_FILESYSTEM"][0] == "undefined"
    direct = {i.header for i in symbols.std_includes(V(1, 5, 0), "boron") if i.via == "direct"}
    assert "climits" in direct and "math.h" not in direct


def test_explain_missing_says_which_release_added_it() -> None:
    text = symbols.explain_missing("publishVitals", "0.7.0", "photon", "CloudClass")
    assert text and "1.2.1" in text and "0.7.0" in text
    assert "6.1.0" in (symbols.explain_missing("Ledger", "6.0.0", "boron") or "")
    assert "not declared on boron" in (symbols.explain_missing("WiFi", "4.0.2", "boron") or "")
    assert symbols.explain_missing("Ledger", "6.1.0", "boron") is None  # declared: the error is something else
    assert symbols.explain_missing("no_such_name_at_all", "6.1.0", "boron") is None
