"""The one policy table, the modules of a release, and the delivery plan (osmodules, policy, delivery)."""

from __future__ import annotations

import pytest

from fieldsafe import delivery, osmodules, policy
from fieldsafe.compat import BuildNeeds, DeviceState, check_build_against_device, ota_upgrade_cost
from fieldsafe.policy import DeviceFacts, UpgradePath

ELECTRON, BORON, P2, PHOTON = 10, 13, 32, 6


def names(specs: object) -> list[str]:
    return [s.name for s in specs]  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ osmodules


def test_electron_231_modules_in_install_order_with_dependency_chain() -> None:
    specs = osmodules.release_modules(ELECTRON, "2.3.1")
    assert names(specs) == ["bootloader", "system-part1", "system-part2", "system-part3"]
    assert [s.index for s in specs] == [0, 3, 1, 2]  # file part1 is module index 3 (particle-domain.md §2.3)
    assert [s.bytes for s in specs] == [15672, 87468, 114012, 123052]
    assert all(s.size_source == "measured (2.3.1)" for s in specs)
    boron = osmodules.release_modules(BORON, "4.2.0")[-1]
    argon = osmodules.release_modules(12, "4.2.0")[-1]
    assert [d[0] for d in boron.dependencies] == ["bootloader", "radio_stack"]
    assert [d[0] for d in argon.dependencies] == ["radio_stack", "bootloader"]  # swapped on purpose on the Argon
    part3 = specs[-1]
    assert part3.dependencies == (("system_part", 1, 2302), ("bootloader", 0, 1006))


def test_every_module_dependency_is_installed_before_it() -> None:
    for pid, release in [(ELECTRON, "2.3.1"), (BORON, "4.2.0"), (P2, "6.3.4"), (PHOTON, "1.4.4"), (26, "6.3.4")]:
        installed: dict[tuple[str, int], int] = {}
        for spec in osmodules.release_modules(pid, release):
            assert osmodules.dependencies_met(spec, installed), (pid, release, spec.name)
            installed[spec.key] = spec.version


def test_old_electron_has_two_system_parts_and_unknown_bootloader() -> None:
    assert osmodules.installed_modules(ELECTRON, "0.5.3") == {("system_part", 1): 21, ("system_part", 2): 21}


def test_modules_to_send_never_downgrades_and_keeps_companions() -> None:
    have = osmodules.installed_modules(BORON, "6.3.4")
    assert osmodules.modules_to_send(BORON, have, "4.0.2") == ()
    p2 = osmodules.modules_to_send(P2, osmodules.installed_modules(P2, "5.0.0"), "6.3.4")
    assert names(p2) == ["prebootloader-part1", "bootloader", "system-part1"]


def test_release_modules_refuses_what_cannot_exist() -> None:
    with pytest.raises(LookupError, match="never run"):
        osmodules.release_modules(ELECTRON, "4.0.0")
    with pytest.raises(LookupError, match="not in fieldsafe's Device OS release table"):
        osmodules.release_modules(BORON, "9.9.9")


# --------------------------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("device", "needed", "path", "rule"),
    [
        (DeviceFacts(BORON, "6.3.4"), "4.0.2", UpgradePath.RUNS, "runs_as_is"),
        (DeviceFacts(ELECTRON, "2.3.1", in_product=True), "4.0.0", UpgradePath.STUCK, "gen2_cap"),
        (DeviceFacts(BORON, "4.0.2", in_product=True, healer=False), "4.2.0", UpgradePath.STUCK, "healer_off"),
        (
            DeviceFacts(BORON, "4.0.2", in_product=True, updates_enabled=False),
            "4.2.0",
            UpgradePath.DEFERRED,
            "updates_disabled",
        ),
        (
            DeviceFacts(BORON, "4.0.2", in_product=True, updates_enabled=False, updates_forced=True),
            "4.2.0",
            UpgradePath.HEALER,
            "product_healer",
        ),
        (DeviceFacts(ELECTRON, "0.5.3"), "2.3.1", UpgradePath.STUCK, "developer_electron"),
        (DeviceFacts(ELECTRON, "0.5.3", healer=True), "2.3.1", UpgradePath.HEALER, "gen2_healer"),
        (DeviceFacts(BORON, "4.0.1", in_product=True), "4.0.2", UpgradePath.COMBINED_OTA, "combined_ota"),
        (DeviceFacts(BORON, "4.0.2", in_product=True), "4.2.0", UpgradePath.HEALER, "product_healer"),  # bootloader too
        (DeviceFacts(BORON, "2.0.1", in_product=True), "2.1.0", UpgradePath.HEALER, "product_healer"),  # before 3.1.0
        (DeviceFacts(PHOTON, "1.4.4"), "2.3.1", UpgradePath.HEALER, "gen2_healer"),
        (DeviceFacts(BORON, "2.3.1"), "4.2.0", UpgradePath.HEALER, "developer_healer"),
        (DeviceFacts(BORON, "7.7.7"), "4.2.0", UpgradePath.UNKNOWN, "release_unknown"),
    ],
)
def test_policy_table_rows(device: DeviceFacts, needed: str, path: UpgradePath, rule: str) -> None:
    decision = policy.decide(device, needed)
    assert (decision.path, decision.rule) == (path, rule)
    assert decision.reason and decision.certainty


def test_every_table_row_is_reachable_and_documented() -> None:
    rules = [row.rule for row in policy.POLICY_TABLE]
    assert len(rules) == len(set(rules))
    assert policy.__doc__ is not None
    for rule in rules:
        assert f"| {rule} |" in policy.__doc__


def test_compat_reads_the_same_table() -> None:
    """compat's FS101 facts name the policy row the simulator will act on (one table, two readers)."""
    cases = [
        (DeviceState("e", None, ELECTRON, "0.5.3"), "2.3.1"),
        (DeviceState("b", None, BORON, "4.0.1", product_id=4242), "4.0.2"),
        (DeviceState("b", None, BORON, "4.0.2", product_id=4242), "4.2.0"),
        (DeviceState("b", None, BORON, "4.0.2", product_id=4242, updates_enabled=False), "4.2.0"),
    ]
    for device, needed in cases:
        (found,) = check_build_against_device(BuildNeeds(device.platform_id, needed), device)
        assert found.facts["policy_rule"] == policy.decide(device.facts(), needed).rule


# ------------------------------------------------------------------------------------------- delivery


def test_plan_flash_healer_counts_modules_reboots_and_time() -> None:
    plan = delivery.plan_flash(DeviceFacts(ELECTRON, "0.5.3", in_product=True), "2.3.1", app_bytes=9_000)
    assert plan.path is UpgradePath.HEALER
    assert names(s.module for s in plan.steps) == ["bootloader", "system-part1", "system-part2", "system-part3"]
    assert plan.module_bytes == ota_upgrade_cost(ELECTRON, "0.5.3", "2.3.1").bytes == 340_204
    assert plan.total_bytes == 349_204
    assert plan.reboots == 5 and plan.cellular
    expected = delivery.transfer_seconds(340_204, True) + 5 * delivery.REBOOT_SECONDS
    assert plan.downtime_seconds == pytest.approx(expected)


def test_plan_flash_combined_stuck_and_runs() -> None:
    combined = delivery.plan_flash(DeviceFacts(BORON, "4.0.1", in_product=True), "4.0.2", app_bytes=9_965)
    assert combined.path is UpgradePath.COMBINED_OTA and combined.reboots == 1
    assert names(s.module for s in combined.steps) == ["system-part1"]
    stuck = delivery.plan_flash(DeviceFacts(ELECTRON, "0.5.3"), "2.3.1", app_bytes=9_000)
    assert stuck.path is UpgradePath.STUCK and stuck.steps == () and stuck.downtime_seconds is None
    runs = delivery.plan_flash(DeviceFacts(BORON, "6.3.4"), "4.0.2", app_bytes=9_000)
    assert runs.path is UpgradePath.RUNS and runs.total_bytes == 9_000


def test_plan_update_os_electron_053_to_231_and_intermediate_hop() -> None:
    plan = delivery.plan_update_os(DeviceFacts(ELECTRON, "0.5.3"), "2.3.1")
    assert plan.path is UpgradePath.PLANNED and plan.intermediate_releases == ()
    assert [(s.module.name, s.release) for s in plan.steps] == [
        ("bootloader", "2.3.1"),
        ("system-part1", "2.3.1"),
        ("system-part2", "2.3.1"),
        ("system-part3", "2.3.1"),
    ]
    assert plan.total_bytes == 340_204 and plan.reboots == 4
    hop = delivery.plan_update_os(DeviceFacts(ELECTRON, "0.5.1"), "2.3.1")
    assert hop.intermediate_releases == ("0.5.3",)
    assert [s.release for s in hop.steps][:2] == ["0.5.3", "0.5.3"]


def test_plan_update_os_refuses_downgrade_and_cap() -> None:
    down = delivery.plan_update_os(DeviceFacts(BORON, "6.3.4"), "4.0.2")
    assert down.path is UpgradePath.REFUSED and down.decision.rule == "no_downgrade" and down.steps == ()
    cap = delivery.plan_update_os(DeviceFacts(ELECTRON, "2.3.1"), "4.0.0")
    assert cap.path is UpgradePath.REFUSED and cap.decision.rule == "gen2_cap"
    disabled = delivery.plan_update_os(DeviceFacts(BORON, "4.0.2", updates_enabled=False), "6.3.4")
    assert disabled.path is UpgradePath.DEFERRED and disabled.steps == ()


def test_updates_disabled_refuses_even_a_compatible_app_and_unreleased_targets_are_refused() -> None:
    compatible = policy.decide(DeviceFacts(BORON, "6.3.4", updates_enabled=False), "4.0.2")
    assert compatible.path is UpgradePath.DEFERRED and compatible.then is UpgradePath.RUNS
    p2 = delivery.plan_update_os(DeviceFacts(P2, "5.8.0"), "6.1.1")  # 6.1.1 was never released for the P2
    assert p2.path is UpgradePath.REFUSED and p2.decision.rule == "not_for_platform"
    with pytest.raises(LookupError, match="not released for the Photon 2"):
        osmodules.release_modules(P2, "6.1.1")


def test_deferred_flash_says_what_happens_once_updates_are_enabled() -> None:
    device = DeviceFacts(BORON, "4.0.2", in_product=True, updates_enabled=False)
    decision = policy.decide(device, "4.2.0")
    assert decision.path is UpgradePath.DEFERRED and decision.then is UpgradePath.HEALER
    assert decision.eventual is UpgradePath.HEALER and not decision.safe_mode
    plan = delivery.plan_flash(device, "4.2.0", app_bytes=9_000)
    assert plan.steps == () and plan.reboots == 0 and plan.downtime_seconds == 0.0 and plan.total_bytes == 0


def test_plan_json_round_trips_key_figures() -> None:
    plan = delivery.plan_flash(DeviceFacts(BORON, "4.0.2", in_product=True), "4.2.0", app_bytes=9_965)
    data = plan.to_json()
    assert data["path"] == "healer" and data["total_bytes"] == plan.total_bytes
    assert [s["name"] for s in data["steps"]] == ["bootloader", "system-part1"]  # type: ignore[union-attr]
