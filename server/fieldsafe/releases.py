"""Which product firmware each product device is targeted with: the Particle Cloud's documented precedence.

Why a pure module: the emulator decides with it what a release does (``targeted_firmware_release_version``,
``GET /v1/products/:p/impact``), and fieldsafe's fleet guard computes with the SAME function, client-side,
"the devices this release would reach" before it asks the cloud to release. One copy of the rules.

The precedence (docs.particle.io, getting-started/cloud/ota-updates, highest first):

1. ``development`` devices never get automatic product firmware;
2. a device locked to a ``desired_firmware_version`` gets that version;
3. a device in groups with a release gets the highest version released to one of its groups;
4. otherwise the product default release;
5. otherwise nothing.

Quarantined (and denied) devices are not yet members of the fleet and get nothing (the API omits their
``targeted_firmware_release_version`` key; see docs/emulator.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class TargetReason(StrEnum):
    """Why a device is targeted with what it is (stable values, shown to users and in JSON)."""

    DEVELOPMENT = "development"
    QUARANTINED = "quarantined"
    LOCKED = "locked"
    GROUP = "group"
    PRODUCT_DEFAULT = "product_default"
    NONE = "none"


@dataclass(frozen=True)
class ProductReleases:
    """What a product has released: the product default version and each group's released version."""

    product_default: int | None = None
    groups: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_firmware(cls, firmware: Iterable[Mapping[str, Any]]) -> ProductReleases:
        """From the API's firmware list (``GET /v1/products/:p/firmware`` items: ``version``,
        ``product_default``, ``groups``); keys may be absent. A group listed by two versions keeps the
        highest (the cloud lets a group have one release; this only guards against odd input)."""
        default: int | None = None
        groups: dict[str, int] = {}
        for item in firmware:
            version = item.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                continue
            if item.get("product_default") is True:
                default = version if default is None else max(default, version)
            for group in item.get("groups") or ():
                if isinstance(group, str):
                    groups[group] = max(groups.get(group, version), version)
        return cls(default, groups)

    def released(self, version: int, *, product_default: bool, groups: Iterable[str]) -> ProductReleases:
        """The releases after ``PUT /v1/products/:p/firmware/release`` with this body.

        The body describes the version's whole targeting (the console's "edit groups for firmware"):
        the listed groups get ``version``; groups that had ``version`` but are not listed lose it;
        ``product_default: true`` makes it the default, ``false`` removes it as the default if it was.
        """
        wanted = set(groups)
        new_groups = {g: v for g, v in self.groups.items() if v != version and g not in wanted}
        new_groups.update(dict.fromkeys(wanted, version))
        if product_default:
            default: int | None = version
        else:
            default = None if self.product_default == version else self.product_default
        return ProductReleases(default, new_groups)

    def versions(self) -> set[int]:
        """Every version released somewhere (default or a group)."""
        out = set(self.groups.values())
        if self.product_default is not None:
            out.add(self.product_default)
        return out


class Targetable(Protocol):
    """What the precedence reads from a device: :class:`DeviceTargeting`, or the emulator's own devices."""

    @property
    def development(self) -> bool: ...
    @property
    def desired_firmware_version(self) -> int | None: ...
    @property
    def groups(self) -> Sequence[str]: ...
    @property
    def firmware_version(self) -> int | None: ...
    @property
    def quarantined(self) -> bool: ...


@dataclass(frozen=True)
class DeviceTargeting:
    """What the precedence needs to know about one product device."""

    development: bool = False
    desired_firmware_version: int | None = None
    groups: tuple[str, ...] = ()
    firmware_version: int | None = None  # the product firmware it runs now (None: never ran any)
    quarantined: bool = False

    @classmethod
    def from_api(cls, device: Mapping[str, Any]) -> DeviceTargeting:
        """From a device object of ``GET /v1/products/:p/devices``: keys may be absent or null."""

        def _int(key: str) -> int | None:
            value = device.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        groups = device.get("groups")
        return cls(
            development=device.get("development") is True,
            desired_firmware_version=_int("desired_firmware_version"),
            groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
            firmware_version=_int("firmware_version"),
            quarantined=device.get("quarantined") is True or device.get("denied") is True,
        )


@dataclass(frozen=True)
class Target:
    """The product firmware version a device is targeted with (None: none) and why."""

    version: int | None
    reason: TargetReason
    group: str | None = None  # the group whose release it is, for reason GROUP


def target_for(device: Targetable, releases: ProductReleases) -> Target:
    """The documented precedence (module docstring), first rule that applies wins."""
    if device.quarantined:
        return Target(None, TargetReason.QUARANTINED)
    if device.development:
        return Target(None, TargetReason.DEVELOPMENT)
    if device.desired_firmware_version is not None:
        return Target(device.desired_firmware_version, TargetReason.LOCKED)
    best: tuple[int, str] | None = None
    for group in device.groups:
        version = releases.groups.get(group)
        if version is not None and (best is None or (version, group) > best):
            best = (version, group)
    if best is not None:
        return Target(best[0], TargetReason.GROUP, best[1])
    if releases.product_default is not None:
        return Target(releases.product_default, TargetReason.PRODUCT_DEFAULT)
    return Target(None, TargetReason.NONE)


@dataclass(frozen=True)
class Reach:
    """Who a release of ``version`` would send firmware to.

    ``indexes`` are positions in the device sequence given to :func:`reach` of the devices targeted with
    ``version`` after the release that do not run it yet; ``by_version`` counts them by the product
    firmware version they run now (None: none yet), ascending with None first, as the cloud's impact
    endpoint does (``devices.firmware_update.by_version``).
    """

    version: int
    indexes: tuple[int, ...]
    by_version: tuple[tuple[int | None, int], ...]

    @property
    def total(self) -> int:
        return len(self.indexes)


def reach(
    devices: Iterable[Targetable],
    releases: ProductReleases,
    version: int,
    *,
    product_default: bool,
    groups: Iterable[str],
) -> Reach:
    """The devices a ``PUT .../firmware/release`` of ``version`` with this body would update."""
    after = releases.released(version, product_default=product_default, groups=groups)
    indexes: list[int] = []
    counts: dict[int | None, int] = {}
    for i, device in enumerate(devices):
        if device.firmware_version == version or target_for(device, after).version != version:
            continue
        indexes.append(i)
        counts[device.firmware_version] = counts.get(device.firmware_version, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))
    return Reach(version, tuple(indexes), tuple(ordered))
