"""Product firmware: upload, list, get, edit, release and impact (shared docs fleet-api.md §1.5-1.6).

Why its own module: uploads are validated as real modules (``fieldsafe.modules``: a user part for the
product's platform whose PRODUCT_VERSION is the form's ``version``), and a release changes who gets
what through the ONE precedence in ``fieldsafe.releases``, which the impact preview also answers with.
Events ``particle/firmware/create`` and ``particle/firmware/release`` go to ``state.events``.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import TYPE_CHECKING, Any

from fieldsafe.emulator import rollout
from fieldsafe.emulator.api import (
    ApiError,
    Reply,
    Request,
    Route,
    api_error,
    json_body,
    json_reply,
    parse_multipart,
    route,
)
from fieldsafe.emulator.products import ProductApi, _bool, _names
from fieldsafe.emulator.state import Product, ProductFirmware, iso, utcnow
from fieldsafe.releases import reach

if TYPE_CHECKING:
    from fieldsafe.emulator.server import Emulator

P = r"/v1/products/(?P<product>[^/]+)"
NOT_RUNNING = "Firmware must be running on at least one device before release"


def routes(emu: Emulator) -> list[Route]:
    api = FirmwareApi(emu)
    return [
        route("GET", P + r"/firmware", api.list_firmware),
        route("POST", P + r"/firmware", api.upload),
        route("PUT", P + r"/firmware/release", api.release),
        route("GET", P + r"/firmware/(?P<version>\d+)", api.get_firmware),
        route("PUT", P + r"/firmware/(?P<version>\d+)", api.edit_firmware),
        route("DELETE", P + r"/firmware/(?P<version>\d+)", api.delete_firmware),
        route("GET", P + r"/firmware/(?P<version>\d+)/binary", api.download),
        route("GET", P + r"/impact", api.impact),
    ]


def _version(value: Any, name: str = "version") -> int:
    if isinstance(value, bool):
        raise api_error(400, "invalid_request", f"{name} must be a positive integer, got {value!r}")
    try:
        version = int(value)
    except (TypeError, ValueError):
        raise api_error(400, "invalid_request", f"{name} must be a positive integer, got {value!r}") from None
    if not 0 < version <= 0xFFFE:
        raise api_error(400, "invalid_request", f"{name} must be from 1 to 65534, got {version}")
    return version


def _user_part(data: bytes, filename: str) -> tuple[bytes, Any]:
    """The user-part module of an upload (a .bin, or a zip bundle holding one) and its parsed header."""
    from fieldsafe import modules

    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                bins = [n for n in bundle.namelist() if n.endswith(".bin")]
                for name in bins:
                    candidate = bundle.read(name)
                    try:
                        info = modules.parse_module(candidate)
                    except modules.ModuleParseError:
                        continue
                    if info.module_function == modules.FUNCTION_USER_PART:
                        return candidate, info
        except zipfile.BadZipFile:
            raise api_error(400, "invalid_request", f"{filename} is not a valid zip bundle") from None
        raise api_error(400, "invalid_request", f"the bundle {filename} holds no application (user part) binary")
    try:
        info = modules.parse_module(data)
    except modules.ModuleParseError as exc:
        raise api_error(400, "invalid_request", f"{filename} is not a Particle firmware binary: {exc.reason}") from None
    if info.module_function != modules.FUNCTION_USER_PART:
        raise api_error(
            400, "invalid_request", f"{filename} is a {info.function_name} module, not application firmware (user part)"
        )
    return data, info


class FirmwareApi:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.state = emu.state
        self.products = ProductApi(emu)

    def _json(
        self, product: Product, firmware: ProductFirmware, *, counts: dict[Any, int] | None = None
    ) -> dict[str, Any]:
        releases = product.releases
        groups = sorted(g for g, v in releases.groups.items() if v == firmware.version)
        if counts is None:
            counts = self.emu.listing.count_by(product.id, "firmware_version")
        return {
            "_id": firmware.id,
            "version": firmware.version,
            "title": firmware.title,
            "description": firmware.description,
            "name": firmware.filename,
            "size": firmware.size,
            "product_default": releases.product_default == firmware.version,
            "current": releases.product_default == firmware.version,
            "mandatory": firmware.mandatory,
            "uploaded_on": iso(firmware.uploaded_on),
            "product_id": product.id,
            "uploaded_by": {"username": firmware.uploaded_by},
            "groups": groups,
            "device_count": counts.get(firmware.version, 0),
        }

    def _firmware(self, product: Product, version: str | int) -> ProductFirmware:
        found = product.firmware.get(int(version))
        if found is None:
            raise api_error(404, "Not Found", f"Firmware version {version} not found in product {product.slug}")
        return found

    def list_firmware(self, request: Request, *, product: str, **_: Any) -> Reply:
        """A bare JSON array, newest version first."""
        with self.emu.lock:
            found = self.products.product(product)
            counts = self.emu.listing.count_by(found.id, "firmware_version")
            body = [self._json(found, f, counts=counts) for _, f in sorted(found.firmware.items(), reverse=True)]
        return json_reply(body)

    def get_firmware(self, request: Request, *, product: str, version: str, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.products.product(product)
            return json_reply(self._json(found, self._firmware(found, version)))

    def upload(self, request: Request, *, product: str, **_: Any) -> Reply:
        """Multipart ``file`` (or ``binary``), ``version``, ``title``, ``description``, ``mandatory`` -> 201."""
        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise api_error(
                400, "invalid_request", "upload product firmware as multipart/form-data (file, version, title)"
            )
        fields, parts = parse_multipart(content_type, request.body)
        files = [(n, f, c) for n, f, c in parts if n in ("file", "binary")]
        if not files:
            raise api_error(400, "invalid_request", "no firmware: send the binary as the multipart field 'file'")
        if "version" not in fields:
            raise api_error(400, "invalid_request", "version is required (the binary's PRODUCT_VERSION)")
        version = _version(fields["version"])
        title = (fields.get("title") or "").strip()
        if not title:
            raise api_error(400, "invalid_request", "title is required")
        _, filename, data = files[0]
        module, info = _user_part(data, filename or "the upload")
        with self.emu.lock:
            found = self.products.product(product)
            self._check_module(found, info, version, filename or "the upload")
            if version in found.firmware:
                raise api_error(400, "invalid_request", "Firmware version already exists")
            firmware = ProductFirmware(
                version=version,
                title=title,
                description=fields.get("description", ""),
                size=len(module),
                uploaded_on=utcnow(),
                filename=filename or "firmware.bin",
                uploaded_by=self.state.username,
                data=module,
                mandatory=_bool(fields.get("mandatory", "false"), "mandatory"),
                id=secrets.token_hex(12),
            )
            found.firmware[version] = firmware
            body = self._json(found, firmware)
        self.state.events.publish(
            "particle/firmware/create", json.dumps({"version": str(version)}), coreid="api", product_id=found.id
        )
        return json_reply(body, 201)

    @staticmethod
    def _check_module(product: Product, info: Any, version: int, filename: str) -> None:
        if info.platform_id != product.platform_id:
            raise api_error(
                400,
                "invalid_request",
                f"{filename} is built for platform {info.platform_id}; product {product.slug} is for platform "
                f"{product.platform_id}",
            )
        binary_version = info.product_version if info.product_version not in (None, 0xFFFF) else None
        if binary_version is None:
            raise api_error(
                400, "invalid_request", f"{filename} has no PRODUCT_VERSION; add PRODUCT_VERSION({version}) and rebuild"
            )
        if binary_version != version:
            raise api_error(
                400,
                "invalid_request",
                f"version {version} does not match the binary's PRODUCT_VERSION ({binary_version})",
            )

    def edit_firmware(self, request: Request, *, product: str, version: str, **_: Any) -> Reply:
        """Edits ``title``, ``description``, ``mandatory`` (the release is ``PUT .../firmware/release``)."""
        body = json_body(request)
        with self.emu.lock:
            found = self.products.product(product)
            firmware = self._firmware(found, version)
            for key in ("title", "description"):
                if key in body:
                    if not isinstance(body[key], str):
                        raise api_error(400, "invalid_request", f"{key} must be a string")
                    setattr(firmware, key, body[key])
            if "mandatory" in body:
                firmware.mandatory = _bool(body["mandatory"], "mandatory")
            return json_reply(self._json(found, firmware))

    def delete_firmware(self, request: Request, *, product: str, version: str, **_: Any) -> Reply:
        """Only a version that was never released can be deleted (204)."""
        with self.emu.lock:
            found = self.products.product(product)
            firmware = self._firmware(found, version)
            if firmware.released_at is not None or firmware.version in found.releases.versions():
                raise api_error(
                    400, "invalid_request", f"firmware version {version} has been released and cannot be deleted"
                )
            del found.firmware[firmware.version]
        return Reply(204, b"")

    def download(self, request: Request, *, product: str, version: str, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.products.product(product)
            firmware = self._firmware(found, version)
        if firmware.data is None:
            raise api_error(404, "Not Found", f"firmware version {version} was generated without a binary")
        headers = {"Content-Disposition": f'attachment; filename="{firmware.filename}"'}
        return Reply(200, firmware.data, "application/octet-stream", headers)

    def _release_body(self, body: dict[str, Any], product: Product) -> tuple[int, bool, list[str], bool]:
        if "version" not in body:
            raise api_error(400, "invalid_request", "version is required")
        version = _version(body["version"])
        product_default = _bool(body.get("product_default", False), "product_default")
        groups = _names(body.get("groups") or [], "groups")
        intelligent = _bool(body.get("intelligent", False), "intelligent")
        self._firmware(product, version)
        missing = [g for g in groups if g not in product.groups]
        if missing:
            raise api_error(
                400, "invalid_request", f"group(s) {', '.join(missing)} do not exist in product {product.slug}"
            )
        return version, product_default, groups, intelligent

    def release(self, request: Request, *, product: str, **_: Any) -> Reply:
        """``{version, product_default, groups, intelligent}``: the version's whole targeting (releases.py).

        Refused (400) the first time a version is released when no product device runs it yet, the
        cloud's only documented release gate, unless the product opts out in the state file.
        """
        body = json_body(request)
        with self.emu.lock:
            found = self.products.product(product)
            version, product_default, groups, intelligent = self._release_body(body, found)
            firmware = self._firmware(found, version)
            first = firmware.released_at is None and version not in found.releases.versions()
            releasing = product_default or bool(groups)
            gated = first and releasing and found.require_running_before_release
            if gated and not self.emu.listing.count_by(found.id, "firmware_version").get(version):
                raise ApiError(400, {"ok": False, "error": NOT_RUNNING})
            members = rollout.product_devices(self.emu, found)
            reached = reach(members, found.releases, version, product_default=product_default, groups=groups)
            found.releases = found.releases.released(version, product_default=product_default, groups=groups)
            pushed = [members[i] for i in reached.indexes] if intelligent else []
            now = utcnow()
            if releasing:
                firmware.released_at = now
            firmware.intelligent = intelligent
            reply = {
                "updated_at": iso(now),
                "version": version,
                "title": firmware.title,
                "size": firmware.size,
                "product_default": product_default,
                "uploaded_on": iso(firmware.uploaded_on),
                "product_id": found.id,
                "uploaded_by": {"username": firmware.uploaded_by},
                "groups": groups,
                "intelligent": intelligent,
            }
        self.state.events.publish(
            "particle/firmware/release",
            json.dumps({"immediate": intelligent, "version": version}),
            coreid="api",
            product_id=found.id,
        )
        if pushed:  # intelligent: sent now to the reached devices that are online; standard: at their next handshake
            rollout.deliver(self.emu, found, pushed)
        return json_reply(reply)

    def impact(self, request: Request, *, product: str, **_: Any) -> Reply:
        """``?action=edit_groups_for_firmware&firmware_version=N&groups=a,b&product_default=bool`` ->
        ``{devices: {firmware_update: {total, by_version: [{version, total}]}}}`` (``releases.reach``)."""
        action = request.arg("action")
        if action != "edit_groups_for_firmware":
            raise api_error(400, "invalid_request", "action must be edit_groups_for_firmware")
        body = {
            "version": request.arg("firmware_version"),
            "product_default": request.arg("product_default") or "false",
            "groups": request.arg("groups") or "",
        }
        if body["version"] is None:
            raise api_error(400, "invalid_request", "firmware_version is required")
        with self.emu.lock:
            found = self.products.product(product)
            version, product_default, groups, _ = self._release_body(body, found)
            devices = self.state.devices
            members = [devices[i] for i in self.emu.listing.members(found.id)]
            result = reach(members, found.releases, version, product_default=product_default, groups=groups)
        by_version = [{"version": v, "total": n} for v, n in result.by_version]
        return json_reply({"devices": {"firmware_update": {"total": result.total, "by_version": by_version}}})
