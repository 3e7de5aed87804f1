"""apidata: availability parsing, two-line APIs, platform rules and SYSTEM_VERSION macros."""

from __future__ import annotations

import pytest

from fieldsafe import apidata
from fieldsafe.versions import DeviceOSVersion

V = DeviceOSVersion.parse


def test_simple_since() -> None:
    a = apidata.availability("Particle.publishVitals")
    assert a is not None and a.since == V("1.2.0") and a.kind == "method"
    assert not a.available_in(V("1.1.0"))
    assert a.available_in(V("1.2.1"))
    assert a.available_in(V("1.2.0-rc.1")), "a prerelease of X counts as X"


@pytest.mark.parametrize(
    ("version", "has"),
    [("5.4.0", False), ("5.8.0", True), ("5.9.0", True), ("6.0.0", False), ("6.1.0", True), ("6.2.0", True),
     ("4.2.0", False)],
)  # fmt: skip
def test_ledger_two_lines(version: str, has: bool) -> None:
    a = apidata.availability("Ledger")
    assert a is not None
    assert a.available_in(V(version)) is has
    assert a.earliest() == V("5.8.0")


def test_watchdog_lts_line() -> None:
    a = apidata.availability("Watchdog")
    assert a is not None
    assert a.available_in(V("4.1.0")) and a.available_in(V("4.2.0"))
    assert not any(a.available_in(V(v)) for v in ("4.0.0", "5.0.0", "5.1.0", "5.2.0"))
    assert a.available_in(V("5.3.0")) and a.available_in(V("6.2.0"))
    assert a.first_release_for_line(V("5.1.0")) == V("5.3.0")
    assert a.first_release_for_line(V("4.0.2")) == V("4.1.0")


def test_gen3_absent_in_gen2_only_releases() -> None:
    a = apidata.availability("Ethernet")
    assert a is not None
    assert not a.available_in(V("1.0.0")) and not a.available_in(V("1.0.1"))
    assert a.available_in(V("0.9.0")) and a.available_in(V("1.1.0"))


def test_removed_with_gen2() -> None:
    a = apidata.availability("attachSystemInterrupt")
    assert a is not None and a.baseline
    assert a.available_in(V("3.3.1")) and not a.available_in(V("4.0.0"))


def test_platform_rules() -> None:
    ble = apidata.availability("BLE.on")
    assert ble is not None
    assert not ble.allowed_on(6) and ble.allowed_on(12) and ble.allowed_on(32)
    usage = apidata.availability("Cellular.getDataUsage")
    assert usage is not None and usage.allowed_on(10) and not usage.allowed_on(13)
    assert not apidata.availability("WiFi.on").allowed_on(10)  # type: ignore[union-attr]
    assert apidata.availability("BLE.on").allowed_on(None)  # type: ignore[union-attr]


def test_per_platform_arrival() -> None:
    a = apidata.availability("pinSetDriveStrength")
    assert a is not None
    assert a.available_in(V("2.0.0"), 12)
    assert not a.available_in(V("5.4.0"), 32) and a.available_in(V("5.5.0"), 32)


def test_overloads() -> None:
    forms = apidata.overloads("Particle.publishVitals")
    assert [str(f.since) for f in forms] == ["1.5.0"]
    assert apidata.overloads("nope") == ()


def test_macros() -> None:
    assert apidata.macro_version("SYSTEM_VERSION_v121") == V("1.2.1")
    assert apidata.macro_version("NOPE") is None
    v121 = apidata.macros()["SYSTEM_VERSION_v121"]
    assert not v121.defined_in(V("0.7.0")) and v121.defined_in(V("6.2.0"))
    v090 = apidata.macros()["SYSTEM_VERSION_v090"]
    assert v090.defined_in(V("0.9.0")) and not v090.defined_in(V("1.4.0"))
    assert apidata.macros()["SYSTEM_VERSION_v500"].defined_in(V("4.0.0"))


def test_system_version_values() -> None:
    assert apidata.system_version_value(V("6.2.0")) == 0x060200FF
    assert apidata.system_version_value(V("0.7.0")) == 0x00070000
    assert apidata.system_version_value(V("1.2.1-rc.3")) == 0x01020183
    assert apidata.system_version_value(V("2.0.0-beta.2")) == 0x02000042


def test_guard_macro() -> None:
    m = apidata.guard_macro_for(apidata.availability("Particle.publishVitals"))  # type: ignore[arg-type]
    assert m is not None and m.name == "SYSTEM_VERSION_v121"
    assert apidata.guard_macro_for(apidata.availability("Ledger")) is None  # type: ignore[arg-type]


def test_every_row_parses() -> None:
    apis = apidata.all_apis()
    assert len(apis) > 1000
    assert all(isinstance(a.since, DeviceOSVersion) for a in apis.values())
