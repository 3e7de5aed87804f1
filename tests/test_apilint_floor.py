"""The code's own Device OS floor (``apilint.code_floor``): lowest release where every unguarded API exists."""

from __future__ import annotations

from pathlib import Path

from fieldsafe import apilint
from fieldsafe.versions import DeviceOSVersion

REALCODE = Path(__file__).resolve().parent / "fixtures" / "realcode"


def test_floor_names_the_use_that_forces_it() -> None:
    texts = {"src/app.cpp": '#include "Particle.h"\nvoid setup() {\n    Particle.publishVitals(60);\n}\n'}
    floor = apilint.code_floor(texts, "boron")
    assert str(floor.release) == "1.2.1"
    assert floor.forced_by is not None and floor.forced_by.where == "src/app.cpp:3"
    assert floor.forced_by.api == "Particle.publishVitals"
    assert floor.breaks_at("1.1.1") and not floor.breaks_at("1.2.1")
    assert floor.retarget_note("0.9.0") == " — `Particle.publishVitals` at src/app.cpp:3 needs 1.2.1"
    assert floor.retarget_note("2.0.0") == ""


def test_guarded_use_does_not_raise_the_floor() -> None:
    guarded = (
        "void setup() {\n#if defined(SYSTEM_VERSION_v121) && SYSTEM_VERSION >= SYSTEM_VERSION_v121\n"
        "    Particle.publishVitals(60);\n#endif\n}\n"
    )
    floor = apilint.code_floor({"a.cpp": guarded}, "photon")
    assert floor.release == DeviceOSVersion(0, 4, 0) and floor.forced_by is None


def test_two_line_api_floor_is_the_earlier_line_and_the_gap_is_reported() -> None:
    floor = apilint.code_floor({"a.cpp": 'Ledger l;\nvoid setup() { l = Particle.ledger("x"); }\n'}, "boron")
    assert str(floor.release) == "5.8.0"
    assert [str(r) for r in floor.broken_above] == ["6.0.0"] and floor.breaks_at("6.0.0")


def test_platform_that_never_has_it_has_no_floor() -> None:
    floor = apilint.code_floor({"a.cpp": "void setup() { BLE.on(); }\n"}, "photon")
    assert floor.release is None and floor.blocked_by and floor.blocked_by[0].api == "BLE.on"
    assert "no Device OS release compiles" in floor.describe()


def test_corpus_floors_match_their_labels() -> None:
    """Where the label's minimum is the lowest release with every API, the floor finds exactly it."""
    for name, platform, want in [("01-vitals-reporter", "photon", "1.2.1"), ("16-ble-scanner-filter", "argon", "3.0.0"),
                                 ("17-tether-gateway", "boron", "5.3.1"), ("20-host-tested-sensor", "argon", "1.5.0")]:  # fmt: skip
        assert str(apilint.project_floor(REALCODE / name, platform).release) == want, name
