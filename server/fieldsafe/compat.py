"""Build needs vs device has: Device OS compatibility findings (codes ``FS1xx``).

Why this module exists: a Particle app depends on the system module version of the Device OS it was
compiled against. Flash it over the air onto a device that runs an older Device OS and the device boots
in Safe Mode (breathing magenta) instead of running the app; whether the cloud then heals it, and what
that costs in cellular data and reboots, depends on the platform, whether the device is in a product,
and whether updates are enabled. No Particle tool says any of this *before* the flash; this module does.

Rules followed here (see ``docs/findings-compat.md`` and shared/docs/particle-domain.md §2-4, §8-9):

- Release <-> module version only through the release table (``fieldsafe.versions.catalog()``); never
  by arithmetic (2.3.1 = 2302, 4.0.2 = 4006, 6.3.2 = 6303). A module number may name several releases:
  every candidate is used, final releases preferred.
- Dependencies are plain ``>=`` comparisons of module numbers within one platform.
- OTA never downgrades Device OS; Gen 2 (Photon, P1, Electron) stops at 3.3.1.
- Healing is partly uncertain (§9.4) and the messages say so instead of guessing confidently.

Pure: no network, no editor imports. Everything returns :class:`fieldsafe.findings.Finding`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fieldsafe import osmodules, platforms, policy
from fieldsafe._data import read_tsv
from fieldsafe.findings import Finding, Fix, Related, Severity
from fieldsafe.modules import FUNCTION_SYSTEM_PART, FUNCTION_USER_PART, Dependency, ModuleInfo
from fieldsafe.platforms import Platform
from fieldsafe.versions import DeviceOSVersion, Release, catalog

# Codes (stable; documented in docs/findings-compat.md).
SAFE_MODE = "FS101"
PLATFORM_MISMATCH = "FS102"
TARGET_OLDER_THAN_DEVICE = "FS103"
UNKNOWN_RELEASE = "FS104"
UNKNOWN_PLATFORM = "FS105"
RELEASE_NOT_FOR_PLATFORM = "FS106"
GEN2_CAP = "FS107"
PRERELEASE_PINNED = "FS108"
OTA_NO_DOWNGRADE = "FS109"
BINARY_PIN_MISMATCH = "FS110"
BINARY_PLATFORM_MISMATCH = "FS111"
DEVICE_RELEASE_UNKNOWN = "FS112"
BINARY_DEPENDENCY_UNKNOWN = "FS113"
BINARY_NOT_AN_APP = "FS114"
PIN_NOT_EXACT = "FS115"

_NRF_SOFTDEVICE_202_FROM = DeviceOSVersion(2, 0, 0)  # every 2.x-6.x release read ships radio stack 202
_NRF_COMPRESSED_FROM = DeviceOSVersion(3, 1, 0)  # Gen 3 transfers from 3.1.0 are probably compressed
_TRACKER_NCP_FIXED_FROM = DeviceOSVersion(5, 6, 0)
_KNOWN_GAP = DeviceOSVersion(6, 3, 1)  # a release no source gave a module number for (particle-domain.md §3)


# ---------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class DeviceState:
    """What a device has, as last reported by the cloud (or typed by the user).

    ``product_id`` None (or equal to the platform id, which is what the cloud reports for devices outside a
    product) means a developer device. ``age_seconds`` is how old this information is.
    """

    name: str
    device_id: str | None
    platform_id: int
    device_os: str | None
    cellular: bool | None = None
    product_id: int | None = None
    development: bool | None = None
    updates_enabled: bool | None = None
    last_heard: str | None = None
    age_seconds: float | None = None
    online: bool | None = None

    @property
    def in_product(self) -> bool:
        return self.product_id is not None and self.product_id != self.platform_id

    @property
    def product(self) -> int | None:
        """The product the device belongs to, or None for a developer device."""
        return self.product_id if self.in_product else None

    def facts(self) -> policy.DeviceFacts:
        """What the healer/upgrade policy table reads (unknown flags take the cloud's defaults)."""
        return policy.DeviceFacts(
            platform_id=self.platform_id,
            release=self.device_os,
            in_product=self.in_product,
            development=bool(self.development),
            updates_enabled=self.updates_enabled is not False,
            cellular=self.cellular,
        )


def device_state_from_cloud(
    raw: Mapping[str, Any], age_seconds: float | None = None, fallback_name: str = ""
) -> DeviceState:
    """The Cloud API's device JSON (``GET /v1/devices/:id``) as a :class:`DeviceState`.

    Field names are the API's (``system_firmware_version``, ``firmware_updates_enabled``...); ``age_seconds``
    says how old the answer is when it came from the offline cache.
    """
    product, platform_id = raw.get("product_id"), raw.get("platform_id")
    return DeviceState(
        name=str(raw.get("name") or fallback_name or raw.get("id") or "device"),
        device_id=raw.get("id"),
        platform_id=platform_id if isinstance(platform_id, int) else -1,
        device_os=raw.get("system_firmware_version") or None,
        cellular=raw.get("cellular"),
        product_id=int(product) if isinstance(product, int) else None,
        development=raw.get("development"),
        updates_enabled=raw.get("firmware_updates_enabled"),
        last_heard=raw.get("last_heard"),
        age_seconds=age_seconds,
        online=raw.get("online", raw.get("connected")),
    )


@dataclass(frozen=True)
class BuildNeeds:
    """What a build needs: a pinned release, or the dependency version parsed from a binary."""

    platform_id: int
    release: str | None = None
    dependency_version: int | None = None
    source: str = "pin"  # "pin" | "binary"


# --------------------------------------------------------------------------------------- upgrade costs


class ModuleCost(NamedTuple):
    """One module an upgrade sends. ``source_release`` is the release whose measured size is used."""

    name: str
    bytes: int
    measure: str  # "module" (end - start + 4 from a restore image) | "file" (a real binary's size)
    source_release: str


@dataclass(frozen=True)
class UpgradeCost:
    """What an OTA Device OS upgrade sends: raw module sizes, which are an upper bound on Gen 3 from 3.1.0."""

    bytes: int
    modules: list[ModuleCost] = field(default_factory=list)
    approximate: bool = True
    note: str = ""

    @property
    def kb(self) -> int:
        """Rounded kilobytes (1000 bytes, like the docs' "384-656 KB")."""
        return round(self.bytes / 1000)


def _ota_transfer_example() -> int | None:
    """The one measured combined OTA transfer (Boron 4.0.1 -> 4.0.2) from module-sizes.tsv, if present."""
    for row in read_tsv("module-sizes.tsv"):
        if row["measure"] == "ota_transfer" and "->" in row["device_os_version"]:
            return int(row["bytes"])
    return None


def _resolve_release(text: str | DeviceOSVersion, what: str) -> Release:
    row = catalog().release(text)
    if row is None:
        near = ", ".join(str(r.version) for r in catalog().nearest(text, None))
        raise LookupError(f"{what} {text!r} is not in fieldsafe's Device OS release table; nearest: {near}")
    return row


def ota_upgrade_cost(platform_id: int, from_release: str | None, to_release: str) -> UpgradeCost:
    """Estimate the bytes an OTA Device OS upgrade from ``from_release`` to ``to_release`` sends.

    Modules per family (particle-domain.md §9.6): Gen 2 sends every system part (2 on Photon/P1, 3 on the
    Electron); nRF52840 Gen 3 one system part, plus the bootloader when its version changes and the
    SoftDevice when the device is older than 2.0.0; rtl872x one system part plus bootloader and
    prebootloader when the bootloader changes. Sizes come from module-sizes.tsv by the rule in
    :func:`fieldsafe.osmodules.nearest_measured`. ``from_release`` None (unknown) counts every module.

    Raises LookupError for a release not in the table or a platform that cannot run ``to_release``.
    """
    platform = platforms.get(platform_id)
    target = _resolve_release(to_release, "target release")
    if platform.max_release is not None and target.version.base > platform.max_release:
        raise LookupError(
            f"{platform.display_name} can never run Device OS {target.version} (last: {platform.max_release})"
        )
    source = catalog().release(from_release) if from_release else None
    if source is not None and source.module_version >= target.module_version:
        return UpgradeCost(0, [], False, "no upgrade needed (and OTA never downgrades Device OS)")
    if platform.monolithic:
        raise LookupError("Core firmware is monolithic: an app flash carries its own Device OS, there is no upgrade")

    installed = osmodules.installed_modules(platform.id, str(source.version)) if source else {}
    sent = osmodules.modules_to_send(platform.id, installed, str(target.version))
    notes: list[str] = []
    guessed = source is None or any(m.estimated for m in sent)
    if source is not None and osmodules.bootloader_of(source, platform.id) is None:
        notes.append("bootloader counted: the device's bootloader version is unknown")
        guessed = True
    kinds = {(m.function, m.index) for m in sent}
    if ("bootloader", 2) in kinds:
        notes.append("prebootloader counted with the bootloader (its own version per release is not tabled)")
        guessed = True
    if platform.mcu == "nrf52840":
        if ("radio_stack", 0) in kinds:
            notes.append("SoftDevice 202 counted: releases before 2.0.0 may carry an older radio stack")
        else:
            notes.append("SoftDevice (radio stack 202) is unchanged across 2.x-6.x, so not sent")
        if platform.id == 26 and target.version.base < _TRACKER_NCP_FIXED_FROM:
            notes.append("a Tracker below 5.6.0 may also need an NCP update (not counted)")
        if target.version.base >= _NRF_COMPRESSED_FROM:
            example = _ota_transfer_example()
            seen = f" (a combined Boron 4.0.1->4.0.2 OTA moved {example:,} bytes)" if example else ""
            notes.append(f"raw sizes are an upper bound: Gen 3 OTA from 3.1.0 is probably compressed{seen}")
    order = {"system_part": 0, "bootloader": 1, "radio_stack": 2}
    modules = [
        ModuleCost(
            m.name
            if m.size_platform_id in (None, platform.id)
            else f"{m.name} [{platforms.get(m.size_platform_id).name}]",
            m.bytes,
            m.measure,
            m.size_release,
        )
        for m in sorted(sent, key=lambda m: (order.get(m.function, 3), m.index != 0, m.name))
    ]
    return UpgradeCost(sum(m.bytes for m in modules), modules, guessed, "; ".join(notes))


def _modules_phrase(cost: UpgradeCost) -> str:
    """Text like ``3 system parts + bootloader`` for messages."""
    parts = sum(1 for m in cost.modules if m.name.startswith("system-part"))
    extras = [
        label
        for label, key in (
            ("bootloader", "bootloader"),
            ("prebootloader", "prebootloader"),
            ("SoftDevice", "softdevice"),
        )
        if any(m.name.startswith(key) for m in cost.modules)
    ]
    head = f"{parts} system part{'s' if parts != 1 else ''}" if parts else ""
    return " + ".join([p for p in (head, *extras) if p]) or "no measured modules"


def _cost_phrase(cost: UpgradeCost, cellular: bool, target: str | None = None) -> str:
    """Text like ``approx 340 KB over cellular data (3 system parts + bootloader; sizes as of 2.3.1)``.

    When the sizes come from another release than ``target`` (the target's modules were never measured),
    it says so: "sizes of 6.3.4, the closest measured release (5.8.0's are not known)".
    """
    sources = sorted({m.source_release for m in cost.modules})
    basis = f"; sizes as of {', '.join(sources)}" if sources else ""
    if target is not None and sources and sources != [target]:
        basis = f"; sizes of {', '.join(sources)}, the closest measured release ({target}'s are not known)"
    over = " over cellular data" if cellular else ""
    return f"approx {cost.kb} KB{over} ({_modules_phrase(cost)}{basis})"


# ----------------------------------------------------------------------------------------- descriptions


def _platform(pid: int) -> Platform | None:
    return platforms.find(pid)


def _platform_label(pid: int) -> str:
    platform = _platform(pid)
    return platform.display_name if platform else f"platform {pid}"


def _is_cellular(device: DeviceState, platform: Platform | None) -> bool:
    if device.cellular is not None:
        return device.cellular
    return bool(platform and platform.cellular)


def age_phrase(seconds: float) -> str:
    """Short ages for messages and status: 40 s, 3 min, 2 h, 5 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _age_text(seconds: float | None) -> str:
    """A device state with a known age is the last known (cached) one, not a live answer: say so and how old."""
    return "" if seconds is None else f"; last known state, {age_phrase(seconds)} old"


def _device_label(device: DeviceState) -> str:
    """Text like ```field-unit-7` (Electron, cellular)``, with a staleness note when the info is old."""
    platform = _platform(device.platform_id)
    bits = [_platform_label(device.platform_id)]
    if _is_cellular(device, platform):
        bits.append("cellular")
    if device.in_product:
        bits.append(f"product {device.product_id}")
    return f"`{device.name}` ({', '.join(bits)}{_age_text(device.age_seconds)})"


def _module_release_text(module_version: int, platform_id: int) -> str:
    """Release terms for a module number: every candidate, final releases first ("0.8.0-rc.14 or 0.8.0-rc.13")."""
    hits = catalog().releases_for_module(module_version, platform_id)
    if not hits:
        return f"an unknown release (module {module_version} is not in the release table)"
    return " or ".join(str(r.version) for r in hits[:3])


def _dependency_name(platform: Platform | None) -> str:
    """The system part a user part depends on, named by module index (Electron: file system-part3)."""
    if platform is None or platform.monolithic:
        return "system part"
    _, index = platform.user_part_dependency(DeviceOSVersion(6, 0, 0))
    return f"system part {index}"


# ------------------------------------------------------------------------------------------ check_target


def _nearest_for(version_text: str, platform_id: int | None) -> list[Release]:
    return catalog().nearest(version_text, platform_id, count=3)


def _retarget_fixes(rows: Iterable[Release], why: str = "") -> tuple[Fix, ...]:
    return tuple(Fix("retarget", f"Retarget to {r.version}{why}", {"release": str(r.version)}) for r in rows)


def _unknown_release(pin: str, platform: Platform | None) -> Finding:
    pid = platform.id if platform else None
    near = _nearest_for(pin, pid)
    near_text = ", ".join(str(r.version) for r in near) or "none"
    parsed = DeviceOSVersion.try_parse(pin)
    if parsed is None:
        message = (
            f"`{pin}` is not a Device OS version (expected e.g. 2.3.1 or 6.3.4); nearest known releases: {near_text}"
        )
        severity = Severity.ERROR
    else:
        newest = catalog().rows[-1].version
        documented_gap = parsed == _KNOWN_GAP
        where = (
            f"newer than the newest release it knows, {newest}"
            if parsed > newest
            else "its module number is missing from every source the table was built from"
            if documented_gap
            else "not a known release"
        )
        message = (
            f"Device OS {pin} is not in fieldsafe's release table ({where}), so its system module version "
            f"is unknown and device checks are skipped; nearest known releases"
            f"{' for ' + platform.display_name if platform else ''}: {near_text}"
        )
        severity = Severity.WARNING if parsed > newest or documented_gap else Severity.ERROR
    return Finding(
        UNKNOWN_RELEASE,
        severity,
        message,
        facts={"pinned_release": pin, "platform_id": pid, "nearest": [str(r.version) for r in near]},
        fixes=_retarget_fixes(near),
    )


def _gen2_cap(row: Release, platform: Platform) -> Finding:
    cap = platform.max_release
    lts = catalog().latest(platform.id, lts_only=True)
    last = catalog().release(cap) if cap else None
    fixes = []
    if lts is not None:
        fixes.append(
            Fix(
                "retarget", f"Retarget to {lts.version} (2.x LTS, recommended for Gen 2)", {"release": str(lts.version)}
            )
        )
    if last is not None and last != lts:
        fixes.append(
            Fix(
                "retarget",
                f"Retarget to {last.version} (last release for the {platform.display_name})",
                {"release": str(last.version)},
            )
        )
    return Finding(
        GEN2_CAP,
        Severity.ERROR,
        f"Device OS {row.version} (module {row.module_version}) does not exist for the {platform.display_name}: "
        f"Gen 2 devices stop at {cap}, so no build or update can ever take one there. "
        f"Particle recommends the 2.x LTS line ({lts.version if lts else '2.3.1'}) for Gen 2.",
        facts={
            "pinned_release": str(row.version),
            "pinned_module": row.module_version,
            "platform_id": platform.id,
            "platform": platform.name,
            "max_release": str(cap),
        },
        fixes=tuple(fixes),
    )


def _not_for_platform(row: Release, platform: Platform) -> Finding:
    twins = [r for r in catalog().releases(platform.id) if r.module_version == row.module_version]
    near = twins + [r for r in _nearest_for(str(row.version), platform.id) if r not in twins]
    near_text = ", ".join(str(r.version) for r in near) or "none"
    twin_text = (
        f" The {platform.display_name}'s release with the same module number is {twins[0].version}." if twins else ""
    )
    maybe = " (the table's platform list for it is inferred)" if row.platforms_inferred else ""
    first = catalog().releases(platform.id)
    span = f"{first[0].version} - {first[-1].version}" if first else "none"
    return Finding(
        RELEASE_NOT_FOR_PLATFORM,
        Severity.WARNING if row.platforms_inferred else Severity.ERROR,
        f"Device OS {row.version} (module {row.module_version}) was not released for the {platform.display_name}"
        f"{maybe}; releases for it span {span}. Nearest valid: {near_text}.{twin_text}",
        facts={
            "pinned_release": str(row.version),
            "pinned_module": row.module_version,
            "platform_id": platform.id,
            "platform": platform.name,
            "nearest": [str(r.version) for r in near],
        },
        fixes=_retarget_fixes(near),
    )


def _prerelease(row: Release, platform: Platform | None) -> Finding:
    pid = platform.id if platform else None
    finals = catalog().releases(pid, include_prereleases=False)
    same_base = [r for r in finals if r.version.base == row.version.base]
    below = [r for r in finals if r.version < row.version]
    above = [r for r in finals if r.version > row.version]
    picks = same_base or below[-1:] + above[:1]
    return Finding(
        PRERELEASE_PINNED,
        Severity.HINT,
        f"Device OS {row.version} (module {row.module_version}) is a prerelease; devices that take this build "
        f"get upgraded to a prerelease. Consider a final release: {', '.join(str(r.version) for r in picks) or 'none known'}.",
        facts={"pinned_release": str(row.version), "pinned_module": row.module_version, "platform_id": pid},
        fixes=_retarget_fixes(picks),
    )


def check_target(pin: str, platform: str | int | None) -> list[Finding]:
    """Is ``pin`` a real Device OS release that ``platform`` can run? (FS104-FS108)

    ``platform`` None checks the release alone. An unknown platform is FS105 and stops the checks.
    """
    found: Platform | None = None
    if platform is not None:
        found = platforms.find(platform)
        if found is None:
            try:
                platforms.get(platform)
            except KeyError as exc:
                reason = str(exc.args[0]) if exc.args else str(exc)
            return [
                Finding(
                    UNKNOWN_PLATFORM,
                    Severity.ERROR,
                    f"{reason} (set the target platform to a Particle device type such as boron, argon, p2, electron)",
                    facts={"platform": str(platform)},
                )
            ]
    findings: list[Finding] = []
    row = catalog().release(pin)
    if row is None:
        inexact = _resolve_inexact(pin, found)
        if inexact is None:
            return [_unknown_release(pin, found)]
        row = inexact
        findings.append(pin_not_exact(pin, row))
    if found is not None and found.gen2 and found.max_release and row.version.base > found.max_release:
        findings.append(_gen2_cap(row, found))
    elif found is not None and found.id not in row.platform_ids:
        findings.append(_not_for_platform(row, found))
    if row.is_prerelease:
        findings.append(_prerelease(row, found))
    return findings


# ---------------------------------------------------------------------------- check_build_against_device


@dataclass(frozen=True)
class _Need:
    """A build's requirement in both terms: the module number and (when known) the release."""

    module_version: int
    release: Release | None  # the pinned release, or the lowest release satisfying a binary's dependency
    source: str

    def phrase(self, platform: Platform | None) -> str:
        """Opening of the message: "Builds for 2.3.1 need Device OS 2.3.1 (module 2302)"."""
        if self.source == "pin" and self.release is not None:
            return f"Builds for {self.release.version} need Device OS {self.release.version} (module {self.module_version})"
        dep = f"{_dependency_name(platform)} >= {self.module_version}"
        if self.release is None:
            return f"This binary needs {dep}, which is newer than every release fieldsafe knows"
        candidates = _module_release_text(self.module_version, platform.id if platform else 0)
        exact = catalog().releases_for_module(self.module_version, platform.id if platform else None)
        terms = candidates if exact else str(self.release.version)
        return f"This binary needs Device OS {terms} or later ({dep})"

    @property
    def release_text(self) -> str:
        return str(self.release.version) if self.release else f"module {self.module_version}"


def _resolve_inexact(pin: str, platform: Platform | None) -> Release | None:
    """What a keyword or range pin (``latest``, ``latest-lts``, ``^5.3.0``, ``4.x``) means today, if anything."""
    if platform is None or DeviceOSVersion.try_parse(pin) is not None:
        return None
    try:
        return catalog().resolve(pin, platform.id)
    except LookupError:
        return None


def pin_not_exact(pin: str, row: Release) -> Finding:
    """FS115: a keyword or range pin, and the exact release it means today (shared by CLI and editor)."""
    return Finding(
        PIN_NOT_EXACT,
        Severity.WARNING,
        f"`{pin}` is not an exact release: today it means Device OS {row.version} (module {row.module_version}), "
        "and builds change when new releases ship, so what the devices need changes with them; pin the exact "
        "release to build the same thing every time",
        facts={"pinned_release": pin, "resolved_release": str(row.version), "module_version": row.module_version},
        fixes=(Fix("retarget", f"Pin {row.version} (what `{pin}` means today)", {"release": str(row.version)}),),
    )


def _need_from(needs: BuildNeeds) -> tuple[_Need | None, list[Finding]]:
    if needs.source == "binary" or needs.release is None:
        if needs.dependency_version is None:
            raise ValueError("BuildNeeds needs either release (a pin) or dependency_version (from a binary)")
        rel = catalog().min_release_for_dependency(needs.dependency_version, needs.platform_id)
        return _Need(needs.dependency_version, rel, "binary"), []
    row = catalog().release(needs.release) or _resolve_inexact(needs.release, _platform(needs.platform_id))
    if row is None:
        return None, [_unknown_release(needs.release, _platform(needs.platform_id))]
    return _Need(row.module_version, row, "pin"), []


def _platform_mismatch(needs: BuildNeeds, device: DeviceState) -> Finding:
    built = _platform_label(needs.platform_id)
    target = _platform(device.platform_id)
    what = target.name if target else str(device.platform_id)
    return Finding(
        PLATFORM_MISMATCH,
        Severity.ERROR,
        f"This build is for the {built} but `{device.name}` is a{'n' if _platform_label(device.platform_id)[0] in 'AEIOU' else ''} "
        f"{_platform_label(device.platform_id)}: the device rejects a binary for another platform. "
        f"Build for {what} to flash it.",
        facts={
            "build_platform_id": needs.platform_id,
            "device": device.name,
            "device_id": device.device_id,
            "device_platform_id": device.platform_id,
        },
        fixes=(Fix("set-platform", f"Target {what} (what {device.name} is)", {"platform": what}),),
        related=(Related(f"{device.name} is a {_platform_label(device.platform_id)}"),),
    )


def _device_release_unknown(device: DeviceState) -> Finding:
    if device.device_os is None:
        message = (
            f"{_device_label(device)} has not reported its Device OS, so fieldsafe cannot tell whether this build "
            f"would run on it; check again once it has been online."
        )
        severity = Severity.INFO
    else:
        message = (
            f"{_device_label(device)} reports Device OS {device.device_os}, which is not in fieldsafe's release "
            f"table, so its system module version (and whether this build runs on it) is unknown."
        )
        severity = Severity.WARNING
    return Finding(
        DEVICE_RELEASE_UNKNOWN,
        severity,
        message,
        facts={"device": device.name, "device_id": device.device_id, "device_release": device.device_os},
    )


@dataclass(frozen=True)
class _Healing:
    verdict: str  # "no" | "uncertain" | "likely" | "yes"
    severity: Severity
    text: str


def upgrade_decision(device: DeviceState, need_release: Release | None) -> policy.Decision:
    """The policy table's path for this device and this need (the newest known release when it is unknown)."""
    if need_release is None:
        need_release = catalog().latest(device.platform_id, include_prereleases=True)
    assert need_release is not None
    return policy.decide(device.facts(), str(need_release.version))


def _healing(device: DeviceState, platform: Platform | None, need: _Need, cost_text: str) -> _Healing:
    """What the policy table says happens to the device (particle-domain.md §9.4), worded with its cost."""
    decision = upgrade_decision(device, need.release)
    reboots = "it reboots several times (once per module) before your app runs"
    rule = decision.rule
    if rule == "gen2_cap":
        cap = platform.max_release if platform else None
        return _Healing(
            "no",
            Severity.ERROR,
            f"Device OS {need.release_text} does not exist for the {platform.display_name if platform else ''} "
            f"(it stops at {cap}), so nothing can heal it: it stays in Safe Mode, not running your app, until you "
            f"flash a build for {cap} or older.",
        )
    if rule == "healer_off":
        return _Healing(
            "no",
            Severity.ERROR,
            f"The Safe Mode healer is off for it, so nothing sends the missing modules: it stays in Safe Mode, not "
            f"running your app, until you update it yourself, which sends {cost_text}.",
        )
    if rule == "updates_disabled":
        later = {
            policy.UpgradePath.STUCK: "then it boots in Safe Mode and is not healed",
            policy.UpgradePath.COMBINED_OTA: f"then the cloud sends {cost_text} with the app in one transfer",
        }.get(decision.eventual, f"then it boots in Safe Mode while the cloud sends {cost_text}, {reboots}")
        return _Healing(
            "deferred",
            Severity.ERROR if decision.eventual is policy.UpgradePath.STUCK else Severity.WARNING,
            f"It reports updates disabled, so it refuses the OTA and keeps running its current app: this build "
            f"waits until updates are enabled (or forced for a product device); {later}.",
        )
    if rule == "developer_electron":
        return _Healing(
            "uncertain",
            Severity.ERROR,
            f"Electrons outside a product are documented as not healed automatically (to save cellular data; later "
            f"reports are mixed), so it most likely stays in Safe Mode, not running your app, until you update it "
            f"yourself, which sends {cost_text}.",
        )
    if rule == "combined_ota":
        return _Healing(
            "yes",
            Severity.WARNING,
            f"As a Gen 3+ device on 3.1.0 or later that only needs a newer system part, it takes the combined OTA: "
            f"the cloud sends {cost_text} with the app in one transfer and it reboots once, without Safe Mode.",
        )
    if rule == "product_healer":
        return _Healing(
            "yes",
            Severity.WARNING,
            f"As a product device it should be healed: the cloud sends {cost_text} and {reboots}.",
        )
    if rule == "gen2_healer":
        return _Healing(
            "yes",
            Severity.WARNING,
            f"The Safe Mode healer should update it: the cloud sends {cost_text} and {reboots}.",
        )
    return _Healing(
        "likely",
        Severity.WARNING,
        f"Gen 3+ developer devices are very likely healed (community reports, no official statement): the cloud "
        f"would send {cost_text} and {reboots}.",
    )


def _safe_mode(need: _Need, device: DeviceState, device_row: Release, platform: Platform | None) -> Finding:
    cellular = _is_cellular(device, platform)
    cost: UpgradeCost | None = None
    if need.release is not None:
        try:
            cost = ota_upgrade_cost(device.platform_id, str(device_row.version), str(need.release.version))
        except LookupError:
            cost = None
    target_text = str(need.release.version) if need.release is not None else None
    cost_text = _cost_phrase(cost, cellular, target_text) if cost else "a Device OS update of unknown size"
    healing = _healing(device, platform, need, cost_text)
    decision = upgrade_decision(device, need.release)
    consequence = {
        policy.UpgradePath.COMBINED_OTA: "flashed over the air it needs a Device OS update first.",
        policy.UpgradePath.DEFERRED: "it cannot run this build as it is.",
    }.get(decision.path, "flashed over the air it boots in Safe Mode (breathing magenta) and does not run the app.")
    message = (
        f"{need.phrase(platform)}; {_device_label(device)} runs {device_row.version} (module "
        f"{device_row.module_version}): {consequence} {healing.text}"
    )
    fixes = [
        Fix(
            "retarget",
            f"Retarget to {device_row.version} (what {device.name} runs)",
            {"release": str(device_row.version), "device": device.name},
        )
    ]
    can_update = healing.verdict != "no" or device.updates_enabled is False
    if can_update and cost is not None and need.release is not None:
        over = " over cellular" if cellular else ""
        fixes.append(
            Fix(
                "update-device",
                f"Update {device.name} to {need.release.version} first (~{cost.kb} KB{over})",
                {"release": str(need.release.version), "bytes": cost.bytes, "device": device.name},
            )
        )
    facts = {
        "source": need.source,
        "needs_module": need.module_version,
        "needs_release": str(need.release.version) if need.release else None,
        "pinned_release": str(need.release.version) if need.source == "pin" and need.release else None,
        "device": device.name,
        "device_id": device.device_id,
        "platform_id": device.platform_id,
        "device_release": str(device_row.version),
        "device_module": device_row.module_version,
        "cellular": cellular,
        "product_id": device.product_id if device.in_product else None,
        "healed": healing.verdict,
        "path": str(decision.path),
        "policy_rule": decision.rule,
        "upgrade_bytes": cost.bytes if cost else None,
        "upgrade_modules": [m.name for m in cost.modules] if cost else [],
        "age_seconds": device.age_seconds,
    }
    return Finding(
        SAFE_MODE,
        healing.severity,
        message,
        facts=facts,
        fixes=tuple(fixes),
        related=(
            Related(
                f"{device.name} ({_platform_label(device.platform_id)}) runs {device_row.version} (module {device_row.module_version})"
            ),
        ),
    )


def _apis_given_up(low: Release, high: Release, platform_id: int) -> list[str]:
    """APIs the device's release has that the target lacks (``fieldsafe.apidata``), most useful first.

    Why: a target older than the device is safe, but the developer should know what they give up.
    Order: functions, methods and classes before constants and macros, then by release, then by name.
    """
    from fieldsafe import apidata

    gained = [
        a
        for a in apidata.all_apis().values()
        if not a.baseline
        and not a.system_event
        and a.allowed_on(platform_id)
        and a.available_in(high.version, platform_id)
        and not a.available_in(low.version, platform_id)
    ]
    minor_kinds = {"constant", "macro", "enum", "type"}
    gained.sort(key=lambda a: (a.kind in minor_kinds, a.since_for_platform(platform_id), a.api))
    return [a.api for a in gained]


def _varied(apis: list[str], count: int) -> list[str]:
    """Up to ``count`` names, one per owner first (``BLE.*``, ``JSONWriter::*``), so a message shows variety."""
    seen: set[str] = set()
    picked = []
    for api in apis:
        owner = api.replace("::", ".").split(".")[0]
        if owner not in seen:
            seen.add(owner)
            picked.append(api)
    picked += [a for a in apis if a not in picked]
    return picked[:count]


def _older_than_device(need: _Need, device: DeviceState, device_row: Release, platform: Platform | None) -> Finding:
    assert need.release is not None
    apis = _apis_given_up(need.release, device_row, device.platform_id)
    given_up = ""
    if apis:
        shown = ", ".join(f"`{a}`" for a in _varied(apis, 5))
        more = f" and {len(apis) - 5} more" if len(apis) > 5 else ""
        given_up = (
            f" Targeting {need.release.version} gives up APIs added after it up to {device_row.version}: {shown}{more}."
        )
    subject = "Builds for" if need.source == "pin" else "This binary, built for"
    message = (
        f"{subject} {need.release.version} (module {need.module_version}) run on {_device_label(device)}, which has "
        f"{device_row.version} (module {device_row.module_version}); the device keeps {device_row.version} "
        f"(OTA never downgrades Device OS).{given_up}"
    )
    return Finding(
        TARGET_OLDER_THAN_DEVICE,
        Severity.HINT,
        message,
        facts={
            "source": need.source,
            "needs_module": need.module_version,
            "needs_release": str(need.release.version),
            "device": device.name,
            "device_id": device.device_id,
            "device_release": str(device_row.version),
            "device_module": device_row.module_version,
            "apis_given_up": apis,
        },
        fixes=(
            Fix(
                "retarget",
                f"Retarget to {device_row.version} (what {device.name} runs)",
                {"release": str(device_row.version), "device": device.name},
            ),
        ),
        related=(Related(f"{device.name} runs {device_row.version} (module {device_row.module_version})"),),
    )


def check_build_against_device(needs: BuildNeeds, device: DeviceState) -> list[Finding]:
    """Would this build run on this device if flashed over the air? (FS101-FS104, FS112)

    The comparison is the device's own ``>=`` check: the build's dependency module number against the
    module number of the device's release, both through the table.
    """
    if needs.platform_id != device.platform_id:
        return [_platform_mismatch(needs, device)]
    need, problems = _need_from(needs)
    if need is None:
        return problems
    platform = _platform(device.platform_id)
    if platform is not None and platform.monolithic:
        return []  # Core firmware carries its own Device OS: there is no dependency to miss
    device_row = catalog().release(device.device_os) if device.device_os else None
    if device_row is None:
        return [_device_release_unknown(device)]
    if need.module_version > device_row.module_version:
        return [_safe_mode(need, device, device_row, platform)]
    if need.module_version < device_row.module_version and need.release is not None:
        return [_older_than_device(need, device, device_row, platform)]
    return []


def retarget_title(release: str, platform_id: int, device: DeviceState | None) -> str:
    """The title of a "retarget to ``release``" fix, saying what it costs the target device, if anything.

    Why here: raising the pin for an API is only free when the device already runs that release; otherwise
    the device must be updated over the air, and the developer should see that cost before choosing the fix.
    """
    title = f"Retarget to {release}"
    if device is None:
        return title
    needs = BuildNeeds(platform_id=platform_id, release=release, source="pin")
    for found in check_build_against_device(needs, device):
        if found.code == SAFE_MODE:
            size = found.facts.get("upgrade_bytes")
            amount = f"~{round(size / 1000)} KB over the air" if isinstance(size, int) else "size unknown"
            return f"{title} ({device.name} must be updated: {amount})"
    return title


def check_device_os_flash(release: str, device: DeviceState) -> list[Finding]:
    """Can ``device`` be moved to Device OS ``release`` over the air? OTA never downgrades (FS109, FS107)."""
    platform = _platform(device.platform_id)
    row = catalog().release(release)
    if row is None:
        return [_unknown_release(release, platform)]
    if platform is not None and platform.max_release and row.version.base > platform.max_release:
        return [_gen2_cap(row, platform)]
    device_row = catalog().release(device.device_os) if device.device_os else None
    if device_row is None:
        return [_device_release_unknown(device)]
    if device_row.module_version <= row.module_version:
        return []
    return [
        Finding(
            OTA_NO_DOWNGRADE,
            Severity.WARNING,
            f"{_device_label(device)} runs {device_row.version} (module {device_row.module_version}), newer than "
            f"{row.version} (module {row.module_version}): OTA never downgrades Device OS, so it keeps "
            f"{device_row.version}. To really go back, flash the older system parts over USB in reverse order "
            f"(some downgrades need intermediate releases); an app built for {row.version} runs on "
            f"{device_row.version} as it is.",
            facts={
                "release": str(row.version),
                "release_module": row.module_version,
                "device": device.name,
                "device_id": device.device_id,
                "device_release": str(device_row.version),
                "device_module": device_row.module_version,
            },
            fixes=(
                Fix(
                    "retarget",
                    f"Retarget to {device_row.version} (what {device.name} runs)",
                    {"release": str(device_row.version), "device": device.name},
                ),
            ),
            related=(Related(f"{device.name} runs {device_row.version}"),),
        )
    ]


# ------------------------------------------------------------------------------------ binaries vs the pin


@dataclass(frozen=True)
class BinaryRequirement:
    """A compiled app's Device OS requirement in release terms (what the LSP status and CLI print)."""

    platform_id: int
    dependency: Dependency | None
    min_release: str | None  # lowest release on the platform that satisfies the dependency
    exact_releases: tuple[str, ...]  # releases whose module number equals the dependency (all candidates)
    text: str


def _app_dependency(info: ModuleInfo) -> Dependency | None:
    """The user part's system-part dependency (matched by function, never by file name)."""
    return next((d for d in info.dependencies if d.function == FUNCTION_SYSTEM_PART), None)


def binary_requirement(info: ModuleInfo) -> BinaryRequirement:
    """Summarise what Device OS a parsed binary needs, e.g. "needs system part 1 >= 6101: Device OS 6.1.1 or later"."""
    label = _platform_label(info.platform_id)
    dep = _app_dependency(info)
    if info.module_function != FUNCTION_USER_PART or dep is None:
        what = info.function_name.replace("_", " ")
        return BinaryRequirement(info.platform_id, dep, None, (), f"{label} {what}: no Device OS dependency to check")
    exact = tuple(str(r.version) for r in catalog().releases_for_module(dep.version, info.platform_id))
    lowest = catalog().min_release_for_dependency(dep.version, info.platform_id)
    where = f"system part {dep.index} >= {dep.version}"
    if exact:
        terms = f"Device OS {' or '.join(exact[:3])} or later"
    elif lowest is not None:
        terms = f"Device OS {lowest.version} or later (module {dep.version} is not itself a release)"
    else:
        terms = "a Device OS newer than every release fieldsafe knows"
    text = f"{label} app (user part {info.module_index}) needs {where}: {terms}"
    return BinaryRequirement(info.platform_id, dep, str(lowest.version) if lowest else None, exact, text)


def check_binary_against_pin(info: ModuleInfo, pin_release: str, platform_id: int) -> list[Finding]:
    """After a compile: does the built binary's real dependency agree with the pinned release? (FS110-FS114)

    The cloud may build for a different release than asked (a stale pin, a "default" target); only the
    binary tells the truth, and devices check the binary's number, not the pin.
    """
    req = binary_requirement(info)
    if info.platform_id != platform_id:
        return [
            Finding(
                BINARY_PLATFORM_MISMATCH,
                Severity.ERROR,
                f"The compiled binary is for the {_platform_label(info.platform_id)} (platform {info.platform_id}), "
                f"but the project targets the {_platform_label(platform_id)} (platform {platform_id}).",
                facts={"binary_platform_id": info.platform_id, "platform_id": platform_id},
            )
        ]
    if req.dependency is None or info.module_function != FUNCTION_USER_PART:
        return [
            Finding(
                BINARY_NOT_AN_APP,
                Severity.INFO,
                f"The binary is a {info.function_name.replace('_', ' ')}, not an application with a system-part "
                f"dependency, so it cannot be checked against the pinned Device OS {pin_release}.",
                facts={"module_function": info.module_function, "pinned_release": pin_release},
            )
        ]
    pin = catalog().release(pin_release)
    if pin is None:
        return [_unknown_release(pin_release, _platform(platform_id))]
    dep = req.dependency.version
    facts = {
        "pinned_release": str(pin.version),
        "pinned_module": pin.module_version,
        "dependency": {"function": req.dependency.function, "index": req.dependency.index, "version": dep},
        "binary_releases": list(req.exact_releases),
        "binary_min_release": req.min_release,
        "platform_id": platform_id,
    }
    if not req.exact_releases and req.min_release is None:
        return [
            Finding(
                BINARY_DEPENDENCY_UNKNOWN,
                Severity.WARNING,
                f"The binary depends on system part {req.dependency.index} >= {dep}, a module version newer than "
                f"every release in fieldsafe's table; the project pins {pin.version} (module {pin.module_version}).",
                facts=facts,
            )
        ]
    if dep == pin.module_version:
        return []
    built_for = " or ".join(req.exact_releases[:3]) or f"module {dep}"
    newer = dep > pin.module_version
    consequence = (
        f"devices on {pin.version} would boot it in Safe Mode"
        if newer
        else f"it still runs on {pin.version} but was not built against {pin.version}'s headers"
    )
    fix_release = req.exact_releases[0] if req.exact_releases else req.min_release
    return [
        Finding(
            BINARY_PIN_MISMATCH,
            Severity.ERROR if newer else Severity.WARNING,
            f"The compiled binary depends on system part {req.dependency.index} >= {dep} ({built_for}), but the "
            f"project pins {pin.version} (module {pin.module_version}): the cloud built for a different Device OS "
            f"than pinned, and {consequence}.",
            facts=facts,
            fixes=_retarget_fixes(
                [catalog().release(fix_release)] if fix_release else [], " (what the binary was built for)"
            ),
        )
    ]
