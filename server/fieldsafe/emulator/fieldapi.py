"""HTTP face of the field simulator: OTA flash, event streams, Device OS versions with files, admin.

Routes (shapes: shared/docs/fleet-api.md §1.7-1.9, §5.4):
- ``PUT /v1/devices/:id`` and ``PUT /v1/products/:p/devices/:id`` with a multipart ``file`` -> ``{id, status:
  "Update started"}`` and the simulated OTA (``field.FieldSimulator.deliver``);
- ``GET /v1/devices/events[/:prefix]``, ``/v1/devices/:id/events[/:prefix]``, ``/v1/products/:p/events[/:prefix]``
  as Server-Sent Events (``events.EventBus``);
- ``GET /v1/device-os/versions/:v?platform_id=`` with ``modules`` and ``base_url``, and the module files at
  ``base_url/filename`` (no token, like a download link);
- admin (loopback, see ``EmulatorServer.admin``): ``GET /__emulator/field[/:device]``, ``POST /__emulator/field/reset``,
  ``GET|POST /__emulator/clock``, ``GET /__emulator/events``.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from fieldsafe.emulator import osfiles
from fieldsafe.emulator.events import Event, both, name_filter
from fieldsafe.emulator.field import FieldError, user_id

if TYPE_CHECKING:
    from fieldsafe.emulator.server import Emulator, Reply, Request

RouteTuple = tuple[str, Any, Any, bool]


def is_flash_request(request: Request) -> bool:
    """A multipart body with a ``file`` part: an OTA flash (otherwise a PUT edits device fields)."""
    return request.headers.get("Content-Type", "").startswith("multipart/form-data")


def routes(emu: Emulator) -> list[RouteTuple]:
    """Routes to put BEFORE the generic ``/v1/devices/:id`` ones (``/v1/devices/events`` would match them)."""
    import re

    api = FieldApi(emu)
    return [
        ("GET", re.compile(r"/v1/devices/events(?:/(?P<prefix>.+))?"), api.my_events, True),
        ("GET", re.compile(r"/v1/devices/(?P<device>[^/]+)/events(?:/(?P<prefix>.+))?"), api.device_events, True),
        ("GET", re.compile(r"/v1/products/(?P<product>[^/]+)/events(?:/(?P<prefix>.+))?"), api.product_events, True),
        ("PUT", re.compile(r"/v1/devices/(?P<device>[^/]+)"), api.put_device, True),
        ("PUT", re.compile(r"/v1/products/(?P<product>[^/]+)/devices/(?P<device>[^/]+)"), api.put_product_device, True),
        ("GET", re.compile(r"/v1/device-os/versions/(?P<version>[^/]+)"), api.device_os_version, True),
        ("GET", re.compile(r"/v1/firmware/device-os/v(?P<release>[^/]+)/(?P<filename>[^/]+)"), api.module_file, False),
    ]


class FieldApi:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    # ---- flashing -------------------------------------------------------------------------------------

    def _owned_device(self, device: str) -> Any:
        from fieldsafe.emulator.server import api_error

        name = urllib.parse.unquote(device)
        found = self.emu.state.find_device(name)
        if found is None or not found.owned:
            raise api_error(404, "Not Found", f"Device {name} not found")
        return found

    def flash_upload(self, request: Request, device: Any) -> Reply:
        """The multipart flash: ``file`` (particle-api-js also sends ``file2``.. for sources, which need a compile)."""
        from fieldsafe.emulator.server import ApiError, api_error, json_reply, parse_multipart

        _, parts = parse_multipart(request.headers.get("Content-Type", ""), request.body)
        binaries = [(n, f, c) for n, f, c in parts if n.startswith("file")]
        if not binaries:
            raise api_error(400, "invalid_request", "send the firmware binary as the multipart part 'file'")
        if len(binaries) > 1 or not binaries[0][2][:1] or _looks_like_source(binaries[0][1]):
            raise api_error(
                400,
                "invalid_request",
                "the emulator flashes compiled binaries only: compile first (POST /v1/binaries) and send one .bin",
            )
        binary = _from_bundle(binaries[0][1], binaries[0][2])
        try:
            self.emu.field.deliver(device, binary, cause="flash", userid=user_id(self.emu.state.username))
        except FieldError as exc:
            raise ApiError(exc.status, exc.body) from None
        return json_reply({"id": device.id, "status": "Update started"})

    def put_device(self, request: Request, *, device: str, **_: Any) -> Reply:
        """``PUT /v1/devices/:id``: a flash (multipart) or a rename / notes edit (JSON or form)."""
        from fieldsafe.emulator.server import _form_fields, json_reply
        from fieldsafe.emulator.state import iso, utcnow

        with self.emu.lock:
            found = self._owned_device(device)
        if is_flash_request(request):
            return self.flash_upload(request, found)
        fields = _form_fields(request)
        body: dict[str, Any] = {"id": found.id}
        with self.emu.lock:
            if "name" in fields:
                found.name = fields["name"]
                body["name"] = found.name
            if "notes" in fields:
                found.notes = fields["notes"]
                body["notes"] = found.notes
        body["updated_at"] = iso(utcnow())
        return json_reply(body)

    def put_product_device(self, request: Request, *, product: str, device: str, **_: Any) -> Reply:
        """``PUT /v1/products/:p/devices/:id``; JSON edits belong to the product routes (fleetemu) when present."""
        from fieldsafe.emulator.server import api_error, json_reply

        with self.emu.lock:
            found_product = self.emu._product(product)
            found = self.emu.state.find_device(urllib.parse.unquote(device))
            if found is None or found.product_id != found_product.id:
                raise api_error(
                    404, "Not Found", f"Device {urllib.parse.unquote(device)} not found in product {product}"
                )
        if is_flash_request(request):
            return self.flash_upload(request, found)
        edit = getattr(self.emu, "edit_product_device", None)
        if edit is not None:
            return edit(request, product=found_product, device=found)
        from fieldsafe.emulator.server import _form_fields
        from fieldsafe.emulator.state import iso, utcnow

        fields = _form_fields(request)
        body: dict[str, Any] = {"id": found.id}
        with self.emu.lock:
            if "development" in fields:
                found.development = fields["development"].lower() == "true"
                body["development"] = found.development
            if "firmware_updates_forced" in fields:
                found.firmware_updates_forced = fields["firmware_updates_forced"].lower() == "true"
                body["firmware_updates_forced"] = found.firmware_updates_forced
        self.emu.field.reconsider(found)
        body["updated_at"] = iso(utcnow())
        return json_reply(body)

    # ---- events ---------------------------------------------------------------------------------------

    def _stream(self, match: Any) -> Reply:
        from fieldsafe.emulator.server import Reply

        bus = self.emu.events
        return Reply(
            200,
            b"",
            "text/event-stream; charset=utf-8",
            {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            stream=lambda out: bus.stream(out, match),
        )

    def my_events(self, request: Request, *, prefix: str | None = None, **_: Any) -> Reply:
        with self.emu.lock:
            mine = {d.id for d in self.emu.state.devices if d.owned}

        def match(e: Event) -> bool:
            return e.coreid in mine

        return self._stream(both(match, name_filter(_unquote(prefix))))

    def device_events(self, request: Request, *, device: str, prefix: str | None = None, **_: Any) -> Reply:
        with self.emu.lock:
            found = self._owned_device(device)
        wanted = found.id
        return self._stream(both(lambda e: e.coreid == wanted, name_filter(_unquote(prefix))))

    def product_events(self, request: Request, *, product: str, prefix: str | None = None, **_: Any) -> Reply:
        with self.emu.lock:
            found = self.emu._product(product)
        wanted = found.id
        return self._stream(both(lambda e: e.product_id == wanted, name_filter(_unquote(prefix))))

    # ---- Device OS versions and files ----------------------------------------------------------------

    def device_os_version(self, request: Request, **match: Any) -> Reply:
        """``:version`` is a semver, ``latest`` or an internal module version (particle-cli's flash uses that)."""
        from fieldsafe.emulator.server import api_error, json_reply

        version = urllib.parse.unquote(match["version"])
        platform_id = self.emu._platform_arg(request, required=False)
        release = osfiles.find_release(version, platform_id)
        if release is None:
            where = f" for platform {platform_id}" if platform_id is not None else ""
            raise api_error(404, "Not Found", f"Device OS version {version}{where} not found")
        body = self.emu._version_entry(release, platform_id)
        body["base_url"] = osfiles.files_base_url(self.emu.base_url, release.version)
        body["modules"] = osfiles.listing(platform_id, release, self.emu.base_url)
        return json_reply(body)

    def module_file(self, request: Request, *, release: str, filename: str, **_: Any) -> Reply:
        from fieldsafe.emulator.server import Reply, api_error

        data = osfiles.lookup_file(urllib.parse.unquote(release), filename)
        if data is None:
            raise api_error(404, "Not Found", f"no Device OS file {filename} in release {release}")
        return Reply(200, data, "application/octet-stream",
                     {"Content-Disposition": f'attachment; filename="{urllib.parse.unquote(filename)}"'})  # fmt: skip


# --------------------------------------------------------------------------------------------------
# admin (called by EmulatorServer.admin for /__emulator/field*, /__emulator/clock, /__emulator/events)


def admin(emu: Emulator, method: str, path: str, body: bytes) -> Reply | None:
    """The field simulator's loopback admin endpoints; None when ``path`` is not one of them."""
    from fieldsafe.emulator.server import json_reply

    sim = emu.field
    if path == "/__emulator/field" and method == "GET":
        return json_reply(sim.ledger())
    if path.startswith("/__emulator/field/") and method == "GET":
        try:
            return json_reply(sim.ledger(urllib.parse.unquote(path.rsplit("/", 1)[1])))
        except KeyError:
            return json_reply({"ok": False, "error": f"no device {path.rsplit('/', 1)[1]}"}, 404)
    if path == "/__emulator/field/reset" and method == "POST":
        sim.reset()
        return json_reply({"ok": True})
    if path == "/__emulator/clock":
        if method == "GET":
            return json_reply({"clock": sim.clock.to_json()})
        if method == "POST":
            return _clock_post(emu, body)
    if path == "/__emulator/events" and method == "GET":
        return json_reply({"events": [dict(e.envelope(), seq=e.seq) for e in emu.events.history()]})
    return None


def _clock_post(emu: Emulator, body: bytes) -> Reply:
    """``{"speed": N|"manual"|"instant"}``, ``{"advance": seconds}``, ``{"settle": true}`` (any combination)."""
    from fieldsafe.emulator.server import json_reply

    try:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict) or not set(data) <= {"speed", "advance", "settle"}:
            raise ValueError('expected an object with "speed", "advance" (seconds) and/or "settle": true')
        if "speed" in data:
            emu.field.set_speed(data["speed"])
        if "advance" in data:
            seconds = data["advance"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise ValueError(f"advance must be a number of seconds >= 0, not {seconds!r}")
            emu.field.advance(float(seconds))
        settled = emu.field.settle() if data.get("settle") else None
    except ValueError as exc:
        return json_reply({"ok": False, "error": "invalid_clock", "error_description": str(exc)}, 400)
    return json_reply({"ok": True, "clock": emu.field.clock.to_json(), "settled_seconds": settled})


def _from_bundle(filename: str, data: bytes) -> bytes:
    """A zip bundle (``particle flash dev bundle.zip``: app + assets) flashes its app; assets are not simulated."""
    import io
    import zipfile

    from fieldsafe.emulator.server import api_error

    if not data.startswith(b"PK\x03\x04"):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            bins = [n for n in bundle.namelist() if n.lower().endswith(".bin") and "/" not in n.strip("/")]
            if len(bins) != 1:
                raise api_error(
                    400, "invalid_request", f"{filename}: a bundle holds exactly one .bin at its top, found {bins}"
                )
            return bundle.read(bins[0])
    except zipfile.BadZipFile:
        raise api_error(400, "invalid_request", f"{filename} is not a valid zip bundle") from None


def _unquote(prefix: str | None) -> str | None:
    return urllib.parse.unquote(prefix) if prefix else None


def _looks_like_source(filename: str) -> bool:
    return filename.lower().endswith((".ino", ".cpp", ".c", ".h", ".hpp", ".properties"))
