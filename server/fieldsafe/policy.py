"""THE healer/upgrade policy: what the cloud does with a device whose Device OS is older than a build needs.

Why one table: fieldsafe predicts (``compat``, ``delivery``, ``fleet``) and the emulator's field simulator
acts out the same consequences. If each kept its own rules, the simulator would only ever confirm itself.
Both read :data:`POLICY_TABLE`; the simulator may override a device's healer with the state file's
``healer`` field (``DeviceFacts.healer``), which the table also reads.

The rows, first match wins (sources: shared/docs/particle-domain.md §9, fleet-api.md §0 and §2):

| rule | path | certainty | source |
| --- | --- | --- | --- |
| release_unknown | unknown | - | the device's release is not in the table |
| updates_disabled | deferred | documented | ``System.disableUpdates()``: the device refuses any OTA and keeps its app; ``firmware_updates_forced`` overrides it ([ota]) |
| runs_as_is | runs | documented | the device's own ``>=`` dependency check (§2.1); OTA never downgrades (§9.5) |
| gen2_cap | stuck | documented | Photon/P1/Electron have no Device OS after 3.3.1 (§9.5) |
| healer_off | stuck | state file | a per-device override (emulator state / what a user knows of a device) |
| developer_electron | stuck | reported | Electrons outside a product are not healed, to save cellular data (§9.4) |
| combined_ota | combined_ota | documented | Gen 3+ on >= 3.1.0 that only needs a newer system part: one transfer, no Safe Mode ([fue]) |
| product_healer | healer | documented | product devices are healed, one module per reboot ([fue], §9.3) |
| gen2_healer | healer | documented | Photon/P1 developer devices are healed (§9.4) |
| developer_healer | healer | reported | Gen 3+ developer devices are very likely healed (community reports, §9.4) |

Pure: no network, no editor imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fieldsafe import osmodules, platforms
from fieldsafe.platforms import Platform
from fieldsafe.versions import DeviceOSVersion, Release, catalog

_COMBINED_OTA_FROM = DeviceOSVersion(3, 1, 0)


class UpgradePath(StrEnum):
    """What happens to a device that receives a build (or a planned Device OS update)."""

    RUNS = "runs"  # the device already has what the build needs: the app runs after one reboot
    COMBINED_OTA = "combined_ota"  # app and system part in one transfer, no Safe Mode
    HEALER = "healer"  # Safe Mode, then the cloud sends one missing module per reboot
    STUCK = "stuck"  # Safe Mode, and nothing heals it: the app does not run until someone acts
    DEFERRED = "deferred"  # updates disabled: the device refuses the OTA and keeps running its current app
    UNKNOWN = "unknown"  # the device's Device OS is unknown: no prediction
    PLANNED = "planned"  # a planned module-by-module update (fieldsafe update-os)
    REFUSED = "refused"  # a planned update that OTA cannot do (downgrade, past the Gen 2 cap)


@dataclass(frozen=True)
class DeviceFacts:
    """What the policy needs to know about a device (the cloud's device JSON, or the emulator's state)."""

    platform_id: int
    release: str | None
    in_product: bool = False
    development: bool = False
    updates_enabled: bool = True
    updates_forced: bool = False
    cellular: bool | None = None
    healer: bool | None = None  # per-device override (None = follow the table)

    @property
    def is_cellular(self) -> bool:
        if self.cellular is not None:
            return self.cellular
        found = platforms.find(self.platform_id)
        return bool(found and found.cellular)


@dataclass(frozen=True)
class Decision:
    """The outcome of the table for one device and one need: the path and the row that decided it."""

    path: UpgradePath
    rule: str
    certainty: str  # "documented" | "reported" | "assumed" | "state file"
    reason: str
    source: str
    then: UpgradePath | None = None  # DEFERRED only: the path the build takes once updates are enabled again

    @property
    def eventual(self) -> UpgradePath:
        """The path in the end: a deferred update takes ``then`` once the device enables updates."""
        return self.then if self.path is UpgradePath.DEFERRED and self.then is not None else self.path

    @property
    def safe_mode(self) -> bool:
        """The device boots in Safe Mode (breathing magenta) instead of running the app, at least for a while."""
        return self.path in (UpgradePath.HEALER, UpgradePath.STUCK)

    @property
    def healed(self) -> bool:
        """The cloud brings the device to what the build needs without anyone acting."""
        return self.path in (UpgradePath.COMBINED_OTA, UpgradePath.HEALER)


@dataclass(frozen=True)
class Case:
    """One evaluation: the device, its platform and release row, the release needed."""

    device: DeviceFacts
    platform: Platform | None
    device_row: Release | None
    needed: Release

    @property
    def gen3_plus(self) -> bool:
        return self.platform is not None and not self.platform.gen2 and not self.platform.monolithic


@dataclass(frozen=True)
class PolicyRule:
    """One row of the table: when it applies, what happens, how sure we are, and where it comes from."""

    rule: str
    path: UpgradePath
    certainty: str
    source: str
    applies: Callable[[Case], bool]
    reason: Callable[[Case], str]


def _name(case: Case) -> str:
    return case.platform.display_name if case.platform else f"platform {case.device.platform_id}"


def _only_system_part_changes(case: Case) -> bool:
    """Combined OTA condition: of the modules the needed release lacks on the device, only system parts."""
    assert case.device_row is not None
    try:
        installed = osmodules.installed_modules(case.device.platform_id, str(case.device_row.version))
        missing = osmodules.modules_to_send(case.device.platform_id, installed, str(case.needed.version))
    except LookupError:
        return False
    return bool(missing) and all(m.function == "system_part" for m in missing)


def _cap(case: Case) -> bool:
    cap = case.platform.max_release if case.platform else None
    return cap is not None and case.needed.version.base > cap


POLICY_TABLE: tuple[PolicyRule, ...] = (
    PolicyRule(
        "release_unknown",
        UpgradePath.UNKNOWN,
        "documented",
        "fieldsafe's release table",
        lambda c: c.device_row is None,
        lambda c: f"the device reports Device OS {c.device.release or '(none)'}, which fieldsafe cannot place",
    ),
    PolicyRule(
        "updates_disabled",
        UpgradePath.DEFERRED,
        "documented",
        "ota-updates.md (System.disableUpdates: the device refuses OTA; firmware_updates_forced overrides it)",
        lambda c: not c.device.updates_enabled and not c.device.updates_forced,
        lambda c: (
            "it reports updates disabled, so it refuses the OTA and keeps running its current app until "
            "updates are enabled (or forced)"
        ),
    ),
    PolicyRule(
        "runs_as_is",
        UpgradePath.RUNS,
        "documented",
        "particle-domain.md §2.1 (dependency check), §9.5 (OTA never downgrades)",
        lambda c: c.device_row is not None and c.device_row.module_version >= c.needed.module_version,
        lambda c: f"it already runs {c.device_row.version if c.device_row else '?'}, which has what the build needs",
    ),
    PolicyRule(
        "gen2_cap",
        UpgradePath.STUCK,
        "documented",
        "particle-domain.md §9.5 (Gen 2 is capped at 3.3.1)",
        _cap,
        lambda c: (
            f"Device OS {c.needed.version} does not exist for the {_name(c)} (it stops at "
            f"{c.platform.max_release if c.platform else '?'}), so nothing can heal it"
        ),
    ),
    PolicyRule(
        "healer_off",
        UpgradePath.STUCK,
        "state file",
        "the device's own policy override",
        lambda c: c.device.healer is False,
        lambda c: "the Safe Mode healer is off for this device, so nothing sends it the missing modules",
    ),
    PolicyRule(
        "developer_electron",
        UpgradePath.STUCK,
        "reported",
        "particle-domain.md §9.4 (Electrons outside a product are not healed, to save cellular data)",
        lambda c: c.device.healer is not True and c.device.platform_id == 10 and not c.device.in_product,
        lambda c: "Electrons outside a product are not healed automatically (to save cellular data)",
    ),
    PolicyRule(
        "combined_ota",
        UpgradePath.COMBINED_OTA,
        "documented",
        "firmware-update-events.md (Boron 4.0.1 -> 4.0.2: one 373,462-byte transfer, no Safe Mode)",
        lambda c: (
            c.gen3_plus
            and c.device_row is not None
            and c.device_row.version.base >= _COMBINED_OTA_FROM
            and _only_system_part_changes(c)
        ),
        lambda c: "Gen 3+ on 3.1.0 or later needing only a newer system part: app and Device OS go in one transfer",
    ),
    PolicyRule(
        "product_healer",
        UpgradePath.HEALER,
        "documented",
        "firmware-update-events.md, particle-domain.md §9.3 (one missing module per reboot)",
        lambda c: c.device.in_product,
        lambda c: "as a product device it is healed: the cloud sends one missing module per reboot",
    ),
    PolicyRule(
        "gen2_healer",
        UpgradePath.HEALER,
        "documented",
        "particle-domain.md §9.4",
        lambda c: c.platform is not None and c.platform.gen2,
        lambda c: "the Safe Mode healer updates it, one missing module per reboot",
    ),
    PolicyRule(
        "developer_healer",
        UpgradePath.HEALER,
        "reported",
        "particle-domain.md §9.4 (community reports, no official statement)",
        lambda c: True,
        lambda c: "Gen 3+ developer devices are very likely healed, one missing module per reboot",
    ),
)


def _case(device: DeviceFacts, needed_release: str) -> Case:
    needed = catalog().release(needed_release)
    if needed is None:
        raise LookupError(f"release {needed_release!r} is not in fieldsafe's Device OS release table")
    row = catalog().release(device.release) if device.release else None
    return Case(device, platforms.find(device.platform_id), row, needed)


def decide(device: DeviceFacts, needed_release: str) -> Decision:
    """The path a device takes when it receives a build that needs ``needed_release`` (first matching row).

    Raises LookupError when ``needed_release`` is not in the release table.
    """
    case = _case(device, needed_release)
    for row in POLICY_TABLE:
        if row.applies(case):
            then = None
            if row.path is UpgradePath.DEFERRED:
                then = decide(dataclasses.replace(device, updates_enabled=True), needed_release).path
            return Decision(row.path, row.rule, row.certainty, row.reason(case), row.source, then)
    raise AssertionError("the last policy row always applies")


def healer_sends(device: DeviceFacts, needed_release: str) -> bool:
    """At a Safe Mode boot: does the cloud send this device a missing module? (The simulator's question.)"""
    return decide(device, needed_release).path == UpgradePath.HEALER


# Planned updates (fieldsafe update-os): the rows that refuse, then "planned".
INTERMEDIATE_HOPS: tuple[tuple[frozenset[int], DeviceOSVersion, DeviceOSVersion], ...] = (
    # (platforms, devices below this release, going past it) -> install that release first.
    # rickkas7/particle_notes upgrading-system-firmware (particle-domain.md §9.5): old Electrons via 0.5.3.
    (frozenset({10}), DeviceOSVersion(0, 5, 3), DeviceOSVersion(0, 5, 3)),
)


def decide_update(device: DeviceFacts, to_release: str) -> Decision:
    """Can a planned OTA update take ``device`` to ``to_release``? (REFUSED, RUNS, UNKNOWN, DEFERRED or PLANNED)"""
    case = _case(device, to_release)
    if case.device_row is None:
        row = _row("release_unknown")
        return Decision(UpgradePath.UNKNOWN, row.rule, row.certainty, row.reason(case), row.source)
    if _cap(case):
        row = _row("gen2_cap")
        return Decision(UpgradePath.REFUSED, row.rule, row.certainty, row.reason(case), row.source)
    if not _released_for(case):
        return Decision(
            UpgradePath.REFUSED,
            "not_for_platform",
            "documented",
            f"Device OS {case.needed.version} was not released for the {_name(case)}",
            "fieldsafe's release table (platforms of each release)",
        )
    if case.device_row.module_version > case.needed.module_version:
        return Decision(
            UpgradePath.REFUSED,
            "no_downgrade",
            "documented",
            f"it runs {case.device_row.version}, newer than {case.needed.version}, and OTA never downgrades Device OS",
            "particle-domain.md §9.5",
        )
    if case.device_row.module_version == case.needed.module_version:
        return Decision(UpgradePath.RUNS, "runs_as_is", "documented", f"it already runs {case.device_row.version}", "")
    if not device.updates_enabled and not device.updates_forced:
        row = _row("updates_disabled")
        return Decision(
            UpgradePath.DEFERRED, row.rule, row.certainty, row.reason(case), row.source, UpgradePath.PLANNED
        )
    return Decision(
        UpgradePath.PLANNED,
        "planned_update",
        "documented",
        "each module is sent on its own and applied once its dependencies are met",
        "particle-domain.md §2.1, §9.5 (upgrade order)",
    )


def _row(rule: str) -> PolicyRule:
    return next(row for row in POLICY_TABLE if row.rule == rule)


def _released_for(case: Case) -> bool:
    """The table lists the platform for the release (rows whose platforms were inferred count as listed)."""
    return case.needed.platforms_inferred or case.device.platform_id in case.needed.platform_ids


def intermediate_releases(platform_id: int, from_release: str, to_release: str) -> tuple[str, ...]:
    """Releases a planned update must pass through first (documented hops only)."""
    start, end = DeviceOSVersion.parse(from_release), DeviceOSVersion.parse(to_release)
    return tuple(
        str(via)
        for pids, below, via in INTERMEDIATE_HOPS
        if platform_id in pids and start.base < below and end.base > via
    )
