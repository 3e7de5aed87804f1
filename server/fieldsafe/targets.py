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
    from fieldsafe.project import WorkbenchSettings

DEVICE_PREFIX = "device:"


class TargetError(ValueError):
    """The target cannot be resolved; the message names the setting or flag and the fix."""


@dataclass(frozen=True)
class Target:
    """A resolved build target, with the device it was taken from (if any)."""

    platform: platforms.Platform
    release: Release
    device: dict[str, Any] | None = None
    source: str = "flag"  # "flag" | "pin" | "device"
    spec: str | None = None  # the text it was resolved from ("latest-lts", "2.3.1", ...)

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
) -> Target:
    """Flags win over the project's pin (Workbench keys in ``.vscode/settings.json``).

    ``settings`` is the pin already read (the language server reads it from the editor buffer); otherwise
    it is read from ``root`` on disk.
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
        # an explicit device decides the platform; only an explicit --platform can contradict it
        return _from_device(release_text[len(DEVICE_PREFIX) :], platform, cloud)
    if not release_text:
        raise TargetError(
            "no Device OS release to build against: pass --target RELEASE (or device:NAME), "
            'or pin "particle.firmwareVersion" in .vscode/settings.json'
        )
    resolved_platform = _platform(platform_text)
    try:
        release = catalog().resolve(release_text, resolved_platform.id)
    except LookupError as exc:
        where = "--target" if source == "flag" else "particle.firmwareVersion in .vscode/settings.json"
        raise TargetError(f"{where}: {exc} (platform {resolved_platform.name})") from None
    return Target(platform=resolved_platform, release=release, source=source, spec=release_text)


def _read_pin(root: Path) -> WorkbenchSettings:
    from fieldsafe.project import ProjectSettingsError, read_settings

    try:
        return read_settings(root)
    except ProjectSettingsError as exc:
        raise TargetError(str(exc)) from None


def _platform(text: str | int | None) -> platforms.Platform:
    if text is None or text == "":
        raise TargetError(
            'no platform: pass --platform NAME (e.g. electron, boron, p2) or set "particle.targetPlatform" '
            "in .vscode/settings.json"
        )
    try:
        return platforms.get(text)
    except KeyError as exc:
        raise TargetError(str(exc.args[0])) from None


def _from_device(name: str, platform_text: str | int | None, cloud: ParticleCloud | None) -> Target:
    """``device:NAME``: build for exactly the release (and platform) that device reports."""
    if not name.strip():
        raise TargetError(
            f"--target {DEVICE_PREFIX} needs a device name or id, e.g. {DEVICE_PREFIX}field-unit-7 "
            "(`fieldsafe devices` lists them)"
        )
    asked = _platform(platform_text) if platform_text not in (None, "") else None  # a typo fails before the cloud
    if cloud is None:
        raise TargetError(f"{DEVICE_PREFIX}{name} needs the Particle Cloud to look the device up")
    device = cloud.get_device(name)
    platform_id = device.get("platform_id")
    device_platform = platforms.find(platform_id) if isinstance(platform_id, int) else None
    if device_platform is None:
        raise TargetError(
            f"{name} reports platform {platform_id!r}, which fieldsafe does not know; "
            "pass --platform NAME and --target RELEASE explicitly"
        )
    if asked is not None and asked.id != device_platform.id:
        raise TargetError(
            f"--platform {platform_text} differs from {name}'s platform {device_platform.name}: "
            f"drop --platform or pick a device of platform {asked.name}"
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
    return Target(platform=device_platform, release=release, device=device, source="device")
