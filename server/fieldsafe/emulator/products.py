"""Products, product devices and device groups: ``/v1/products/...`` (shapes: shared docs fleet-api.md §1.1-1.5).

Why its own module: the listing is the part of the emulator that must scale (100,000 devices), and the
device/group edits feed the release precedence (``fieldsafe.releases``) that the firmware routes and
the OTA simulator read. Choices where the real API is unverified are documented in docs/emulator.md.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from fieldsafe.emulator.api import Reply, Request, Route, api_error, int_arg, json_body, json_reply, route
from fieldsafe.emulator.listing import DEFAULT_SORT, SORT_FIELDS, ListQuery
from fieldsafe.emulator.state import DEFAULT_GROUP_COLOR, GROUP_NAME, Device, Group, Product, iso, utcnow

if TYPE_CHECKING:
    from fieldsafe.emulator.server import Emulator

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100  # UNVERIFIED maximum: larger values are clamped silently (docs/emulator.md)
P = r"/v1/products/(?P<product>[^/]+)"


def routes(emu: Emulator) -> list[Route]:
    api = ProductApi(emu)
    return [
        route("GET", r"/v1/(?:user/)?products", api.list_products),
        route("GET", r"/v1/orgs/(?P<org>[^/]+)/products", api.list_products),
        route("GET", P, api.get_product),
        route("GET", P + r"/devices", api.list_devices),
        route("PUT", P + r"/devices", api.batch_devices),
        route("GET", P + r"/devices/(?P<device>[^/]+)", api.get_device),
        # PUT .../devices/:id is routed by fieldapi (flash or edit), which calls Emulator.edit_product_device
        route("DELETE", P + r"/devices/(?P<device>[^/]+)", api.remove_device),
        route("GET", P + r"/groups", api.list_groups),
        route("POST", P + r"/groups", api.create_group),
        route("GET", P + r"/groups/(?P<group>[^/]+)", api.get_group),
        route("PUT", P + r"/groups/(?P<group>[^/]+)", api.edit_group),
        route("DELETE", P + r"/groups/(?P<group>[^/]+)", api.delete_group),
    ]


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise api_error(400, "invalid_request", f"{name} must be true or false, got {value!r}")


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "" or value == "null":
        return None
    if isinstance(value, bool):
        raise api_error(400, "invalid_request", f"{name} must be an integer or null, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise api_error(400, "invalid_request", f"{name} must be an integer or null, got {value!r}") from None


def _names(value: Any, name: str) -> list[str]:
    """A list of group names, from a JSON list or a comma-separated string."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise api_error(400, "invalid_request", f"{name} must be a list of group names")
    for group in value:
        if not GROUP_NAME.match(group):
            raise api_error(
                400, "invalid_request", f"{name}: {group!r} is not a group name (lower-case letters, digits, - and _)"
            )
    return list(dict.fromkeys(value))


class ProductApi:
    """The handlers; state access under ``emu.lock``."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.state = emu.state

    # ---- products ---------------------------------------------------------------------------------

    def product(self, product: str) -> Product:
        found = self.state.find_product(urllib.parse.unquote(product))
        if found is None:
            raise api_error(404, "Not Found", f"Product {urllib.parse.unquote(product)} not found")
        return found

    def list_products(self, request: Request, **_: Any) -> Reply:
        with self.emu.lock:
            return json_reply({"products": [p.to_api() for p in self.state.products]})

    def get_product(self, request: Request, *, product: str, **_: Any) -> Reply:
        with self.emu.lock:
            return json_reply({"product": self.product(product).to_api()})

    # ---- product devices --------------------------------------------------------------------------

    def _query(self, request: Request, product: Product) -> ListQuery:
        sort_attr = request.arg("sortAttr") or DEFAULT_SORT[0]
        if sort_attr not in SORT_FIELDS:
            raise api_error(
                400, "invalid_request", f"sortAttr must be one of {', '.join(SORT_FIELDS)}, got {sort_attr!r}"
            )
        default_dir = DEFAULT_SORT[1] if request.arg("sortAttr") is None else "asc"
        sort_dir = (request.arg("sortDir") or default_dir).lower()
        if sort_dir not in ("asc", "desc"):
            raise api_error(400, "invalid_request", f"sortDir must be asc or desc, got {sort_dir!r}")
        quarantined = request.arg("quarantined")
        return ListQuery(
            product_id=product.id,
            sort_attr=sort_attr,
            sort_dir=sort_dir,
            groups=frozenset(g.strip() for g in (request.arg("groups") or "").split(",") if g.strip()),
            device_id=request.arg("deviceId") or "",
            device_name=request.arg("deviceName") or "",
            serial_number=request.arg("serialNumber") or "",
            quarantined=None if quarantined in (None, "") else _bool(quarantined, "quarantined"),
        )

    def list_devices(self, request: Request, *, product: str, **_: Any) -> Reply:
        """``{devices, customers, meta: {page, per_page, total_pages, total}}``; ``per_page`` or ``perPage``
        (default 25, clamped at 100); a page past the end is an empty ``devices`` list."""
        page = int_arg(request, "page", 1, minimum=1)
        name = "per_page" if request.arg("per_page") not in (None, "") else "perPage"
        per_page = int_arg(request, name, DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE, clamp=True)
        with self.emu.lock:
            found = self.product(product)
            query = self._query(request, found)
            selected = self.emu.listing.select(query)
            devices = self.state.devices
            chunk = [devices[i] for i in selected[(page - 1) * per_page : page * per_page]]
            body = [self.emu.device_json(d, detail=False, product=found) for d in chunk]
        total = len(selected)
        meta = {"page": page, "per_page": per_page, "total_pages": max(1, -(-total // per_page)), "total": total}
        return json_reply({"devices": body, "customers": [], "meta": meta})

    def device(self, product: Product, device: str) -> Device:
        wanted = urllib.parse.unquote(device)
        found = self.state.find_device(wanted)
        if found is None or found.product_id != product.id:
            raise api_error(404, "Not Found", f"Device {wanted} not found in product {product.slug}")
        return found

    def get_device(self, request: Request, *, product: str, device: str, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.product(product)
            return json_reply(self.emu.device_json(self.device(found, device), detail=True, product=found))

    def edit_device(self, request: Request, product: Product, dev: Device) -> Reply:
        """JSON/form edits (``development``, ``desired_firmware_version``, ``groups``, ``notes``, ``name``,
        ``firmware_updates_forced``, ``quarantined``) -> ``{id, <changed fields>, updated_at}``; ``flash: true``
        sends the device its target now (``rollout``); the field simulator then reconsiders the device (a
        stuck device may now be healed)."""
        body = json_body(request)
        flash = _bool(body.pop("flash", False), "flash")
        body.pop("signal", None)  # particle-api-js sends it; the emulator has no LED to signal
        with self.emu.lock:
            changed = self._apply_edits(product, dev, body)
            if flash:  # "flash now": send the device its target (a locked version) if it can take it
                from fieldsafe.emulator import rollout

                rollout.deliver(self.emu, product, [dev])
        self.emu.field.reconsider(dev)
        return json_reply({"id": dev.id, **changed, "updated_at": iso(utcnow())})

    def _apply_edits(self, product: Product, dev: Device, body: dict[str, Any]) -> dict[str, Any]:
        """Validate every field first, then assign (a bad field changes nothing)."""
        edits: dict[str, Any] = {}
        for key in ("development", "firmware_updates_forced", "quarantined"):
            if key in body:
                edits[key] = _bool(body[key], key)
        if "desired_firmware_version" in body:
            version = _optional_int(body["desired_firmware_version"], "desired_firmware_version")
            if version is not None and version not in product.firmware:
                raise api_error(400, "invalid_request", f"firmware version {version} was not uploaded to this product")
            edits["desired_firmware_version"] = version
        if "groups" in body:
            edits["groups"] = tuple(_names(body["groups"], "groups"))
        if "notes" in body:
            notes = body["notes"]
            if notes is not None and not isinstance(notes, str):
                raise api_error(400, "invalid_request", "notes must be a string")
            edits["notes"] = notes
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str) or not name.strip():
                raise api_error(400, "invalid_request", "name must be a non-empty string")
            edits["name"] = name.strip()
        for group in edits.get("groups", ()):
            product.ensure_group(group)
        for key, value in edits.items():
            setattr(dev, key, value)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in edits.items()}

    def batch_devices(self, request: Request, *, product: str, **_: Any) -> Reply:
        """``{"action": "groups", "devices": [ids], "metadata": {"add": [...], "remove": [...]}}`` -> ``{ok: true}``."""
        body = json_body(request)
        if body.get("action") != "groups":
            raise api_error(400, "invalid_request", 'action must be "groups" (the only batch action emulated)')
        ids = body.get("devices")
        metadata = body.get("metadata") or {}
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not isinstance(metadata, dict):
            raise api_error(400, "invalid_request", "devices must be a list of device ids and metadata an object")
        add = _names(metadata.get("add", []), "metadata.add")
        remove = set(_names(metadata.get("remove", []), "metadata.remove"))
        with self.emu.lock:
            found = self.product(product)
            devices = [self.device(found, i) for i in ids]
            for group in add:
                found.ensure_group(group)
            for dev in devices:
                kept = [g for g in dev.groups if g not in remove]
                dev.groups = tuple(dict.fromkeys(kept + add))
        return json_reply({"ok": True})

    def remove_device(self, request: Request, *, product: str, device: str, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.product(product)
            self.state.remove_device(self.device(found, device))
        return Reply(204, b"")

    # ---- groups -----------------------------------------------------------------------------------

    def _group_json(self, product: Product, group: Group, *, count: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": group.name, "description": group.description, "color": group.color}
        version = product.releases.groups.get(group.name)
        if version is not None:
            body["fw_version"] = version
        if count:
            devices = self.state.devices
            body["device_count"] = sum(
                1 for i in self.emu.listing.members(product.id) if group.name in devices[i].groups
            )
        return body

    def _group(self, product: Product, name: str) -> Group:
        group = product.groups.get(urllib.parse.unquote(name))
        if group is None:
            raise api_error(404, "Not Found", f"Group {urllib.parse.unquote(name)} not found in product {product.slug}")
        return group

    def list_groups(self, request: Request, *, product: str, **_: Any) -> Reply:
        part = (request.arg("name") or "").lower()
        with self.emu.lock:
            found = self.product(product)
            groups = [self._group_json(found, g, count=False) for g in found.groups.values() if part in g.name]
        return json_reply({"groups": groups})

    def get_group(self, request: Request, *, product: str, group: str, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.product(product)
            return json_reply({"group": self._group_json(found, self._group(found, group), count=True)})

    def _group_fields(self, body: dict[str, Any], group: Group) -> Group:
        description = body.get("description", group.description)
        color = body.get("color", group.color)
        if not isinstance(description, str) or not isinstance(color, str):
            raise api_error(400, "invalid_request", "description and color must be strings")
        return Group(group.name, description, color)

    def create_group(self, request: Request, *, product: str, **_: Any) -> Reply:
        body = json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not GROUP_NAME.match(name):
            raise api_error(
                400, "invalid_request", f"name {name!r} must be lower-case letters, digits, '-' and '_' (1-64)"
            )
        with self.emu.lock:
            found = self.product(product)
            if name in found.groups:
                raise api_error(400, "invalid_request", f"group {name} already exists")
            group = found.groups[name] = self._group_fields(body, Group(name, "", DEFAULT_GROUP_COLOR))
            return json_reply({"group": self._group_json(found, group, count=False)}, 201)

    def edit_group(self, request: Request, *, product: str, group: str, **_: Any) -> Reply:
        """Edits description and color; ``name`` renames (devices and releases follow)."""
        body = json_body(request)
        with self.emu.lock:
            found = self.product(product)
            old = self._group(found, group)
            new = self._group_fields(body, old)
            rename = body.get("name", old.name)
            if not isinstance(rename, str) or not GROUP_NAME.match(rename):
                raise api_error(400, "invalid_request", f"name {rename!r} is not a group name")
            if rename != old.name:
                if rename in found.groups:
                    raise api_error(400, "invalid_request", f"group {rename} already exists")
                self._replace_group(found, old.name, rename)
                new = Group(rename, new.description, new.color)
            found.groups = {
                (new.name if k == old.name else k): (new if k == old.name else v) for k, v in found.groups.items()
            }
            return json_reply({"group": self._group_json(found, new, count=True)})

    def delete_group(self, request: Request, *, product: str, group: str, **_: Any) -> Reply:
        """Removes the group from its devices and drops its release."""
        with self.emu.lock:
            found = self.product(product)
            old = self._group(found, group)
            self._replace_group(found, old.name, None)
            del found.groups[old.name]
        return Reply(204, b"")

    def _replace_group(self, product: Product, old: str, new: str | None) -> None:
        """Rename (``new``) or drop (None) a group on the product's devices and in its releases."""
        from fieldsafe.releases import ProductReleases

        devices = self.state.devices
        for i in self.emu.listing.members(product.id):
            dev = devices[i]
            if old in dev.groups:
                renamed = [new if g == old else g for g in dev.groups]
                dev.groups = tuple(g for g in dict.fromkeys(renamed) if g is not None)
        released: dict[str, int] = {}
        for name, version in product.releases.groups.items():
            if name != old:
                released[name] = version
            elif new is not None:
                released[new] = version
        product.releases = ProductReleases(product.releases.product_default, released)
