"""Resolve what to build for: a release + platform, from flags, the project's pin or a fielded device.

Why its own module: ``fieldsafe compile``, ``fieldsafe check`` and ``fieldsafe demo`` accept the same
target forms (``2.3.1``, ``latest-lts``, ``^5.3.0``, ``device:NAME``) and must explain failures the same
way. The cloud is passed in (and only used for ``device:NAME``), so this stays testable offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldsafe import platforms
from fieldsafe.versions import DeviceOSVersion, Release, catalog

if TYPE_CHECKING:
    from fieldsafe.cloud import ParticleCloud
    from fieldsafe.findings import Finding
    from fieldsafe.project import WorkbenchSettings

DEVICE_PREFIX = "device:"


class TargetError(ValueError):
    """The target cannot be resolved; the message names the setting or flag and the fix."""


class UnknownRelease(TargetError):
    """A version-shaped release fieldsafe's table does not know (e.g. a typo of a future ``6.9.0``).

    Not a usage error: ``check`` and ``compile`` print ``finding`` (FS104, with the nearest releases) and
    exit 1, so a mistyped pin fails CI in both (see ``checking.FAILS_CI``).
    """

    def __init__(self, message: str, finding: Finding) -> None:
        super().__init__(message)
        self.finding = finding


@dataclass(frozen=True)
class Target:
    """A resolved build target, with the device it was taken from (if any)."""

    platform: platforms.Platform
    release: Release
    device: dict[str, Any] | None = None
    source: str = "flag"  # "flag" | "pin" | "device"
    spec: str | None = None  # the text it was resolved from ("latest-lts", "2.3.1", ...)
    device_name: str | None = None  # the name or id asked for with device:NAME
    device_age: float | None = None  # None = live; else the age of the cached device state (offline)
    device_platform: platforms.Platform | None = None  # what the device is (may differ from ``platform``)

    @property
    def check_spec(self) -> str:
        """The release text the checks judge: what the user wrote (so a range pin warns), or the device's."""
        return str(self.release.version) if self.source == "device" or not self.spec else self.spec

    def pin_warning(self) -> str | None:
        """A pin that is a range or a word (``latest``, ``2.3``) builds for a different release as new ones ship."""
        if self.source != "pin" or self.spec is None or DeviceOSVersion.try_parse(self.spec) is not None:
            return None
        from fieldsafe.compat import pin_not_exact

        return pin_not_exact(self.spec, self.release).message

    def describe(self) -> str:
        """``"0.5.3 (module 21), what field-unit-7 runs"``."""
        text = f"{self.release.version} (module {self.release.module_version})"
        if self.device is not None:
            text += f", what {self.device.get('name') or self.device.get('id')} runs"
        return text


def resolve_target(
    root: Path | None,
    *,
    platform: str | int | None = None,
    target: str | None = None,
    cloud: ParticleCloud | None = None,
    settings: WorkbenchSettings | None = None,
    offline: bool = False,
    strict: bool = True,
) -> Target:
    """Flags win over the project's pin (Workbench keys in ``.vscode/settings.json``).

    ``strict`` False: an exact release the table knows is returned even when the platform does not get
    it (the CLI then reports FS106/FS107 as findings, through ``checking``, instead of a usage error).

    ``settings`` is the pin already read (the language server reads it from the editor buffer); otherwise
    it is read from ``root`` on disk. ``offline``: a ``device:NAME`` is looked up in the cache only.
    """
    pin_release, pin_platform, source = None, None, "flag"
    if settings is None and root is not None and (target is None or platform is None):
        settings = _read_pin(root)
    if settings is not None:
        pin_release, pin_platform = settings.firmware_version, settings.target_platform
    release_text = target or pin_release
    platform_text = platform if platform is not None else pin_platform
    if target is None and pin_release is not None:
        source = "pin"
    if release_text and release_text.startswith(DEVICE_PREFIX):
        # the device decides the release; a pinned or explicit platform it contradicts is reported, not switched
        name = release_text[len(DEVICE_PREFIX) :]
        return _from_device(name, platform, pin_platform, cloud, offline, _platform_source(None, settings))
    if not release_text:
        raise TargetError(
            "no Device OS release to build against: pass --target RELEASE (or device:NAME), "
            'or pin "particle.firmwareVersion" in .vscode/settings.json'
        )
    resolved_platform = _platform(platform_text, _platform_source(platform, settings))
    known = None if strict else catalog().release(release_text)
    if known is not None:
        return Target(platform=resolved_platform, release=known, source=source, spec=release_text)
    try:
        release = catalog().resolve(release_text, resolved_platform.id)
    except LookupError as exc:
        where = "--target" if source == "flag" else "particle.firmwareVersion in .vscode/settings.json"
        message = f"{where}: {exc} (platform {resolved_platform.name})"
        if DeviceOSVersion.try_parse(release_text) is not None:
            from fieldsafe.compat import check_target

            found = [f for f in check_target(release_text, resolved_platform.id) if f.code == "FS104"]
            if found:
                raise UnknownRelease(message, found[0]) from None
        raise TargetError(message) from None
    return Target(platform=resolved_platform, release=release, source=source, spec=release_text)


def _read_pin(root: Path) -> WorkbenchSettings:
    from fieldsafe.project import ProjectSettingsError, read_settings

    try:
        return read_settings(root)
    except ProjectSettingsError as exc:
        raise TargetError(str(exc)) from None


def _platform_source(flag: str | int | None, settings: WorkbenchSettings | None) -> str:
    """Where the platform text came from, for messages: the flag, or the settings key and its file."""
    if flag is not None or settings is None:
        return "--platform"
    return f'"particle.targetPlatform" in {settings.path}'


def _platform(text: str | int | None, where: str = "--platform") -> platforms.Platform:
    if text is None or text == "":
        raise TargetError(
            'no platform: pass --platform NAME (e.g. electron, boron, p2) or set "particle.targetPlatform" '
            "in .vscode/settings.json"
        )
    try:
        return platforms.get(text)
    except KeyError as exc:
        raise TargetError(f"{where}: {exc.args[0]}") from None


def _from_device(
    name: str,
    platform_text: str | int | None,
    pin_platform: str | None,
    cloud: ParticleCloud | None,
    offline: bool = False,
    pin_where: str = '"particle.targetPlatform"',
) -> Target:
    """``device:NAME``: build for exactly the release that device reports.

    The platform stays the one asked for (``--platform``) or pinned (``particle.targetPlatform``): when
    the device is another platform the checks report FS102 instead of quietly building for the device's
    board. Without either, the device's platform is the build's (nothing to contradict).
    """
    from fieldsafe.checking import lookup_device

    if not name.strip():
        raise TargetError(
            f"--target {DEVICE_PREFIX} needs a device name or id, e.g. {DEVICE_PREFIX}field-unit-7 "
            "(`fieldsafe devices` lists them)"
        )
    asked = _platform(platform_text) if platform_text not in (None, "") else None  # a typo fails before the cloud
    pinned = _platform(pin_platform, pin_where) if asked is None and pin_platform else None
    if cloud is None:
        raise TargetError(f"{DEVICE_PREFIX}{name} needs the Particle Cloud to look the device up")
    lookup = lookup_device(cloud, name, offline=offline)
    if lookup.raw is None:
        assert lookup.error is not None
        raise lookup.error
    device = lookup.raw
    platform_id = device.get("platform_id")
    device_platform = platforms.find(platform_id) if isinstance(platform_id, int) else None
    if device_platform is None:
        raise TargetError(
            f"{name} reports platform {platform_id!r}, which fieldsafe does not know; "
            "pass --platform NAME and --target RELEASE explicitly"
        )
    running = device.get("system_firmware_version")
    if not running:
        raise TargetError(
            f"{name} does not report its Device OS version (it may not have connected to the cloud yet); "
            "pass --target RELEASE explicitly"
        )
    release = catalog().release(running) if isinstance(running, str) else None
    if release is None or device_platform.id not in release.platform_ids:
        raise TargetError(
            f"{name} reports Device OS {running}, which is not a release fieldsafe knows for the "
            f"{device_platform.display_name}; pass --target RELEASE explicitly"
        )
    return Target(
        platform=asked or pinned or device_platform,
        release=release,
        device=device,
        source="device",
        spec=f"{DEVICE_PREFIX}{name}",
        device_name=name,
        device_age=lookup.age_seconds,
        device_platform=device_platform,
    )
