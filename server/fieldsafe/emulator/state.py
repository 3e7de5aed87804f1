"""The emulator's world: account, devices, products, tokens, stored binaries and fault switches.

Why a documented JSON state (schema in ``docs/emulator.md``): tests and demos need a fleet with a
story (an Electron stuck on 0.5.3, a Boron in a product group...) that anyone can read and edit,
and a broken file must be rejected with the file and the field named, not with a KeyError later.

The API shapes built here (``Device.to_api``) use the Particle Cloud's field names exactly
(particle-api-js ``DeviceInfo`` and the product-device additions).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from fieldsafe.emulator.faults import FaultError, FaultRule, make_rule
from fieldsafe.releases import ProductReleases

DEVICE_ID = re.compile(r"^[0-9a-f]{24}$")
AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
AGO_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_TOKEN = "fieldsafe-demo-token"


class StateError(ValueError):
    """An invalid state file; the message names the file, the field (JSON path) and what is expected."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(when: dt.datetime | None) -> str | None:
    """The cloud's timestamp format: ``2024-05-01T12:00:00.000Z``."""
    if when is None:
        return None
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# Fields whose changes invalidate the product listing's cached sort orders and filter results
# (``listing.py``). Device.__setattr__ counts assignments per field; so ASSIGN (``d.groups = (...)``),
# never mutate a device's containers in place.
TRACKED_FIELDS = frozenset(
    {"id", "name", "product_id", "groups", "firmware_version", "last_heard", "quarantined", "serial_number", "owned"}
)
CHANGES: dict[str, int] = dict.fromkeys(TRACKED_FIELDS, 0)
NO_VARIABLES: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Device:
    """One device as the cloud knows it (only what fieldsafe and particle-cli look at).

    Slotted: a generated product holds up to 100,000 of them (docs/emulator.md, "Fleet generator").
    Containers are immutable (tuples, a read-only mapping) so generated devices can share them.
    """

    id: str
    name: str
    platform_id: int
    system_firmware_version: str | None
    cellular: bool
    product_id: int
    online: bool
    last_heard: dt.datetime | None
    owned: bool = True
    groups: Sequence[str] = ()
    firmware_updates_enabled: bool = True
    firmware_updates_forced: bool = False
    development: bool = False
    quarantined: bool = False
    denied: bool = False
    firmware_version: int | None = None
    desired_firmware_version: int | None = None
    status: str = "normal"  # "normal" | "safe_mode" (the OTA simulator sets it)
    notes: str | None = None
    serial_number: str | None = None
    iccid: str | None = None
    imei: str | None = None
    last_ip_address: str | None = None
    last_app: str | None = None
    functions: Sequence[str] = ()
    variables: Mapping[str, str] = field(default_factory=lambda: NO_VARIABLES)
    healer: bool | None = None  # per-device override of the healer policy (None = follow fieldsafe.policy)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in TRACKED_FIELDS:
            CHANGES[name] += 1

    @property
    def in_product(self) -> bool:
        """particle-cli's rule: a developer device has ``product_id == platform_id``."""
        return self.product_id != self.platform_id

    def to_api(
        self, *, detail: bool, default_build_target: str | None = None, targeted: int | None = None
    ) -> dict[str, Any]:
        """The JSON object the real API returns for this device (list item, or single-device detail).

        Keys the real API leaves out rather than sending null: a quarantined device has no ``groups``,
        ``firmware_version``, ``desired_firmware_version`` or ``targeted_firmware_release_version``
        (apidoc example), and a device that never ran product firmware has no ``firmware_version``
        (particle-cli fixture). ``targeted`` is the release precedence's answer (``fieldsafe.releases``).
        """
        heard = iso(self.last_heard)
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "last_app": self.last_app,
            "last_ip_address": self.last_ip_address,
            "last_heard": heard,
            "last_handshake_at": heard,
            "product_id": self.product_id,
            "online": self.online,
            "connected": self.online,
            "platform_id": self.platform_id,
            "cellular": self.cellular,
            "notes": self.notes,
            "status": self.status,
            "serial_number": self.serial_number,
            "system_firmware_version": self.system_firmware_version,
            "current_build_target": self.system_firmware_version,
            "default_build_target": default_build_target,
            "firmware_updates_enabled": self.firmware_updates_enabled,
            "firmware_updates_forced": self.firmware_updates_forced,
        }
        if self.cellular:
            body.update({"iccid": self.iccid, "last_iccid": self.iccid, "imei": self.imei})
        if self.in_product:
            body["firmware_product_id"] = self.product_id
            body["development"] = self.development
            body["quarantined"] = self.quarantined
            body["denied"] = self.denied
            if not self.quarantined:
                if self.firmware_version is not None:
                    body["firmware_version"] = self.firmware_version
                body["desired_firmware_version"] = self.desired_firmware_version
                body["targeted_firmware_release_version"] = targeted
                body["groups"] = list(self.groups)
        if detail:
            body["functions"] = list(self.functions)
            body["variables"] = dict(self.variables)
        return body


GROUP_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
DEFAULT_GROUP_COLOR = "#0ea5e9"


@dataclass
class Group:
    """A product device group (``/v1/products/:p/groups``); its release lives in ``Product.releases``."""

    name: str
    description: str = ""
    color: str = DEFAULT_GROUP_COLOR


@dataclass
class ProductFirmware:
    """One uploaded product firmware version. ``data`` is None for a generated fleet's versions
    (they have a size but no binary to download)."""

    version: int
    title: str
    size: int
    uploaded_on: dt.datetime
    description: str = ""
    filename: str = "firmware.bin"
    uploaded_by: str = "demo@fieldsafe.invalid"
    data: bytes | None = None
    mandatory: bool = False
    intelligent: bool = False
    released_at: dt.datetime | None = None
    id: str = ""


@dataclass
class Product:
    id: int
    slug: str
    name: str
    platform_id: int
    description: str = ""
    groups: dict[str, Group] = field(default_factory=dict)
    firmware: dict[int, ProductFirmware] = field(default_factory=dict)
    releases: ProductReleases = field(default_factory=ProductReleases)
    require_running_before_release: bool = True
    user: str = "demo@fieldsafe.invalid"

    def ensure_group(self, name: str) -> Group:
        """The group ``name``, created on first use (device group edits may name new groups)."""
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name)
        return group

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform_id": self.platform_id,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "subscription_id": None,
            "user": self.user,
            "groups": list(self.groups),
            "settings": {"location": {}, "known_application": {"opt_in": False}, "quarantine": False},
            "device_protection": "disabled",
        }


@dataclass
class TokenEntry:
    token: str
    expires_at: dt.datetime | None = None
    client_id: str = "particle"

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class StoredBinary:
    data: bytes
    expires_at: dt.datetime
    platform_id: int | None = None


class EventSink(Protocol):
    """Where the emulator publishes cloud events (the SSE bus sets itself here; see docs/emulator.md)."""

    def publish(
        self, name: str, data: str, *, coreid: str, product_id: int | None = None, version: int | None = None,
        userid: str = "",
    ) -> None: ...  # fmt: skip


class NullEvents:
    """The default sink: events go nowhere until an event bus replaces it."""

    def publish(self, name: str, data: str, **_: Any) -> None:
        return None


@dataclass(frozen=True)
class RateLimit:
    """Per-client request budget: ``requests`` per sliding ``window`` seconds (the cloud: 10,000 / 5 min)."""

    requests: int = 10_000
    window: float = 300.0


@dataclass
class EmulatorState:
    """Everything the emulator serves. ``source`` names where it came from (for error messages)."""

    username: str = "demo@fieldsafe.invalid"
    password: str | None = None
    devices: list[Device] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    tokens: list[TokenEntry] = field(default_factory=list)
    binaries: dict[str, StoredBinary] = field(default_factory=dict)
    faults: list[FaultRule] = field(default_factory=list)
    clock: float | str | None = None  # field simulator clock: simulated seconds per second, "manual" or "instant"
    rate_limit: RateLimit | None = None
    source: str = "<memory>"
    events: EventSink = field(default_factory=NullEvents)
    membership: int = 0  # bumped by add_device/remove_device (listing caches key on it and len(devices))
    _by_id: dict[str, Device] = field(default_factory=dict, repr=False)
    _by_name: dict[str, Device] = field(default_factory=dict, repr=False)
    _lookup_key: tuple[int, ...] = field(default=(), repr=False)

    def add_device(self, device: Device) -> None:
        self.devices.append(device)
        self.membership += 1

    def remove_device(self, device: Device) -> None:
        self.devices.remove(device)
        self.membership += 1

    def _lookups(self) -> tuple[dict[str, Device], dict[str, Device]]:
        """id -> device and name -> device (first wins), rebuilt only when devices, ids or names changed."""
        key = (len(self.devices), self.membership, CHANGES["id"], CHANGES["name"])
        if key != self._lookup_key:
            by_id: dict[str, Device] = {}
            by_name: dict[str, Device] = {}
            for device in self.devices:
                by_id.setdefault(device.id, device)
                by_name.setdefault(device.name, device)
            self._by_id, self._by_name, self._lookup_key = by_id, by_name, key
        return self._by_id, self._by_name

    def find_device(self, id_or_name: str) -> Device | None:
        """By 24-hex id (case-insensitive) or by exact name, like the real API."""
        by_id, by_name = self._lookups()
        return by_id.get(id_or_name.lower()) or by_name.get(id_or_name)

    def find_product(self, id_or_slug: str) -> Product | None:
        for product in self.products:
            if str(product.id) == id_or_slug or product.slug == id_or_slug:
                return product
        return None

    def product_by_id(self, product_id: int) -> Product | None:
        return next((p for p in self.products if p.id == product_id), None)


# --------------------------------------------------------------------------------------------------
# loading and validation


class _Reader:
    """Field accessors that raise :class:`StateError` naming ``<file>: <json path>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> StateError:
        return StateError(f"{self.source}: {where}: {problem}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def str_(self, data: dict[str, Any], key: str, where: str, *, default: Any = ..., allow_none: bool = False) -> Any:
        value = data.get(key, default)
        if value is ...:
            raise self.fail(f"{where}.{key}", "required string is missing")
        if value is None and (allow_none or default is None):
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"expected a string, found {type(value).__name__}")
        return value

    def int_(self, data: dict[str, Any], key: str, where: str, *, default: Any = ...) -> Any:
        value = data.get(key, default)
        if value is ...:
            raise self.fail(f"{where}.{key}", "required integer is missing")
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected an integer, found {value!r}")
        return value

    def bool_(self, data: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected true or false, found {value!r}")
        return value

    def str_list(self, data: dict[str, Any], key: str, where: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "expected a list of strings")
        return list(value)

    def when(self, data: dict[str, Any], where: str, now: dt.datetime) -> dt.datetime | None:
        """``last_heard`` (ISO 8601) or ``last_heard_ago`` ("90s", "15m", "3h", "2d") relative to load time."""
        if data.get("last_heard_ago") is not None:
            text = data["last_heard_ago"]
            match = AGO.match(text) if isinstance(text, str) else None
            if not match:
                raise self.fail(f"{where}.last_heard_ago", f"expected e.g. '15m', '3h' or '2d', found {text!r}")
            return now - dt.timedelta(seconds=float(match.group(1)) * AGO_UNITS[match.group(2)])
        text = self.str_(data, "last_heard", where, default=None)
        if text is None:
            return None
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(
                f"{where}.last_heard", f"expected an ISO 8601 time such as 2024-05-01T12:00:00Z, found {text!r}"
            ) from None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


DEVICE_KEYS = {
    "id", "name", "platform_id", "system_firmware_version", "cellular", "product_id", "online", "connected",
    "last_heard", "last_heard_ago", "owned", "groups", "firmware_updates_enabled", "firmware_updates_forced",
    "development", "quarantined", "denied", "firmware_version", "notes", "serial_number", "iccid", "imei",
    "last_ip_address", "last_app", "functions", "variables", "story", "desired_firmware_version", "status",
    "healer",
}  # fmt: skip
DEVICE_STATUSES = ("normal", "safe_mode")


def _device(r: _Reader, data: Any, where: str, now: dt.datetime) -> Device:
    from fieldsafe import platforms
    from fieldsafe.versions import DeviceOSVersion

    data = r.obj(data, where)
    unknown = set(data) - DEVICE_KEYS
    if unknown:
        raise r.fail(where, f"unknown field(s) {sorted(unknown)}; see docs/emulator.md for the schema")
    device_id = r.str_(data, "id", where)
    if not DEVICE_ID.match(device_id):
        raise r.fail(f"{where}.id", f"expected 24 lower-case hex digits, found {device_id!r}")
    platform_id = r.int_(data, "platform_id", where)
    platform = platforms.find(platform_id)
    if platform is None:
        raise r.fail(f"{where}.platform_id", f"{platform_id} is not a known Particle platform id")
    version = r.str_(data, "system_firmware_version", where, default=None)
    if version is not None:
        try:
            DeviceOSVersion.parse(version)
        except ValueError as exc:
            raise r.fail(f"{where}.system_firmware_version", str(exc)) from None
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise r.fail(f"{where}.variables", "expected an object of name -> type string")
    online = r.bool_(data, "online", where, r.bool_(data, "connected", where, False))
    status = r.str_(data, "status", where, default="normal")
    if status not in DEVICE_STATUSES:
        raise r.fail(f"{where}.status", f"expected one of {list(DEVICE_STATUSES)}, found {status!r}")
    return Device(
        id=device_id,
        name=r.str_(data, "name", where),
        platform_id=platform_id,
        system_firmware_version=version,
        cellular=r.bool_(data, "cellular", where, platform.cellular),
        product_id=r.int_(data, "product_id", where, default=platform_id),
        online=online,
        last_heard=r.when(data, where, now),
        owned=r.bool_(data, "owned", where, True),
        groups=tuple(r.str_list(data, "groups", where)),
        firmware_updates_enabled=r.bool_(data, "firmware_updates_enabled", where, True),
        firmware_updates_forced=r.bool_(data, "firmware_updates_forced", where, False),
        development=r.bool_(data, "development", where, False),
        quarantined=r.bool_(data, "quarantined", where, False),
        denied=r.bool_(data, "denied", where, False),
        firmware_version=r.int_(data, "firmware_version", where, default=None),
        desired_firmware_version=r.int_(data, "desired_firmware_version", where, default=None),
        status=status,
        notes=r.str_(data, "notes", where, default=None),
        serial_number=r.str_(data, "serial_number", where, default=None),
        iccid=r.str_(data, "iccid", where, default=None),
        imei=r.str_(data, "imei", where, default=None),
        last_ip_address=r.str_(data, "last_ip_address", where, default=None),
        last_app=r.str_(data, "last_app", where, default=None),
        functions=tuple(r.str_list(data, "functions", where)),
        variables=MappingProxyType(dict(variables)) if variables else NO_VARIABLES,
        healer=_healer(r, data, where),
    )


def _healer(r: _Reader, data: dict[str, Any], where: str) -> bool | None:
    value = data.get("healer")
    if value is not None and not isinstance(value, bool):
        raise r.fail(f"{where}.healer", f"expected true, false or null (follow the policy table), found {value!r}")
    return value


PRODUCT_KEYS = {
    "id", "slug", "name", "platform_id", "description", "groups", "firmware", "releases",
    "require_running_before_release",
}  # fmt: skip
FIRMWARE_KEYS = {"version", "title", "description", "size", "path", "base64", "filename", "uploaded_on", "mandatory"}


def _product(r: _Reader, data: Any, where: str, base_dir: Path | None, now: dt.datetime) -> Product:
    """A product; ``groups`` are names or ``{name, description, color}``, ``firmware`` uploaded versions,
    ``releases`` ``{"product_default": N, "groups": {"beta": M}}`` (versions must be in ``firmware``)."""
    from fieldsafe import platforms

    data = r.obj(data, where)
    unknown = set(data) - PRODUCT_KEYS
    if unknown:
        raise r.fail(where, f"unknown field(s) {sorted(unknown)}; expected some of {sorted(PRODUCT_KEYS)}")
    platform_id = r.int_(data, "platform_id", where)
    if platforms.find(platform_id) is None:
        raise r.fail(f"{where}.platform_id", f"{platform_id} is not a known Particle platform id")
    product_id = r.int_(data, "id", where)
    product = Product(
        id=product_id,
        slug=r.str_(data, "slug", where, default=f"product-{product_id}"),
        name=r.str_(data, "name", where, default=f"Product {product_id}"),
        platform_id=platform_id,
        description=r.str_(data, "description", where, default=""),
        require_running_before_release=r.bool_(data, "require_running_before_release", where, True),
    )
    raw_groups = data.get("groups", [])
    if not isinstance(raw_groups, list):
        raise r.fail(f"{where}.groups", "expected a list of group names or {name, description, color} objects")
    for i, raw in enumerate(raw_groups):
        group = _group(r, raw, f"{where}.groups[{i}]")
        product.groups[group.name] = group
    raw_firmware = data.get("firmware", [])
    if not isinstance(raw_firmware, list):
        raise r.fail(f"{where}.firmware", "expected a list")
    for i, raw in enumerate(raw_firmware):
        firmware = _firmware(r, raw, f"{where}.firmware[{i}]", base_dir, now)
        if firmware.version in product.firmware:
            raise r.fail(f"{where}.firmware[{i}].version", f"version {firmware.version} is listed twice")
        product.firmware[firmware.version] = firmware
    product.releases = _releases(r, data.get("releases", {}), f"{where}.releases", product)
    return product


def _group(r: _Reader, raw: Any, where: str) -> Group:
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = r.obj(raw, where)
    name = r.str_(raw, "name", where)
    if not GROUP_NAME.match(name):
        raise r.fail(f"{where}.name", f"{name!r}: group names are lower-case letters, digits, '-' and '_'")
    return Group(
        name,
        r.str_(raw, "description", where, default=""),
        r.str_(raw, "color", where, default=DEFAULT_GROUP_COLOR),
    )


def _firmware(r: _Reader, raw: Any, where: str, base_dir: Path | None, now: dt.datetime) -> ProductFirmware:
    raw = r.obj(raw, where)
    unknown = set(raw) - FIRMWARE_KEYS
    if unknown:
        raise r.fail(where, f"unknown field(s) {sorted(unknown)}; expected some of {sorted(FIRMWARE_KEYS)}")
    version = r.int_(raw, "version", where)
    data: bytes | None = None
    if "base64" in raw or "path" in raw:
        data = _binary_content(r, raw, where, base_dir)
    size = len(data) if data is not None else r.int_(raw, "size", where, default=9965)
    uploaded = r.str_(raw, "uploaded_on", where, default=None)
    return ProductFirmware(
        version=version,
        title=r.str_(raw, "title", where, default=f"v{version}"),
        description=r.str_(raw, "description", where, default=""),
        size=size,
        filename=r.str_(raw, "filename", where, default=f"firmware-v{version}.bin"),
        uploaded_on=_iso_time(r, uploaded, f"{where}.uploaded_on") if uploaded else now,
        data=data,
        mandatory=r.bool_(raw, "mandatory", where, False),
        id=f"{version:024x}",
    )


def _releases(r: _Reader, raw: Any, where: str, product: Product) -> ProductReleases:
    raw = r.obj(raw, where)
    unknown = set(raw) - {"product_default", "groups"}
    if unknown:
        raise r.fail(where, f"unknown field(s) {sorted(unknown)}; expected product_default and/or groups")
    default = r.int_(raw, "product_default", where, default=None)
    if default is not None and default not in product.firmware:
        raise r.fail(f"{where}.product_default", f"version {default} is not in this product's 'firmware'")
    groups = r.obj(raw.get("groups", {}), f"{where}.groups")
    released: dict[str, int] = {}
    for name, version in groups.items():
        if name not in product.groups:
            raise r.fail(f"{where}.groups.{name}", "not one of the product's 'groups'")
        if not isinstance(version, int) or isinstance(version, bool) or version not in product.firmware:
            raise r.fail(f"{where}.groups.{name}", f"{version!r} is not a version in this product's 'firmware'")
        released[name] = version
    return ProductReleases(default, released)


def _iso_time(r: _Reader, text: str, where: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise r.fail(where, f"expected an ISO 8601 time such as 2024-05-01T12:00:00Z, found {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _token(r: _Reader, data: Any, where: str, now: dt.datetime) -> TokenEntry:
    if isinstance(data, str):
        return TokenEntry(token=data)
    data = r.obj(data, where)
    token = r.str_(data, "token", where)
    if not token:
        raise r.fail(f"{where}.token", "must not be empty")
    expires = None
    text = r.str_(data, "expires_at", where, default=None)
    if text is not None:
        try:
            expires = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise r.fail(f"{where}.expires_at", f"expected an ISO 8601 time, found {text!r}") from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
    return TokenEntry(token=token, expires_at=expires, client_id=r.str_(data, "client_id", where, default="particle"))


def _binary_content(r: _Reader, data: dict[str, Any], where: str, base_dir: Path | None) -> bytes:
    """The bytes of ``base64`` or ``path`` (relative to the state file)."""
    if "base64" in data:
        try:
            return base64.b64decode(r.str_(data, "base64", where), validate=True)
        except ValueError:
            raise r.fail(f"{where}.base64", "not valid base64") from None
    if "path" in data:
        path = Path(r.str_(data, "path", where))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise r.fail(f"{where}.path", f"cannot read {path}: {exc.strerror}") from None
    raise r.fail(where, "needs 'base64' or 'path' (relative to the state file)")


def _binary(r: _Reader, data: Any, where: str, base_dir: Path | None, now: dt.datetime) -> tuple[str, StoredBinary]:
    data = r.obj(data, where)
    binary_id = r.str_(data, "id", where)
    if not DEVICE_ID.match(binary_id):
        raise r.fail(f"{where}.id", "expected 24 lower-case hex digits")
    content = _binary_content(r, data, where, base_dir)
    return binary_id, StoredBinary(
        content, now + dt.timedelta(days=3650), r.int_(data, "platform_id", where, default=None)
    )


def _rate_limit(r: _Reader, raw: Any, where: str) -> RateLimit | None:
    """``true`` (the cloud's 10,000 / 300 s), ``false``/absent (off) or ``{"requests": N, "window_seconds": S}``."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return RateLimit()
    raw = r.obj(raw, where)
    unknown = set(raw) - {"requests", "window_seconds"}
    if unknown:
        raise r.fail(where, f"unknown field(s) {sorted(unknown)}; expected requests and window_seconds")
    requests = r.int_(raw, "requests", where, default=RateLimit.requests)
    window = raw.get("window_seconds", RateLimit.window)
    if requests < 1:
        raise r.fail(f"{where}.requests", "must be at least 1")
    if not isinstance(window, int | float) or isinstance(window, bool) or window <= 0:
        raise r.fail(f"{where}.window_seconds", f"expected a positive number of seconds, found {window!r}")
    return RateLimit(requests, float(window))


TOP_KEYS = {
    "$schema",
    "comment",
    "user",
    "devices",
    "products",
    "tokens",
    "binaries",
    "faults",
    "fleets",
    "rate_limit",
    "field",
}


def parse_state(data: Any, source: str = "<memory>", *, base_dir: Path | None = None) -> EmulatorState:
    """Validate a state document (already parsed JSON) into an :class:`EmulatorState`."""
    r = _Reader(source)
    now = utcnow()
    data = r.obj(data, "top level")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise r.fail("top level", f"unknown field(s) {sorted(unknown)}; expected some of {sorted(TOP_KEYS)}")
    user = r.obj(data.get("user", {}), "user")
    state = EmulatorState(
        username=r.str_(user, "username", "user", default="demo@fieldsafe.invalid"),
        password=r.str_(user, "password", "user", default=None),
        source=source,
    )
    for key in ("devices", "products", "tokens", "binaries", "faults", "fleets"):
        if not isinstance(data.get(key, []), list):
            raise r.fail(key, "expected a list")
    state.rate_limit = _rate_limit(r, data.get("rate_limit"), "rate_limit")
    state.products = [_product(r, p, f"products[{i}]", base_dir, now) for i, p in enumerate(data.get("products", []))]
    state.devices = [_device(r, d, f"devices[{i}]", now) for i, d in enumerate(data.get("devices", []))]
    if data.get("fleets"):
        from fieldsafe.emulator.fleetgen import FleetSpecError, generate, parse_spec

        for i, raw in enumerate(data["fleets"]):
            try:
                generate(state, parse_spec(raw, f"fleets[{i}]"), now=now)
            except FleetSpecError as exc:
                raise StateError(f"{source}: {exc}") from None
    state.tokens = [_token(r, t, f"tokens[{i}]", now) for i, t in enumerate(data.get("tokens", []))]
    for i, raw in enumerate(data.get("binaries", [])):
        binary_id, stored = _binary(r, raw, f"binaries[{i}]", base_dir, now)
        state.binaries[binary_id] = stored
    for i, raw in enumerate(data.get("faults", [])):
        try:
            state.faults.append(make_rule(raw, f"faults[{i}]"))
        except FaultError as exc:
            raise StateError(f"{source}: {exc}") from None
    state.clock = _field_clock(r, data.get("field", {}))
    _check_references(r, state)
    return state


def _field_clock(r: _Reader, data: Any) -> float | str | None:
    """``"field": {"clock": 60 | "manual" | "instant"}``: the field simulator's clock (docs/emulator.md)."""
    data = r.obj(data, "field")
    unknown = set(data) - {"clock", "comment"}
    if unknown:
        raise r.fail("field", f"unknown field(s) {sorted(unknown)}; expected 'clock'")
    value = data.get("clock")
    if value is None:
        return None
    from fieldsafe.emulator.simclock import SimClock

    try:
        return SimClock.parse_speed(value)
    except ValueError as exc:
        raise r.fail("field.clock", str(exc)) from None


def _check_references(r: _Reader, state: EmulatorState) -> None:
    """Unique ids, product devices point at a product of the same platform; their groups exist (created)."""
    seen: dict[str, int] = {}
    products = {p.id: p for p in state.products}
    for i, device in enumerate(state.devices):
        if device.id in seen:
            raise r.fail(f"devices[{i}].id", f"duplicate of devices[{seen[device.id]}].id")
        seen[device.id] = i
        if device.in_product:
            product = products.get(device.product_id)
            if product is None:
                raise r.fail(
                    f"devices[{i}].product_id",
                    f"{device.product_id} is neither the platform id ({device.platform_id}) nor a product in 'products'",
                )
            if product.platform_id != device.platform_id:
                raise r.fail(f"devices[{i}].platform_id", f"product {product.id} is for platform {product.platform_id}")
            for group in device.groups:
                if group not in product.groups:
                    if not GROUP_NAME.match(group):
                        raise r.fail(
                            f"devices[{i}].groups",
                            f"{group!r}: group names are lower-case letters, digits, '-' and '_'",
                        )
                    product.ensure_group(group)
    ids = [p.id for p in state.products]
    if len(ids) != len(set(ids)):
        raise r.fail("products", "product ids must be unique")


def load_state(path: str | Path) -> EmulatorState:
    """Read and validate a state file; :class:`StateError` names the file and the field on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(f"{path}: byte {exc.start} is not UTF-8; save the state file as UTF-8 JSON") from None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the emulator state file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_state(data, str(path), base_dir=path.parent)


def default_state_text() -> str:
    """The bundled story fleet (``default-state.json``, package data)."""
    return resources.files("fieldsafe.emulator").joinpath("default-state.json").read_text(encoding="utf-8")


def default_state() -> EmulatorState:
    """A fresh copy of the bundled story fleet (see ``docs/emulator.md``)."""
    return parse_state(json.loads(default_state_text()), "fieldsafe/emulator/default-state.json")
