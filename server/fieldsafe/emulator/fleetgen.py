"""The fleet generator: a product of up to 100,000 devices, deterministically, from a seed and a mix.

Why: fleet features (Device OS histograms, guarded releases, listing 100k devices within the rate
limit) must be measurable offline on fleets large enough to matter. A SPEC (JSON; format and example
in docs/emulator.md, "Fleet generator") names the product, the number of devices, a seed and the mix:
Device OS versions (weights), product firmware versions, group memberships, and the shares of
cellular, offline, updates-disabled, development, quarantined, locked and account-owned devices.
The same SPEC and seed always give the same devices (ids, names, versions, groups, flags); only
``last_heard`` is relative to load time, like the state file's ``last_heard_ago``.

Memory: devices are slotted, and the strings and tuples they share (versions, group tuples) are
shared objects, so 100,000 devices stay well inside the emulator's 300 MB budget.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from fieldsafe.emulator.state import (
    GROUP_NAME,
    Device,
    EmulatorState,
    Group,
    Product,
    ProductFirmware,
    utcnow,
)

MAX_DEVICES = 100_000
SPEC_KEYS = {
    "comment", "seed", "devices", "product", "product_id", "platform", "name_prefix", "device_os", "firmware",
    "groups", "cellular", "offline", "updates_disabled", "updates_forced", "development", "quarantined", "locked",
    "owned",
}  # fmt: skip
SHARE_KEYS = ("cellular", "offline", "updates_disabled", "updates_forced", "development", "quarantined", "owned")
ONLINE_HEARD_SECONDS = 600.0  # online devices were heard within the last 10 minutes
OFFLINE_HEARD_SECONDS = (3600.0, 30 * 86400.0)  # offline: between 1 hour and 30 days ago
GENERATED_FIRMWARE_SIZE = 9965  # [fue]'s app-only OTA transfer, for versions the SPEC creates without a binary


class FleetSpecError(ValueError):
    """A SPEC that cannot be generated; the message names the SPEC and the key."""


@dataclass
class FleetSpec:
    """A validated SPEC (see the module docstring and docs/emulator.md)."""

    source: str
    seed: int
    devices: int
    product: dict[str, Any] | None
    product_id: int | None
    platform: str | int | None
    name_prefix: str | None
    device_os: dict[str, float]
    firmware: dict[int | None, float]
    groups: dict[str, float]
    shares: dict[str, float | None]
    locked: dict[int, float] = field(default_factory=dict)


def _fail(source: str, key: str, problem: str) -> FleetSpecError:
    return FleetSpecError(f"{source}: {key}: {problem}")


def _weights(source: str, key: str, raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(source, key, 'expected an object of choice -> weight, e.g. {"4.0.2": 60, "2.3.0": 40}')
    out: dict[str, float] = {}
    for name, weight in raw.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise _fail(source, f"{key}.{name}", f"expected a weight >= 0, found {weight!r}")
        out[str(name)] = float(weight)
    if sum(out.values()) <= 0:
        raise _fail(source, key, "the weights add up to 0")
    return out


def _share(source: str, key: str, raw: Any) -> float:
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0 <= raw <= 1:
        raise _fail(source, key, f"expected a share from 0 to 1, found {raw!r}")
    return float(raw)


def _version_key(source: str, key: str, name: str) -> int:
    if not name.isdigit():
        raise _fail(source, key, f"{name!r} is not a product firmware version (a positive integer)")
    return int(name)


def parse_spec(raw: Any, source: str = "SPEC") -> FleetSpec:
    """Validate a SPEC document (already parsed JSON). Device OS versions are checked in :func:`generate`
    (they depend on the product's platform)."""
    if not isinstance(raw, dict):
        raise FleetSpecError(f"{source}: expected a JSON object (see docs/emulator.md, 'Fleet generator')")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise FleetSpecError(f"{source}: unknown key(s) {sorted(unknown)}; expected some of {sorted(SPEC_KEYS)}")
    seed = raw.get("seed", 0)
    count = raw.get("devices")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _fail(source, "seed", f"expected an integer, found {seed!r}")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_DEVICES:
        raise _fail(source, "devices", f"expected a number of devices from 0 to {MAX_DEVICES:,}, found {count!r}")
    product = raw.get("product")
    product_id = raw.get("product_id")
    if product is not None and not isinstance(product, dict):
        raise _fail(source, "product", "expected a product object (the state file's product schema)")
    if product_id is not None and (not isinstance(product_id, int) or isinstance(product_id, bool)):
        raise _fail(source, "product_id", f"expected the id of a product in 'products', found {product_id!r}")
    if product is None and product_id is None and raw.get("platform") is None:
        raise _fail(source, "product", "give 'product' (an object), 'product_id' (an existing product) or 'platform'")
    firmware: dict[int | None, float] = {}
    for name, weight in _weights(source, "firmware", raw.get("firmware", {"none": 1})).items():
        firmware[None if name == "none" else _version_key(source, f"firmware.{name}", name)] = weight
    groups = {}
    for name, share in (raw.get("groups") or {}).items():
        if not GROUP_NAME.match(name):
            raise _fail(source, f"groups.{name}", "group names are lower-case letters, digits, '-' and '_'")
        groups[name] = _share(source, f"groups.{name}", share)
    locked = {
        _version_key(source, f"locked.{name}", str(name)): _share(source, f"locked.{name}", share)
        for name, share in (raw.get("locked") or {}).items()
    }
    shares: dict[str, float | None] = {
        key: (_share(source, key, raw[key]) if key in raw else None) for key in SHARE_KEYS
    }
    prefix = raw.get("name_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise _fail(source, "name_prefix", "expected a non-empty string")
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, str | int):
        raise _fail(source, "platform", "expected a platform name or id, e.g. 'boron' or 13")
    return FleetSpec(
        source=source,
        seed=seed,
        devices=count,
        product=product,
        product_id=product_id,
        platform=platform,
        name_prefix=prefix,
        device_os=_weights(source, "device_os", raw.get("device_os")),
        firmware=firmware,
        groups=groups,
        shares=shares,
        locked=locked,
    )


def load_spec(text: str) -> FleetSpec:
    """``--fleet SPEC``: inline JSON (starting with ``{``) or the path of a JSON file."""
    source = "--fleet"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetSpecError(
                f"{path}: cannot read the fleet SPEC ({getattr(exc, 'strerror', None) or exc})"
            ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FleetSpecError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_spec(raw, source)


def _product_for(state: EmulatorState, spec: FleetSpec, now: dt.datetime) -> Product:
    """The SPEC's product: an existing one (``product_id``), a new one (``product``), or one made up for
    ``platform``. Firmware versions and groups the mix names are added to it when missing."""
    from fieldsafe import platforms
    from fieldsafe.emulator.state import StateError, _product, _Reader

    if spec.product_id is not None:
        product = state.product_by_id(spec.product_id)
        if product is None:
            raise _fail(spec.source, "product_id", f"{spec.product_id} is not a product in 'products'")
    else:
        raw = dict(spec.product or {})
        if spec.platform is not None:
            platform = platforms.find(spec.platform)
            if platform is None:
                raise _fail(spec.source, "platform", f"{spec.platform!r} is not a known Particle platform")
            raw.setdefault("platform_id", platform.id)
            raw.setdefault("id", 40_000 + platform.id)
            raw.setdefault("slug", f"{platform.name}-fleet")
            raw.setdefault("name", f"{platform.display_name} fleet")
        try:
            product = _product(_Reader(spec.source), raw, "product", None, now)
        except StateError as exc:
            raise FleetSpecError(str(exc)) from None
        if state.product_by_id(product.id) is not None:
            raise _fail(spec.source, "product.id", f"product {product.id} already exists; use 'product_id' to fill it")
        state.products.append(product)
    for version in [v for v in spec.firmware if v is not None] + list(spec.locked):
        if version not in product.firmware:
            product.firmware[version] = ProductFirmware(
                version=version, title=f"v{version}", size=GENERATED_FIRMWARE_SIZE, uploaded_on=now,
                filename=f"firmware-v{version}.bin", id=f"{version:024x}",
            )  # fmt: skip
    for name in spec.groups:
        product.groups.setdefault(name, Group(name))
    return product


def _check_device_os(spec: FleetSpec, platform_id: int) -> list[str]:
    from fieldsafe.versions import catalog

    cat = catalog()
    out = []
    for version in spec.device_os:
        release = cat.release(version)
        if release is None or platform_id not in release.platform_ids:
            near = (
                ", ".join(str(r.version) for r in cat.nearest(version, platform_id)) if hasattr(cat, "nearest") else ""
            )
            hint = f"; nearest: {near}" if near else ""
            raise _fail(
                spec.source, f"device_os.{version}", f"not a Device OS release for platform {platform_id}{hint}"
            )
        out.append(str(release.version))
    return out


class _Chooser:
    """Weighted choice with one ``random()`` per draw (cumulative weights + bisect)."""

    def __init__(self, rng: random.Random, weights: dict[Any, float]) -> None:
        self.rng = rng
        self.values = list(weights)
        self.cumulative = list(accumulate(weights.values()))
        self.total = self.cumulative[-1]

    def __call__(self) -> Any:
        return self.values[bisect.bisect_right(self.cumulative, self.rng.random() * self.total) if self.total else 0]


def generate(state: EmulatorState, spec: FleetSpec, *, now: dt.datetime | None = None) -> Product:
    """Add the SPEC's product (or fill an existing one) and its devices to ``state``; returns the product."""
    from fieldsafe import platforms

    now = now or utcnow()
    product = _product_for(state, spec, now)
    platform = platforms.find(product.platform_id)
    assert platform is not None  # the product parser checked it
    versions = _check_device_os(spec, product.platform_id)
    rng = random.Random(spec.seed)
    device_os = _Chooser(rng, dict(zip(versions, spec.device_os.values(), strict=True)))
    firmware = _Chooser(rng, spec.firmware)
    share = {k: (v if v is not None else 0.0) for k, v in spec.shares.items()}
    cellular_share = spec.shares["cellular"]
    if cellular_share is None:
        cellular_share = 1.0 if platform.cellular else 0.0
    prefix = spec.name_prefix or product.slug
    width = max(5, len(str(spec.devices)))
    taken = {d.id for d in state.devices}
    group_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
    low, high = OFFLINE_HEARD_SECONDS
    random_ = rng.random
    serial_code = platform.name[:3].upper()
    new: list[Device] = []
    for i in range(1, spec.devices + 1):
        device_id = f"{rng.getrandbits(96):024x}"
        while device_id in taken:
            device_id = f"{rng.getrandbits(96):024x}"
        taken.add(device_id)
        online = random_() >= share["offline"]
        heard = random_() * ONLINE_HEARD_SECONDS if online else low + random_() * (high - low)
        cellular = random_() < cellular_share
        groups = tuple(g for g, s in spec.groups.items() if random_() < s)
        groups = group_tuples.setdefault(groups, groups)
        locked = None
        for version, s in spec.locked.items():
            if random_() < s:
                locked = version
                break
        new.append(
            Device(
                id=device_id,
                name=f"{prefix}-{i:0{width}d}",
                platform_id=product.platform_id,
                system_firmware_version=device_os(),
                cellular=cellular,
                product_id=product.id,
                online=online,
                last_heard=now - dt.timedelta(seconds=round(heard, 3)),
                owned=random_() < share["owned"],
                groups=groups,
                firmware_updates_enabled=random_() >= share["updates_disabled"],
                firmware_updates_forced=random_() < share["updates_forced"],
                development=random_() < share["development"],
                quarantined=random_() < share["quarantined"],
                firmware_version=firmware(),
                desired_firmware_version=locked,
                serial_number=f"{serial_code}K{spec.seed % 1000:03d}{i:0{width}d}",
                iccid=f"89{spec.seed % 100:02d}{i:016d}" if cellular else None,
                imei=f"35{i:013d}" if cellular else None,
                last_ip_address=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            )
        )
    state.devices.extend(new)
    state.membership += 1
    return product
