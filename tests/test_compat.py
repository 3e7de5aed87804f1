"""Tests for fieldsafe.compat: build needs vs device has (FS1xx) and OTA upgrade costs.

Expected numbers come from the bundled tables (system-versions.tsv, module-sizes.tsv) and the real
fixture binaries, never from arithmetic on version numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldsafe.compat import (
    BuildNeeds,
    DeviceState,
    binary_requirement,
    check_binary_against_pin,
    check_build_against_device,
    check_device_os_flash,
    check_target,
    ota_upgrade_cost,
)
from fieldsafe.findings import Finding, Fix, Severity
from fieldsafe.modules import Dependency, build_user_module, parse_file, parse_module
from fieldsafe.versions import DeviceOSVersion

BINARIES = Path(__file__).parent / "fixtures" / "particle-binaries"

ELECTRON, BORON, ARGON, XENON, PHOTON, P2, ESOMX = 10, 13, 12, 14, 6, 32, 15


def electron(**kw: object) -> DeviceState:
    base: dict[str, object] = {
        "name": "field-unit-7",
        "device_id": "e00fce68a1b2c3d4e5f6a7b8",
        "platform_id": ELECTRON,
        "device_os": "0.5.3",
        "cellular": True,
    }
    base.update(kw)
    return DeviceState(**base)  # type: ignore[arg-type]


def boron(**kw: object) -> DeviceState:
    base: dict[str, object] = {"name": "boron-3", "device_id": "e00b0f0", "platform_id": BORON, "device_os": "4.0.2"}
    base.update(kw)
    return DeviceState(**base)  # type: ignore[arg-type]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [f.message for f in findings]
    return findings[0]


def fix_kinds(finding: Finding) -> list[str]:
    return [f.kind for f in finding.fixes]


# ------------------------------------------------------------------------------------------- FS101


def test_safe_mode_non_product_electron_is_an_error_with_both_fixes() -> None:
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "2.3.1"), electron()))
    assert f.code == "FS101"
    assert f.severity is Severity.ERROR
    assert f.message.startswith(
        "Builds for 2.3.1 need Device OS 2.3.1 (module 2302); `field-unit-7` (Electron, cellular) runs 0.5.3 "
        "(module 21): flashed over the air it boots in Safe Mode"
    )
    assert "Electrons outside a product are documented as not healed" in f.message
    assert "later reports are mixed" in f.message
    assert "approx 340 KB over cellular data (3 system parts + bootloader; sizes as of 2.3.1)" in f.message
    assert f.facts["needs_module"] == 2302
    assert f.facts["device_module"] == 21
    assert f.facts["device_release"] == "0.5.3"
    assert f.facts["pinned_release"] == "2.3.1"
    assert f.facts["healed"] == "uncertain"
    assert f.facts["cellular"] is True
    assert f.facts["upgrade_bytes"] == 87468 + 114012 + 123052 + 15672
    assert f.fixes[0] == Fix(
        "retarget", "Retarget to 0.5.3 (what field-unit-7 runs)", {"release": "0.5.3", "device": "field-unit-7"}
    )
    assert f.fixes[1].kind == "update-device"
    assert f.fixes[1].title == "Update field-unit-7 to 2.3.1 first (~340 KB over cellular)"
    assert f.fixes[1].params == {"release": "2.3.1", "bytes": 340204, "device": "field-unit-7"}
    assert "field-unit-7 (Electron) runs 0.5.3 (module 21)" in f.related[0].message


def test_safe_mode_product_electron_is_healed_at_a_cost() -> None:
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "2.3.1"), electron(product_id=8178)))
    assert f.severity is Severity.WARNING
    assert "As a product device it should be healed" in f.message
    assert "reboots several times" in f.message
    assert "product 8178" in f.message
    assert f.facts["healed"] == "yes"
    assert f.facts["product_id"] == 8178


def test_product_id_equal_to_platform_id_means_developer_device() -> None:
    # The cloud reports product_id == platform_id for devices outside a product.
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "2.3.1"), electron(product_id=ELECTRON)))
    assert f.severity is Severity.ERROR
    assert f.facts["product_id"] is None


def test_safe_mode_updates_disabled_is_deferred_then_healed() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron(product_id=4242, updates_enabled=False)))
    assert f.code == "FS101"
    assert f.severity is Severity.WARNING  # a product device: healed once updates are enabled
    assert "updates disabled, so it refuses the OTA and keeps running its current app" in f.message
    assert "approx 619 KB over cellular data" in f.message
    assert f.facts["healed"] == "deferred" and f.facts["path"] == "deferred"
    assert "update-device" in fix_kinds(f)


def test_safe_mode_updates_disabled_developer_electron_is_an_error() -> None:
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "2.3.1"), electron(updates_enabled=False)))
    assert f.severity is Severity.ERROR  # once updates are enabled it boots in Safe Mode and is not healed
    assert "is not healed" in f.message


def test_safe_mode_boron_developer_device_likely_healed_with_cost() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron()))
    assert f.severity is Severity.WARNING
    assert "Builds for 6.3.4 need Device OS 6.3.4 (module 6305)" in f.message
    assert "runs 4.0.2 (module 4006)" in f.message
    assert "very likely healed (community reports, no official statement)" in f.message
    assert "approx 619 KB over cellular data (1 system part + bootloader; sizes as of 6.3.4)" in f.message
    assert f.facts["healed"] == "likely"
    assert f.facts["upgrade_bytes"] == 570164 + 48802
    assert f.fixes[1].title == "Update boron-3 to 6.3.4 first (~619 KB over cellular)"


def test_safe_mode_wifi_device_says_nothing_about_cellular() -> None:
    dev = DeviceState("lab-argon", None, ARGON, "5.9.0")
    f = only(check_build_against_device(BuildNeeds(ARGON, "6.3.2"), dev))
    assert "module 6303" in f.message and "runs 5.9.0 (module 5901)" in f.message
    assert "cellular" not in f.message
    assert f.fixes[1].title.endswith("KB)")


def test_gen2_device_asked_beyond_its_cap_never_heals_and_gets_no_update_fix() -> None:
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "4.0.2"), electron(device_os="2.3.1", product_id=99)))
    assert f.code == "FS101"
    assert f.severity is Severity.ERROR
    assert "module 4006" in f.message
    assert "does not exist for the Electron" in f.message
    assert fix_kinds(f) == ["retarget"]
    assert f.facts["healed"] == "no"


def test_binary_dependency_against_old_electron() -> None:
    info = parse_file(BINARIES / "product_firmware.bin")
    needs = BuildNeeds(info.platform_id, dependency_version=info.dependencies[0].version, source="binary")
    f = only(check_build_against_device(needs, electron()))
    assert f.code == "FS101"
    assert f.message.startswith("This binary needs Device OS 1.2.0-beta.1 or later (system part 2 >= 1201)")
    assert "runs 0.5.3 (module 21)" in f.message
    assert f.facts["source"] == "binary"
    assert f.facts["needs_module"] == 1201
    assert f.facts["pinned_release"] is None


def test_binary_dependency_beyond_the_table_still_compared_by_number() -> None:
    needs = BuildNeeds(BORON, dependency_version=9000, source="binary")
    f = only(check_build_against_device(needs, boron(device_os="6.3.4")))
    assert "newer than every release fieldsafe knows" in f.message
    assert "a Device OS update of unknown size" in f.message
    assert fix_kinds(f) == ["retarget"]


def test_last_known_device_state_says_how_old_it_is() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron(age_seconds=5 * 86400)))
    assert "; last known state, 5 days old)" in f.message
    live = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron()))
    assert "last known state" not in live.message
    assert f.facts["age_seconds"] == 5 * 86400


# ------------------------------------------------------------------------------ FS102, FS103, FS112


def test_equal_versions_are_silent() -> None:
    assert check_build_against_device(BuildNeeds(BORON, "4.0.2"), boron()) == []
    needs = BuildNeeds(BORON, dependency_version=4006, source="binary")
    assert check_build_against_device(needs, boron()) == []


def test_platform_mismatch() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "2.3.1"), electron()))
    assert f.code == "FS102"
    assert f.severity is Severity.ERROR
    assert "for the Boron but `field-unit-7` is an Electron" in f.message
    assert f.fixes == (Fix("set-platform", "Target electron (what field-unit-7 is)", {"platform": "electron"}),)


def test_target_older_than_device_is_a_hint() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "2.3.1"), boron(device_os="6.3.4")))
    assert f.code == "FS103"
    assert f.severity is Severity.HINT
    assert "Builds for 2.3.1 (module 2302) run on `boron-3`" in f.message
    assert "6.3.4 (module 6305)" in f.message
    assert "OTA never downgrades" in f.message
    assert f.facts["device_module"] == 6305 and f.facts["needs_module"] == 2302
    assert f.fixes[0].params["release"] == "6.3.4"


def test_target_older_than_device_names_the_apis_given_up() -> None:
    from fieldsafe import apidata

    dev = DeviceState("lab-photon", None, PHOTON, "1.5.2")
    f = only(check_build_against_device(BuildNeeds(PHOTON, "0.7.0"), dev))
    given_up = f.facts["apis_given_up"]
    assert "Particle.publishVitals" in given_up
    assert "gives up APIs added after it up to 1.5.2" in f.message
    for name in given_up:
        api = apidata.availability(name)
        assert api is not None and api.available_in(dev_release("1.5.2"), PHOTON)
        assert not api.available_in(dev_release("0.7.0"), PHOTON)
    # Ledger came to the 6.x line only with 6.1.0 (absent in 6.0.0): targeting 6.0.0 gives it up on 6.1.0.
    f = only(check_build_against_device(BuildNeeds(BORON, "6.0.0"), boron(device_os="6.1.0")))
    assert "Ledger" in f.facts["apis_given_up"]
    f = only(check_build_against_device(BuildNeeds(BORON, "5.9.0"), boron(device_os="6.0.0")))
    assert "Ledger" not in f.facts["apis_given_up"]


def dev_release(text: str) -> DeviceOSVersion:
    return DeviceOSVersion.parse(text)


def test_device_without_release_and_with_unknown_release() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron(device_os=None)))
    assert (f.code, f.severity) == ("FS112", Severity.INFO)
    f = only(check_build_against_device(BuildNeeds(BORON, "6.3.4"), boron(device_os="6.3.1")))
    assert (f.code, f.severity) == ("FS112", Severity.WARNING)
    assert "6.3.1" in f.message


def test_unknown_pin_in_device_check_reports_fs104() -> None:
    f = only(check_build_against_device(BuildNeeds(BORON, "7.0.0"), boron()))
    assert f.code == "FS104"


def test_build_needs_without_release_or_dependency_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"release .* dependency_version"):
        check_build_against_device(BuildNeeds(BORON), boron())


# ---------------------------------------------------------------------------------- check_target


def test_valid_targets_are_silent() -> None:
    assert check_target("6.3.4", "boron") == []
    assert check_target("2.3.1", "electron") == []
    assert check_target("v5.9.0", BORON) == []
    assert check_target("4.0.2", None) == []


def test_gen2_cap() -> None:
    f = only(check_target("4.0.2", "electron"))
    assert (f.code, f.severity) == ("FS107", Severity.ERROR)
    assert "Device OS 4.0.2 (module 4006) does not exist for the Electron" in f.message
    assert "stop at 3.3.1" in f.message
    assert [x.params["release"] for x in f.fixes] == ["2.3.1", "3.3.1"]
    assert f.fixes[0].title == "Retarget to 2.3.1 (2.x LTS, recommended for Gen 2)"


def test_release_not_for_platform_names_nearest() -> None:
    f = only(check_target("0.5.3", "boron"))
    assert (f.code, f.severity) == ("FS106", Severity.ERROR)
    assert "not released for the Boron" in f.message
    assert f.facts["nearest"] and all(x.kind == "retarget" for x in f.fixes)


def test_module_312_twins_rc13_and_rc14() -> None:
    # 0.8.0-rc.14 (Photon/Electron) and 0.8.0-rc.13 (Argon/Xenon) share module 312.
    findings = check_target("0.8.0-rc.14", "argon")
    f = findings[0]
    assert f.code == "FS106"
    assert "module 312" in f.message
    assert "same module number is 0.8.0-rc.13" in f.message
    assert f.fixes[0].params["release"] == "0.8.0-rc.13"
    assert findings[1].code == "FS108"
    xenon_app = binary_requirement(parse_file(BINARIES / "080_user-part-xenon.bin"))
    assert xenon_app.exact_releases == ("0.8.0-rc.13",)


def test_unknown_release_variants() -> None:
    f = only(check_target("9.9.9", "boron"))
    assert (f.code, f.severity) == ("FS104", Severity.WARNING)
    assert "newer than the newest release it knows" in f.message
    f = only(check_target("6.3.1", "boron"))
    assert f.severity is Severity.WARNING
    assert {"6.3.0", "6.3.2"} <= set(f.facts["nearest"])
    f = only(check_target("2.9.0", "boron"))
    assert f.severity is Severity.ERROR
    f = only(check_target("latest-ish", 13))
    assert f.severity is Severity.ERROR
    assert "not a Device OS version" in f.message


def test_unknown_platform() -> None:
    f = only(check_target("6.2.0", "boronn"))
    assert (f.code, f.severity) == ("FS105", Severity.ERROR)
    assert "boron" in f.message


def test_prerelease_hint() -> None:
    f = only(check_target("5.9.0-rc.1", "boron"))
    assert (f.code, f.severity) == ("FS108", Severity.HINT)
    assert "module 5900" in f.message
    assert f.fixes[0].params["release"] == "5.9.0"


# ------------------------------------------------------------------------------------------ FS109


def test_ota_never_downgrades() -> None:
    f = only(check_device_os_flash("4.0.2", boron(device_os="6.3.4")))
    assert (f.code, f.severity) == ("FS109", Severity.WARNING)
    assert "OTA never downgrades Device OS" in f.message
    assert "runs 6.3.4 (module 6305), newer than 4.0.2 (module 4006)" in f.message
    assert check_device_os_flash("6.3.4", boron()) == []
    assert only(check_device_os_flash("4.0.2", electron())).code == "FS107"


# ------------------------------------------------------------------------------------ binaries vs pin


def test_binary_matches_pin() -> None:
    assert check_binary_against_pin(parse_file(BINARIES / "argon-tinker-620.bin"), "6.1.1", ARGON) == []
    assert check_binary_against_pin(parse_file(BINARIES / "tinker-6.3.4-esomx.bin"), "6.3.4", ESOMX) == []


def test_binary_built_for_older_than_pin_is_a_warning() -> None:
    f = only(check_binary_against_pin(parse_file(BINARIES / "argon-tinker-620.bin"), "6.2.0", ARGON))
    assert (f.code, f.severity) == ("FS110", Severity.WARNING)
    assert "system part 1 >= 6101 (6.1.1)" in f.message
    assert "pins 6.2.0 (module 6200)" in f.message
    assert f.facts["dependency"]["version"] == 6101
    assert f.fixes[0].params == {"release": "6.1.1"}


def test_binary_newer_than_pin_is_an_error() -> None:
    info = parse_file(BINARIES / "tinker-6.3.4-esomx.bin")
    f = only(check_binary_against_pin(info, "6.3.3", ESOMX))  # 6.3.3 = 6304, the binary needs 6305
    assert (f.code, f.severity) == ("FS110", Severity.ERROR)
    assert "Safe Mode" in f.message
    f = only(check_binary_against_pin(parse_file(BINARIES / "product_firmware.bin"), "0.5.3", ELECTRON))
    assert "system part 2 >= 1201 (1.2.0-beta.1)" in f.message
    assert "pins 0.5.3 (module 21)" in f.message


def test_binary_platform_and_function_checks() -> None:
    f = only(check_binary_against_pin(parse_file(BINARIES / "argon-tinker-620.bin"), "6.1.1", BORON))
    assert (f.code, f.severity) == ("FS111", Severity.ERROR)
    f = only(check_binary_against_pin(parse_file(BINARIES / "p2-bootloader@5.6.0.bin"), "5.6.0", P2))
    assert f.code == "FS114"


def test_binary_dependency_beyond_table() -> None:
    data = build_user_module(
        platform_id=BORON,
        module_index=2,
        dependency=Dependency(4, 1, 9000),
        start_address=0xB4000,
        payload=b"\0" * 64,
    )
    f = only(check_binary_against_pin(parse_module(data), "6.3.4", BORON))
    assert (f.code, f.severity) == ("FS113", Severity.WARNING)


def test_binary_requirement_summaries() -> None:
    req = binary_requirement(parse_file(BINARIES / "argon-tinker-620.bin"))
    assert req.text == "Argon app (user part 2) needs system part 1 >= 6101: Device OS 6.1.1 or later"
    assert req.min_release == "6.1.1"
    req = binary_requirement(parse_file(BINARIES / "product_firmware.bin"))
    assert req.exact_releases == ("1.2.0-beta.1",)
    assert "system part 2 >= 1201" in req.text
    req = binary_requirement(parse_file(BINARIES / "p2-bootloader@5.6.0.bin"))
    assert req.min_release is None and "no Device OS dependency" in req.text


# ----------------------------------------------------------------------------------- upgrade costs


def test_upgrade_cost_electron_053_to_231() -> None:
    cost = ota_upgrade_cost(ELECTRON, "0.5.3", "2.3.1")
    assert cost.bytes == 87468 + 114012 + 123052 + 15672
    assert [m.name for m in cost.modules] == ["system-part1", "system-part2", "system-part3", "bootloader"]
    assert {m.source_release for m in cost.modules} == {"2.3.1"}
    assert cost.approximate  # 0.5.3's bootloader is not in the table, so counting it is a guess
    assert "bootloader" in cost.note


def test_upgrade_cost_boron_402_to_634() -> None:
    cost = ota_upgrade_cost(BORON, "4.0.2", "6.3.4")
    assert cost.bytes == 570164 + 48802  # bootloader 1101 -> 3200 changes; SoftDevice 202 does not
    assert [m.name for m in cost.modules] == ["system-part1", "bootloader"]
    assert not cost.approximate
    assert "upper bound" in cost.note and "373,462" in cost.note
    assert "SoftDevice" in cost.note


def test_upgrade_cost_picks_nearest_measured_release() -> None:
    cost = ota_upgrade_cost(BORON, "2.3.1", "4.0.2")  # 4.2.0 (4200) is nearest to 4006
    assert {m.source_release for m in cost.modules} == {"4.2.0"}
    assert cost.approximate
    assert [m.name for m in ota_upgrade_cost(PHOTON, "1.4.4", "2.3.1").modules] == [
        "system-part1",
        "system-part2",
        "bootloader",
    ]


def test_upgrade_cost_old_gen3_counts_softdevice_and_borrows_for_xenon() -> None:
    cost = ota_upgrade_cost(ARGON, "1.2.1", "4.0.2")
    assert any(m.name == "softdevice" for m in cost.modules)
    xenon = ota_upgrade_cost(XENON, "1.2.1", "1.5.2")
    assert xenon.approximate and all("[boron]" in m.name for m in xenon.modules)


def test_upgrade_cost_rtl872x_includes_prebootloader() -> None:
    cost = ota_upgrade_cost(P2, "5.0.0", "6.3.4")
    assert [m.name for m in cost.modules] == ["system-part1", "bootloader", "prebootloader-part1"]
    assert cost.bytes == 1240588 + 61748 + 79804


def test_upgrade_cost_edges() -> None:
    assert ota_upgrade_cost(BORON, "6.3.4", "4.0.2").bytes == 0
    unknown_from = ota_upgrade_cost(BORON, None, "6.3.4")
    assert unknown_from.approximate and any(m.name == "softdevice" for m in unknown_from.modules)
    with pytest.raises(LookupError, match="never run"):
        ota_upgrade_cost(ELECTRON, "2.3.1", "4.0.2")
    with pytest.raises(LookupError, match="not in fieldsafe's Device OS release table"):
        ota_upgrade_cost(BORON, "4.0.2", "6.3.1")


def test_findings_serialise() -> None:
    f = only(check_build_against_device(BuildNeeds(ELECTRON, "2.3.1"), electron()))
    data = f.to_json()
    assert data["code"] == "FS101" and data["severity"] == "error"
    assert data["fixes"][0]["params"]["release"] == "0.5.3"


def test_device_state_from_cloud_json() -> None:
    from fieldsafe.compat import device_state_from_cloud

    raw = {
        "id": "e00fce68",
        "name": "field-unit-7",
        "platform_id": 10,
        "product_id": 10,
        "cellular": True,
        "system_firmware_version": "0.5.3",
        "firmware_updates_enabled": False,
        "last_heard": "2026-11-01T00:00:00Z",
    }
    state = device_state_from_cloud(raw, age_seconds=120.0)
    assert (state.name, state.platform_id, state.device_os, state.cellular) == ("field-unit-7", 10, "0.5.3", True)
    assert not state.in_product and state.updates_enabled is False and state.age_seconds == 120.0
    assert state.product is None and state.online is None  # product_id == platform_id: a developer device
    product_device = device_state_from_cloud({"id": "abc", "platform_id": 13, "product_id": 4242, "connected": True})
    assert product_device.in_product and product_device.product == 4242 and product_device.online is True
    assert device_state_from_cloud({"id": "abc", "platform_id": "13"}).platform_id == -1  # never a crash


def test_keyword_and_range_pins_are_a_drift_warning_checked_as_what_they_mean_today() -> None:
    from fieldsafe.compat import BuildNeeds, DeviceState, check_build_against_device, check_target

    (drift,) = check_target("latest-lts", "electron")
    assert drift.code == "FS115" and drift.severity == Severity.WARNING
    assert drift.facts["resolved_release"] == "2.3.1" and drift.fixes[0].params == {"release": "2.3.1"}
    codes = [f.code for f in check_target("latest", "electron")]
    assert codes == ["FS115"]  # 3.3.1: the newest an Electron can run, so no Gen 2 cap finding
    assert [f.code for f in check_target("banana", "electron")] == ["FS104"]
    assert [f.code for f in check_target("latest", None)] == ["FS104"]  # no platform: nothing to resolve against
    device = DeviceState("field-unit-7", "e00f", 10, "0.5.3", cellular=True)
    assert [f.code for f in check_build_against_device(BuildNeeds(10, release="4.x"), device)] == ["FS104"]
    assert [f.code for f in check_build_against_device(BuildNeeds(10, release="2.x"), device)] == ["FS101"]


def test_retarget_title_says_what_the_device_must_download() -> None:
    from fieldsafe.compat import DeviceState, retarget_title

    electron = DeviceState("field-unit-7", "e00f", 10, "0.5.3", cellular=True)
    assert retarget_title("0.5.3", 10, electron) == "Retarget to 0.5.3"
    assert retarget_title("1.2.1", 10, electron).startswith("Retarget to 1.2.1 (field-unit-7 must be updated: ~")
    assert retarget_title("1.2.1", 10, electron).endswith(" KB over the air)")
    assert retarget_title("1.2.1", 10, None) == "Retarget to 1.2.1"
