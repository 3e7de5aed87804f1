"""The Device OS modules a release consists of on a platform, and which of them an upgrade must send.

Why this module exists: three parts of fieldsafe must agree byte for byte on what a Device OS upgrade
sends: ``compat`` (the cost in an FS101 warning), ``delivery`` (the plan ``fieldsafe update-os`` and
``fieldsafe flash`` follow) and the emulator (the module files it serves and the bytes its field
simulator counts). They all read the modules from here, so a prediction and what the simulated field
spends cannot drift apart.

Sources: module sizes from ``data/module-sizes.tsv`` (device-restore images), module and bootloader
versions from the release table (``data/system-versions.tsv``), layouts from particle-domain.md §2.3-2.4
and §9.6. Where a release was not measured, the nearest measured release of the same platform (else of
a same-family donor platform) stands in, and ``size_source`` says so.

Simplifications (documented in docs/emulator.md): each system part depends on the one installed before it
at the same version (the Electron's file order 1, 2, 3 = module indexes 3, 1, 2), the last system part on
the bootloader; nRF52840 system part 1 on the bootloader and SoftDevice; the rtl872x bootloader on the
prebootloader, which is sent together with the bootloader because its own version per release is not
tabled. Releases before 2.0.0 on nRF52840 are taken to carry the older SoftDevice 201 (2.x-6.x ship 202).
The Tracker's NCP firmware is not modelled.

Pure: no network, no editor imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from fieldsafe import platforms
from fieldsafe._data import read_tsv
from fieldsafe.platforms import Platform
from fieldsafe.versions import DeviceOSVersion, Release, catalog

# Platforms whose measured module sizes may stand in for a platform without measurements (same layout).
SIZE_DONORS = {"stm32f2xx": (6, 8), "nrf52840": (13, 23, 15, 12, 25, 26), "rtl872x": (32, 35, 28)}
_NRF_SOFTDEVICE_202_FROM = DeviceOSVersion(2, 0, 0)
_OLD_SOFTDEVICE = 201  # assumption: the S140 6.x radio stack of 1.x releases (only "older than 202" matters)
_ELECTRON_THREE_PARTS_FROM = DeviceOSVersion(0, 6, 0)  # particle-domain.md §2.3: 2 system parts before 0.6.0

ModuleKey = tuple[str, int]  # (function name, module index)


@dataclass(frozen=True)
class ModuleSpec:
    """One Device OS module of a release on a platform (never the app).

    ``bytes`` is the size of the module file an OTA sends: the emulator serves files of exactly this size.
    ``dependencies`` are ``(function, index, minimum module version)`` the module needs on the device.
    ``sent_with`` names a module this one always travels with (the rtl872x prebootloader with the bootloader).
    """

    name: str
    function: str  # "system_part" | "bootloader" | "radio_stack"
    index: int
    version: int
    bytes: int
    size_source: str
    dependencies: tuple[tuple[str, int, int], ...] = ()
    sent_with: ModuleKey | None = None
    size_release: str = ""  # the release whose measurement gave ``bytes``
    size_platform_id: int | None = None  # the platform measured (a same-family donor when not this one)
    measure: str = "module"  # "module" (end - start + 4 from a restore image) | "file" (a real binary's size)

    @property
    def key(self) -> ModuleKey:
        return (self.function, self.index)

    @property
    def estimated(self) -> bool:
        """True when the size was not measured for this very release and platform."""
        return not self.size_source.startswith("measured")


@dataclass(frozen=True)
class SizeRow:
    """One measured module size (module-sizes.tsv) of a release the table knows."""

    platform_id: int
    release: DeviceOSVersion
    module: str
    function: str
    index: int
    module_version: int | None
    bytes: int
    measure: str


@cache
def size_rows() -> tuple[SizeRow, ...]:
    """Measured Device OS module sizes (system parts, bootloaders, radio stacks) with a parseable release."""
    rows = []
    for row in read_tsv("module-sizes.tsv"):
        version = DeviceOSVersion.try_parse(row["device_os_version"])
        if (
            version is None
            or catalog().release(version) is None  # e.g. "0.8.0-rc.x": parses, but names no release
            or row["measure"] not in ("module", "file")
            or row["module_function"] not in ("system_part", "bootloader", "radio_stack")
            or not row["platform_id"].isdigit()
        ):
            continue
        rows.append(
            SizeRow(
                platform_id=int(row["platform_id"]),
                release=version,
                module=row["module"],
                function=row["module_function"],
                index=int(row["module_index"] or 0),
                module_version=int(row["module_version"]) if row["module_version"].isdigit() else None,
                bytes=int(row["bytes"]),
                measure=row["measure"],
            )
        )
    return tuple(rows)


def _module_of(release: DeviceOSVersion) -> int:
    row = catalog().release(release)
    assert row is not None, release  # size_rows keeps only releases the table knows
    return row.module_version


def nearest_measured(
    platform: Platform, target: Release, function: str, index: int | None
) -> tuple[list[SizeRow], Platform] | None:
    """Measured rows of one module kind from the measured release nearest the target.

    Estimation rule: on the device's own platform first, then on a same-family donor platform; among the
    measured releases, the one whose system module version is nearest the target's wins, ties go to the
    newer release (sizes grow over time, so the estimate errs high).
    """
    for pid in (platform.id, *SIZE_DONORS.get(platform.mcu, ())):
        if pid != platform.id and platform.id == 10:
            break  # the Electron's 3-part layout has no stand-in
        rows = [r for r in size_rows() if r.platform_id == pid and r.function == function]
        if index is not None:
            rows = [r for r in rows if r.index == index]
        if not rows:
            continue
        releases = sorted({r.release for r in rows})
        best = min(releases, key=lambda v: (abs(_module_of(v) - target.module_version), -_module_of(v)))
        return [r for r in rows if r.release == best], platforms.get(pid)
    return None


def bootloader_of(release: Release, platform_id: int) -> int | None:
    """Bootloader shipped with a release: its own table value, else the last one listed before it."""
    if release.bootloader_version is not None:
        return release.bootloader_version
    earlier = [
        r.bootloader_version
        for r in catalog().releases(platform_id)
        if r.module_version <= release.module_version and r.bootloader_version is not None
    ]
    return earlier[-1] if earlier else None


def _source_text(row: SizeRow, donor: Platform, platform: Platform, target: Release) -> str:
    if donor.id != platform.id:
        return f"estimated from the {donor.display_name} at {row.release}"
    if row.release != target.version:
        return f"nearest measured release {row.release}"
    return f"measured ({row.release})"


def _spec(
    platform: Platform, target: Release, function: str, index: int | None, version: int | None, **extra: object
) -> list[ModuleSpec]:
    """Specs for one module kind of ``target`` (several rows for Gen 2 system parts), sized by the nearest rule."""
    found = nearest_measured(platform, target, function, index)
    if found is None:
        return []
    rows, donor = found
    specs = []
    for row in sorted(rows, key=lambda r: r.module):
        own = version if version is not None else row.module_version
        if own is None:
            continue
        specs.append(
            ModuleSpec(
                name=row.module,
                function=function,
                index=row.index,
                version=own,
                bytes=row.bytes,
                size_source=_source_text(row, donor, platform, target),
                size_release=str(row.release),
                size_platform_id=donor.id,
                measure=row.measure,
                **extra,  # type: ignore[arg-type]
            )
        )
    return specs


def _chain_system_parts(parts: list[ModuleSpec], boot: int | None) -> list[ModuleSpec]:
    """Each system part depends on the one before it (file order); the last also on the bootloader."""
    out: list[ModuleSpec] = []
    for i, part in enumerate(parts):
        deps: list[tuple[str, int, int]] = list(part.dependencies)
        if i > 0:
            deps.append(("system_part", parts[i - 1].index, parts[i - 1].version))
        if i == len(parts) - 1 and boot is not None:
            deps.append(("bootloader", 0, boot))
        out.append(_with_deps(part, tuple(deps)))
    return out


def _with_deps(spec: ModuleSpec, deps: tuple[tuple[str, int, int], ...]) -> ModuleSpec:
    return dataclasses.replace(spec, dependencies=deps)


def _resolve(release: str | DeviceOSVersion) -> Release:
    row = catalog().release(release)
    if row is None:
        near = ", ".join(str(r.version) for r in catalog().nearest(str(release), None))
        raise LookupError(f"release {release!s} is not in fieldsafe's Device OS release table; nearest: {near}")
    return row


@cache
def release_modules(platform_id: int, release: str) -> tuple[ModuleSpec, ...]:
    """The Device OS modules ``release`` consists of on ``platform_id``, in install order (not the app).

    Install order: the radio stack and bootloader chain first, then the system parts in file order, so
    every module's dependencies are installed before it. Raises LookupError for an unknown release, a
    release past a Gen 2 platform's cap, or the monolithic Core.
    """
    platform = platforms.get(platform_id)
    target = _resolve(release)
    if platform.max_release is not None and target.version.base > platform.max_release:
        raise LookupError(
            f"{platform.display_name} can never run Device OS {target.version} (last: {platform.max_release})"
        )
    if platform.monolithic:
        raise LookupError("Core firmware is monolithic: an app flash carries its own Device OS")
    if not target.platforms_inferred and platform.id not in target.platform_ids:
        raise LookupError(f"Device OS {target.version} was not released for the {platform.display_name}")
    boot = bootloader_of(target, platform.id)
    parts = _spec(platform, target, "system_part", None, target.module_version)
    if platform.id == 10 and target.version.base < _ELECTRON_THREE_PARTS_FROM:
        parts = [p for p in parts if p.index != 3]  # before 0.6.0 the Electron had 2 system parts
    head: list[ModuleSpec] = []
    if platform.mcu == "nrf52840":
        old = target.version.base < _NRF_SOFTDEVICE_202_FROM
        radio = _spec(platform, target, "radio_stack", 0, _OLD_SOFTDEVICE if old else None)
        head += radio
        if radio and parts:
            extra = ("radio_stack", 0, radio[0].version)
            parts = [_with_deps(p, (*p.dependencies, extra)) for p in parts]
    if platform.mcu == "rtl872x":
        pre = _spec(platform, target, "bootloader", 2, None, sent_with=("bootloader", 0))
        head += pre
    if boot is not None:
        boot_deps = (("bootloader", 2, head[-1].version),) if platform.mcu == "rtl872x" and head else ()
        head += [_with_deps(s, boot_deps) for s in _spec(platform, target, "bootloader", 0, boot)]
    chained = _chain_system_parts(parts, boot)
    if platform.mcu == "nrf52840" and platform.id != 12:
        # System part 1 lists the bootloader first and the SoftDevice second; only the Argon swaps them on
        # purpose (particle-domain.md §2.4, visible in argon-system-part1@4.1.0.bin).
        chained = [_with_deps(p, tuple(sorted(p.dependencies, key=lambda d: d[0] != "bootloader"))) for p in chained]
    return (*head, *chained)


def installed_modules(platform_id: int, release: str | None) -> dict[ModuleKey, int]:
    """What a device on ``release`` is taken to have installed (empty when the release is unknown)."""
    if release is None or catalog().release(release) is None:
        return {}
    try:
        specs = release_modules(platform_id, str(_resolve(release).version))
    except LookupError:
        return {}
    have = {s.key: s.version for s in specs}
    boot = bootloader_of(_resolve(release), platform_id)
    if boot is None:
        have.pop(("bootloader", 0), None)  # an untabled bootloader: unknown, so an upgrade sends one
    return have


def modules_to_send(platform_id: int, installed: Mapping[ModuleKey, int], to_release: str) -> tuple[ModuleSpec, ...]:
    """The modules of ``to_release`` a device with ``installed`` lacks, in install order.

    A module is sent when the device has no module with its function and index, or an older one; a module
    marked ``sent_with`` goes whenever its companion goes. Never a downgrade: newer installed modules stay.
    """
    specs = release_modules(platform_id, to_release)
    needed = [s for s in specs if installed.get(s.key, -1) < s.version]
    keys = {s.key for s in needed}
    for spec in specs:
        if spec.sent_with in keys and spec.key not in keys:
            needed.append(spec)
            keys.add(spec.key)
    order = {s.key: i for i, s in enumerate(specs)}
    return tuple(sorted(needed, key=lambda s: order[s.key]))


def dependencies_met(spec: ModuleSpec, installed: Mapping[ModuleKey, int]) -> bool:
    """The device's own check before it applies a module: each dependency by function and index, ``>=``."""
    return all(installed.get((function, index), -1) >= version for function, index, version in spec.dependencies)
