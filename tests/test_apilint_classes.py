"""The classes of false results issue 13 lists, one test each (the corpus covers them in context)."""

from __future__ import annotations

from fieldsafe import apilint
from fieldsafe.findings import Severity

NOTHING = frozenset()  # a project whose files define no macros: unknown names are undefined, as gcc reads them


def lint(text: str, target: str, platform: str | int | None, names: frozenset[str] | None = NOTHING) -> list:
    from fieldsafe import platforms

    pid = None if platform is None else platforms.get(platform).id
    return apilint.lint_source(text, "a.cpp", target, pid, project_names=names)


def apis(findings: list) -> list[tuple[str, str]]:
    return [(f.code, f.facts["api"]) for f in findings]


def test_hal_platform_macros_are_evaluated_per_platform_and_release() -> None:
    fs = "#if HAL_PLATFORM_FILESYSTEM\nvoid f() { Particle.publishVitals(); }\n#endif\n"
    assert lint(fs, "2.0.0", "photon") == []  # 0 on Photon: never compiled there
    assert apis(lint(fs, "1.1.0", "argon")) == [("FS201", "Particle.publishVitals")]  # 1 on Argon
    nrf = "#if HAL_PLATFORM_NRF52840\nvoid f() { BLE.on(); }\n#endif\n"
    assert lint(nrf, "2.0.0", "electron") == []
    wifi = (
        '#if HAL_PLATFORM_WIFI && !HAL_PLATFORM_WIFI_SCAN_ONLY\nvoid f() { WiFi.setCredentials("a", "b"); }\n#endif\n'
    )
    assert lint(wifi, "3.1.0", "tracker") == [] and lint(wifi, "3.1.0", "argon") == []


def test_platform_id_constants_follow_the_release() -> None:
    # PLATFORM_PHOTON_PRODUCTION is gone after 3.3.1: undefined, so 0, and PLATFORM_ID == 0 is false on P2
    text = "#if PLATFORM_ID == PLATFORM_PHOTON_PRODUCTION\nvoid f() { BLE.on(); }\n#endif\n"
    assert lint(text, "5.0.0", "p2") == []


def test_defined_of_a_macro_nobody_defines_is_false_and_findings_say_a_flag_is_assumed() -> None:
    mock = "#if defined(UNIT_TEST)\nvoid f() { Ledger l; }\n#endif\n"
    assert lint(mock, "1.5.0", "boron") == []  # the preprocessor reads UNIT_TEST as undefined
    assert apis(lint(mock, "1.5.0", "boron", names=frozenset({"UNIT_TEST"}))) == [
        ("FS201", "Ledger")
    ]  # a file defines it
    real = "#ifndef UNIT_TEST\nvoid f() { Particle.publishVitals(); }\n#endif\n"
    [f] = lint(real, "1.1.0", "boron")
    assert "assumes UNIT_TEST is not defined" in f.message and "build flag" in f.message
    assert lint(mock, "1.5.0", "boron", names=None) != []  # a lone file (no project known): still "maybe"


def test_tracker_scan_only_wifi_and_tether_platforms() -> None:
    assert lint("void f() { WiFi.scan(nullptr, 0); WiFi.on(); }\n", "3.0.0", "tracker") == []
    assert apis(lint("void f() { WiFi.scan(nullptr, 0); }\n", "2.3.1", "tracker")) == [("FS201", "WiFi.scan")]
    assert apis(lint('void f() { WiFi.setCredentials("a"); }\n', "3.0.0", "tracker"))[0][0] == "FS203"
    assert lint("void f() { Tether.on(); }\n", "6.2.0", "boron") == []
    assert apis(lint("void f() { Tether.on(); }\n", "6.2.0", "msom")) == [("FS203", "Tether.on")]
    assert apis(lint("void f() { Tether.on(); }\n", "6.1.0", "boron")) == [("FS201", "Tether.on")]


def test_names_only_the_symbol_index_knows() -> None:
    text = (
        "CellularGlobalIdentity cgi;\nvoid f() { cellular_global_identity(&cgi, nullptr); int x = SERIAL_HALF_DUPLEX;"
        " time32_t t = 0; }\n"
    )
    got = apis(lint(text, "0.6.4", "electron"))
    assert ("FS201", "CellularGlobalIdentity") in got and ("FS201", "cellular_global_identity") in got
    assert ("FS201", "SERIAL_HALF_DUPLEX") in got and ("FS201", "time32_t") in got
    assert lint(text, "2.0.0", "electron") == []


def test_class_members_from_the_index() -> None:
    text = 'void f(const Variant& v, LedgerData d) { v.isBuffer(); d.has("x"); }\n'
    assert apis(lint(text, "6.1.0", "boron")) == [("FS201", "Variant::isBuffer")]
    assert lint(text, "6.2.0", "boron") == []


def test_chrono_literals_outside_calls_need_1_5_0() -> None:
    text = "const auto interval = 10s;\nvoid f() { auto t = 6min; }\n"
    assert [(f.code, f.span.line) for f in lint(text, "1.4.4", "boron")] == [("FS201", 1), ("FS201", 2)]
    assert lint(text, "1.5.0", "boron") == []
    own = "#include <chrono>\nusing namespace std::chrono_literals;\nconst auto interval = 10s;\n"
    assert lint(own, "1.4.4", "boron") == []


def test_declared_but_documented_later_is_a_runtime_warning_not_a_compile_error() -> None:
    [f] = lint("void f() { auto m = SystemSleepMode::ULTRA_LOW_POWER; }\n", "1.5.0", "boron")
    assert f.code == "FS206" and f.severity == Severity.WARNING
    assert "compiles" in f.message and "2.0.0" in f.message and "rejects it at run time" in f.message
    assert lint("void f() { auto m = SystemSleepMode::ULTRA_LOW_POWER; }\n", "2.0.0", "boron") == []


def test_names_in_conditions_are_not_uses() -> None:
    assert lint("#if defined(SYSTEM_VERSION_v150)\n#endif\n", "0.7.0", "photon") == []


def test_arduino_h_adds_compatibility_names() -> None:
    text = '#include "Arduino.h"\nSPISettings s;\n'
    assert lint(text, "1.4.4", "argon") == []
    assert apis(lint("SPISettings s;\n", "1.4.4", "argon")) == [("FS201", "SPISettings")]


def test_platform_error_offers_the_platform_macro_guard() -> None:
    for text, target, platform, macro in [
        ("void f() { Tether.on(); }\n", "6.2.0", "msom", "HAL_PLATFORM_PPP_SERVER"),
        (
            'void f() { WiFi.setCredentials("a"); }\n',
            "3.0.0",
            "tracker",
            "HAL_PLATFORM_WIFI && !HAL_PLATFORM_WIFI_SCAN_ONLY",
        ),
        ("void f() { BLE.on(); }\n", "3.3.1", "photon", "Wiring_BLE"),
    ]:
        [f] = lint(text, target, platform)
        assert f.code == "FS203" and [x.params["condition"] for x in f.fixes if x.kind == "guard"] == [macro]
        guarded = apilint.apply_guard_edit(text, apilint.guard_edit(text, 1, f.fixes[0], f.span.column))
        assert lint(guarded, target, platform) == []  # the guard it offers is one the check understands
