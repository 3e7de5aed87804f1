"""The product firmware precedence (fieldsafe.releases): who gets what, and what a release would reach."""

from __future__ import annotations

from fieldsafe.releases import DeviceTargeting, ProductReleases, TargetReason, reach, target_for

RELEASES = ProductReleases(product_default=3, groups={"beta": 5, "asia": 4, "europe": 2})


def test_development_devices_never_get_product_firmware() -> None:
    device = DeviceTargeting(development=True, desired_firmware_version=5, groups=("beta",))
    target = target_for(device, RELEASES)
    assert (target.version, target.reason) == (None, TargetReason.DEVELOPMENT)


def test_locked_version_beats_groups_and_default() -> None:
    target = target_for(DeviceTargeting(desired_firmware_version=1, groups=("beta",)), RELEASES)
    assert (target.version, target.reason) == (1, TargetReason.LOCKED)


def test_highest_release_among_the_device_groups() -> None:
    target = target_for(DeviceTargeting(groups=("europe", "asia", "unreleased")), RELEASES)
    assert (target.version, target.reason, target.group) == (4, TargetReason.GROUP, "asia")


def test_group_release_beats_a_higher_product_default() -> None:
    target = target_for(DeviceTargeting(groups=("europe",)), RELEASES)
    assert (target.version, target.reason) == (2, TargetReason.GROUP)


def test_product_default_then_nothing() -> None:
    assert target_for(DeviceTargeting(groups=("unreleased",)), RELEASES).reason is TargetReason.PRODUCT_DEFAULT
    none = target_for(DeviceTargeting(), ProductReleases())
    assert (none.version, none.reason) == (None, TargetReason.NONE)


def test_quarantined_devices_are_not_targeted() -> None:
    assert target_for(DeviceTargeting(quarantined=True), RELEASES).reason is TargetReason.QUARANTINED


def test_release_replaces_the_version_targeting() -> None:
    after = RELEASES.released(5, product_default=True, groups=["asia"])
    assert after.product_default == 5
    assert after.groups == {"asia": 5, "europe": 2}  # beta lost 5, asia moved from 4 to 5
    assert RELEASES.released(3, product_default=False, groups=[]).product_default is None
    assert RELEASES.released(4, product_default=False, groups=["asia"]).product_default == 3


def test_from_firmware_reads_the_api_list_with_absent_keys() -> None:
    listed = [
        {"version": 1},
        {"version": 3, "product_default": True, "groups": []},
        {"version": 5, "groups": ["beta"]},
        {"version": "x", "groups": ["junk"]},
    ]
    assert ProductReleases.from_firmware(listed) == ProductReleases(3, {"beta": 5})


def test_from_api_parses_absent_and_null_keys() -> None:
    quarantined = {"id": "a", "quarantined": True}
    plain = {"id": "b", "desired_firmware_version": None, "groups": ["x"], "firmware_version": 2}
    assert DeviceTargeting.from_api(quarantined) == DeviceTargeting(quarantined=True)
    assert DeviceTargeting.from_api(plain) == DeviceTargeting(groups=("x",), firmware_version=2)


def test_reach_counts_devices_that_would_receive_it_by_current_version() -> None:
    devices = [
        DeviceTargeting(groups=("beta",), firmware_version=3),  # 0: beta -> 6
        DeviceTargeting(groups=("beta",), firmware_version=6),  # 1: already runs 6
        DeviceTargeting(groups=("beta",), development=True),  # 2: development
        DeviceTargeting(groups=("beta",), desired_firmware_version=3),  # 3: locked
        DeviceTargeting(firmware_version=3),  # 4: default stays 3
        DeviceTargeting(groups=("beta",)),  # 5: never ran product firmware
        DeviceTargeting(groups=("beta", "asia"), firmware_version=4),  # 6: max(6, 4)
    ]
    result = reach(devices, RELEASES, 6, product_default=False, groups=["beta"])
    assert result.indexes == (0, 5, 6) and result.total == 3
    assert result.by_version == ((None, 1), (3, 1), (4, 1))
    everyone = reach(devices, RELEASES, 6, product_default=True, groups=["beta"])
    assert everyone.indexes == (0, 4, 5, 6)
