"""A local Particle Cloud on loopback: same paths, parameters, status codes and JSON shapes.

Why: fieldsafe's tests, its demo and CI must never contact the real cloud, yet they must exercise
the real client code (and the real particle-cli) end to end. The emulator serves the bundled Device
OS catalog as build targets, a fleet from a JSON state file, compiles with
``fieldsafe.emulator.compiler.compile_sources`` and can misbehave on demand (``faults``).

Only loopback addresses are accepted for binding, and the admin endpoints (``/__emulator/...``)
answer loopback clients only. Uses the stdlib ``ThreadingHTTPServer`` (no extra dependency).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from fieldsafe.cloud import is_loopback_host
from fieldsafe.emulator import fieldapi, firmware, products
from fieldsafe.emulator.api import (  # re-exported: tests and older callers import them from here
    ApiError,
    Reply,
    Request,
    RequestRecord,
    Route,
    api_error,
    form_fields,
    int_arg,
    json_reply,
    parse_multipart,
    route,
)
from fieldsafe.emulator.events import EventBus
from fieldsafe.emulator.faults import FaultError, FaultRule, Faults, make_rule
from fieldsafe.emulator.field import FieldSimulator
from fieldsafe.emulator.listing import ListingIndex
from fieldsafe.emulator.ratelimit import RateLimiter
from fieldsafe.emulator.simclock import DEFAULT_SPEED, SimClock
from fieldsafe.emulator.state import (
    Device,
    EmulatorState,
    Product,
    RateLimit,
    StoredBinary,
    TokenEntry,
    default_state,
    iso,
    load_state,
    utcnow,
)
from fieldsafe.releases import target_for

__all__ = ["ApiError", "Emulator", "EmulatorServer", "Reply", "Request", "api_error", "json_reply", "parse_multipart"]

log = logging.getLogger("fieldsafe.emulator")

COMPILE_FAILED_OUTPUT = "Compiler timed out or encountered an error"
OAUTH_CLIENTS = {"particle": "particle", "particle-cli": "particle-cli", "CLI2": "particle-cli"}
BINARY_LIFETIME = dt.timedelta(hours=1)
BUILD_CACHE_SIZE = 64
MAX_BODY = 64 * 1024 * 1024
WARM_DEVICES = 1000  # products with at least this many devices are sorted at start-up


class CompileResultLike(Protocol):
    ok: bool
    log: str
    size_info: str
    binary: bytes | None


CompilerFn = Callable[[dict[str, bytes], int, str], CompileResultLike]
_form_fields = form_fields  # the old private name (fieldapi uses it)


# --------------------------------------------------------------------------------------------------
# the API


class Emulator:
    """The request-independent logic (routes) over one :class:`EmulatorState`."""

    def __init__(
        self,
        state: EmulatorState,
        tokens: Iterable[str],
        compiler: CompilerFn | None,
        clock: float | str | None = None,
    ) -> None:
        self.state = state
        self.lock = threading.RLock()
        self.events = EventBus()
        state.events = self.events  # type: ignore[attr-defined]  # the hook product routes publish through
        speed = clock if clock is not None else state.clock if state.clock is not None else DEFAULT_SPEED
        self.field = FieldSimulator(state, self.events, self.lock, SimClock(speed))
        self.tokens: dict[str, TokenEntry] = {t.token: t for t in state.tokens}
        for token in tokens:
            self.tokens[token] = TokenEntry(token=token)
        self._compiler = compiler
        self._build_cache: OrderedDict[str, CompileResultLike] = OrderedDict()
        self.base_url = ""
        self.listing = ListingIndex(state)
        self._default_targets: dict[int, str | None] = {}
        self._products = products.ProductApi(self)
        self.routes: list[Route] = [
            *fieldapi.routes(self),  # first: /v1/devices/events must beat /v1/devices/:id
            route("GET", r"/v1/build_targets", self.build_targets, False),
            route("GET", r"/v1/device-os/versions", self.device_os_versions),
            route("GET", r"/v1/devices", self.list_devices),
            route("GET", r"/v1/devices/(?P<device>[^/]+)", self.get_device),
            *products.routes(self),
            *firmware.routes(self),
            route("POST", r"/v1/binaries", self.compile),
            route("GET", r"/v1/binaries/(?P<binary>[^/]+)", self.download_binary),
            route("POST", r"/oauth/token", self.oauth_token, False),
            route("GET", r"/v1/access_tokens/current", self.current_token),
            route("GET", r"/v1/user", self.user),
        ]

    # ---- auth -------------------------------------------------------------------------------------

    def check_token(self, token: str | None) -> TokenEntry:
        if not token:
            raise api_error(401, "invalid_token", "The access token was not found")
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None:
            raise api_error(401, "invalid_token", "The access token provided is invalid.")
        if entry.expired(utcnow()):
            raise api_error(401, "invalid_token", "The access token provided has expired.")
        return entry

    def dispatch(self, request: Request) -> Reply:
        allowed_methods: set[str] = set()
        for method, pattern, handler, needs_auth in self.routes:
            match = pattern.fullmatch(request.path)
            if not match:
                continue
            if method != request.method:
                allowed_methods.add(method)
                continue
            token = self.check_token(request.token) if needs_auth else None
            return handler(request, token=token, **match.groupdict())
        if allowed_methods:
            raise api_error(405, "method_not_allowed", f"use {', '.join(sorted(allowed_methods))}")
        raise api_error(404, "Not Found", f"no such endpoint: {request.method} {request.path}")

    # ---- catalog ----------------------------------------------------------------------------------

    @staticmethod
    def _platform_ids() -> list[int]:
        from fieldsafe import platforms

        return sorted(p.id for p in platforms.all_platforms())

    def build_targets(self, request: Request, **_: Any) -> Reply:
        """Targets from the bundled catalog. ``prereleases`` mirrors the recorded real body: odd
        majors from 3 on (the non-LTS lines) list their platforms there, everything else ``[]``."""
        from fieldsafe import platforms
        from fieldsafe.versions import catalog

        cat = catalog()
        known = set(self._platform_ids())
        targets = []
        for release in sorted(cat.releases(), key=lambda r: r.version, reverse=True):
            ids = sorted(release.platform_ids & known)
            if not ids:
                continue
            version = release.version
            non_lts = version.major >= 3 and version.major % 2 == 1
            targets.append(
                {
                    "platforms": ids,
                    "prereleases": ids if non_lts else [],
                    "firmware_vendor": "Particle",
                    "version": str(version),
                }
            )
        defaults: dict[str, str] = {}
        for platform_id in sorted(known):
            try:
                defaults[str(platform_id)] = str(cat.resolve("default", platform_id).version)
            except LookupError:
                continue
        names = {p.display_name: p.id for p in platforms.all_platforms()}
        return json_reply({"targets": targets, "platforms": names, "default_versions": defaults})

    def _platform_arg(self, request: Request, *, required: bool = True) -> int | None:
        from fieldsafe import platforms

        text = request.arg("platform_id")
        if text is None:
            if required:
                raise api_error(400, "invalid_request", "platform_id is required")
            return None
        try:
            platform_id = int(text)
        except ValueError:
            raise api_error(400, "invalid_request", f"platform_id must be an integer, got {text!r}") from None
        if platforms.find(platform_id) is None:
            raise api_error(400, "invalid_request", f"unknown platform_id {platform_id}")
        return platform_id

    @staticmethod
    def _version_entry(release: Any, platform_id: int | None) -> dict[str, Any]:
        return {
            "version": str(release.version),
            "internal_version": release.module_version,
            "module_version": release.module_version,
            "platform_id": platform_id,
            "release_state": "preview" if release.version.is_prerelease else "released",
            "release_date": None,
        }

    def device_os_versions(self, request: Request, **_: Any) -> Reply:
        """Paged list. GA releases come first (newest first), then previews (newest first), so that
        particle-cli's ``per_page=100`` validation window holds every GA release of a platform."""
        from fieldsafe.versions import catalog

        platform_id = self._platform_arg(request, required=False)
        page = int_arg(request, "page", 1, minimum=1)
        per_page = int_arg(request, "per_page", 25, minimum=1, maximum=1000)
        releases = catalog().releases(platform_id)
        internal = request.arg("internal_version")
        if internal is not None:
            releases = [r for r in releases if str(r.module_version) == internal]
        ordered = sorted(releases, key=lambda r: (r.version.is_prerelease, _desc(r.version)))
        total_pages = max(1, -(-len(ordered) // per_page))
        chunk = ordered[(page - 1) * per_page : page * per_page]
        meta = {"page": page, "per_page": per_page, "total_pages": total_pages, "total": len(ordered)}
        return json_reply({"versions": [self._version_entry(r, platform_id) for r in chunk], "meta": meta})

    # ---- devices and products --------------------------------------------------------------------

    def _product(self, product: str) -> Product:
        """The product ``:idOrSlug`` names, or a 404 (used by the field simulator's routes too)."""
        return self._products.product(product)

    def edit_product_device(self, request: Request, *, product: Product, device: Device) -> Reply:
        """The JSON/form edit of ``PUT /v1/products/:p/devices/:id`` (the field API routes the flashes)."""
        return self._products.edit_device(request, product, device)

    def default_build_target(self, platform_id: int) -> str | None:
        """The platform's default release (latest LTS, else latest), cached: listings call it per device."""
        if platform_id not in self._default_targets:
            from fieldsafe.versions import catalog

            try:
                self._default_targets[platform_id] = str(catalog().resolve("default", platform_id).version)
            except LookupError:
                self._default_targets[platform_id] = None
        return self._default_targets[platform_id]

    def device_json(self, device: Device, *, detail: bool, product: Product | None = None) -> dict[str, Any]:
        """The API object of a device; product devices get ``targeted_firmware_release_version`` from the
        release precedence (``fieldsafe.releases.target_for``)."""
        targeted = None
        if device.in_product:
            product = product or self.state.product_by_id(device.product_id)
            if product is not None:
                targeted = target_for(device, product.releases).version
        return device.to_api(
            detail=detail, default_build_target=self.default_build_target(device.platform_id), targeted=targeted
        )

    def list_devices(self, request: Request, **_: Any) -> Reply:
        with self.lock:
            devices = [self.device_json(d, detail=False) for d in self.state.devices if d.owned]
        return json_reply(devices)

    def get_device(self, request: Request, *, device: str, **_: Any) -> Reply:
        with self.lock:
            found = self.state.find_device(urllib.parse.unquote(device))
            if found is None or not found.owned:
                raise api_error(404, "Not Found", f"Device {urllib.parse.unquote(device)} not found")
            return json_reply(self.device_json(found, detail=True))

    # ---- compile and binaries ---------------------------------------------------------------------

    def compiler(self) -> CompilerFn:
        if self._compiler is None:
            from fieldsafe.emulator.compiler import compile_sources

            self._compiler = compile_sources
        return self._compiler

    def build(self, files: dict[str, bytes], platform_id: int, release: str) -> CompileResultLike:
        """Run the compiler, reusing the result of an identical earlier upload (a build cache).

        Why: the emulator's compiler is deterministic, and g++ dominates a compile's time; caching identical
        uploads keeps repeated CI and editor compiles fast, like the cloud's own build servers would.
        """
        digest = hashlib.sha256(f"{platform_id}\0{release}\0".encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        key = digest.hexdigest()
        with self.lock:
            hit = self._build_cache.get(key)
            if hit is not None:
                self._build_cache.move_to_end(key)
                return hit
        result = self.compiler()(files, platform_id, release)
        with self.lock:
            self._build_cache[key] = result
            while len(self._build_cache) > BUILD_CACHE_SIZE:
                self._build_cache.popitem(last=False)
        return result

    def compile(self, request: Request, **_: Any) -> Reply:
        from fieldsafe import platforms
        from fieldsafe.versions import catalog

        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise api_error(400, "invalid_request", "POST /v1/binaries needs multipart/form-data with file parts")
        fields, parts = parse_multipart(content_type, request.body)
        files = {filename: content for name, filename, content in parts if name.startswith("file")}
        if not files:
            raise api_error(400, "invalid_request", "No source files were uploaded (parts file, file2, ...)")
        try:
            platform_id = int(fields.get("platform_id", ""))
        except ValueError:
            raise api_error(400, "invalid_request", "platform_id is required and must be an integer") from None
        platform = platforms.find(platform_id)
        if platform is None:
            raise api_error(400, "invalid_request", f"unknown platform_id {platform_id}")
        wanted = fields.get("build_target_version")
        cat = catalog()
        if wanted:
            release = cat.release(wanted)
            if release is None or platform_id not in release.platform_ids:
                near = (
                    ", ".join(str(r.version) for r in cat.nearest(wanted, platform_id))
                    if hasattr(cat, "nearest")
                    else ""
                )
                hint = f"; nearest for {platform.display_name}: {near}" if near else ""
                raise api_error(
                    400,
                    "invalid_build_target",
                    f"build_target_version {wanted} is not available for {platform.display_name} ({platform_id}){hint}",
                )
        elif fields.get("latest") == "true":
            release = cat.latest(platform_id)
            if release is None:
                raise api_error(400, "invalid_build_target", f"no release available for platform {platform_id}")
        else:
            raise api_error(400, "invalid_request", "send build_target_version or latest=true")
        try:
            result = self.build(files, platform_id, str(release.version))
        except ValueError as exc:  # e.g. an uploaded path that climbs out of the project
            raise api_error(400, "invalid_request", str(exc)) from None
        if not result.ok or not result.binary:
            # HTTP 200 with ok:false: the real status is unverified (particle-domain.md section 5.3), and this is
            # the only one with which the real particle-cli prints the build log (a 400 becomes its "not logged
            # in" error). Our client accepts both forms.
            return json_reply({"ok": False, "code": 200, "output": COMPILE_FAILED_OUTPUT, "errors": [result.log]}, 200)
        binary_id = secrets.token_hex(12)
        expires = utcnow() + BINARY_LIFETIME
        with self.lock:
            self.state.binaries[binary_id] = StoredBinary(bytes(result.binary), expires, platform_id)
        return json_reply(
            {
                "ok": True,
                "binary_id": binary_id,
                "binary_url": f"/v1/binaries/{binary_id}",
                "expires_at": iso(expires),
                "sizeInfo": result.size_info,
            }
        )

    def download_binary(self, request: Request, *, binary: str, **_: Any) -> Reply:
        with self.lock:
            stored = self.state.binaries.get(binary)
        if stored is None or stored.expires_at <= utcnow():
            raise api_error(404, "Not Found", f"Binary {binary} not found or expired")
        return Reply(200, stored.data, "application/octet-stream",
                     {"Content-Disposition": f'attachment; filename="firmware_{binary}.bin"'})  # fmt: skip

    # ---- account ----------------------------------------------------------------------------------

    def oauth_token(self, request: Request, **_: Any) -> Reply:
        """Password grant with HTTP Basic client credentials (``particle:particle`` for a developer)."""
        client = _basic_auth(request.headers.get("Authorization"))
        form = form_fields(request)
        client = client or (form.get("client_id", ""), form.get("client_secret", ""))
        if OAUTH_CLIENTS.get(client[0]) != client[1]:
            raise api_error(401, "invalid_client", "Client authentication failed")
        if form.get("grant_type") != "password":
            raise api_error(400, "unsupported_grant_type", "only grant_type=password is supported by the emulator")
        state = self.state
        if state.password is None or form.get("username") != state.username or form.get("password") != state.password:
            raise api_error(400, "invalid_grant", "User credentials are invalid")
        try:
            expires_in = int(form.get("expires_in", "7776000"))
        except ValueError:
            raise api_error(400, "invalid_request", "expires_in must be an integer number of seconds") from None
        token = secrets.token_hex(20)
        expires = utcnow() + dt.timedelta(seconds=expires_in) if expires_in > 0 else None
        with self.lock:
            self.tokens[token] = TokenEntry(token=token, expires_at=expires, client_id=client[0])
        return json_reply(
            {
                "token_type": "bearer",
                "access_token": token,
                "expires_in": expires_in,
                "refresh_token": secrets.token_hex(20),
            }
        )

    def current_token(self, request: Request, *, token: TokenEntry, **_: Any) -> Reply:
        return json_reply({"expires_at": iso(token.expires_at), "client_id": token.client_id, "scopes": [], "orgs": []})

    def user(self, request: Request, **_: Any) -> Reply:
        return json_reply(
            {"username": self.state.username, "subscription_ids": [], "account_info": {}, "mfa": {"enabled": False}}
        )


def _desc(version: Any) -> Any:
    """Sort key for newest-first inside a ``sorted`` that is otherwise ascending."""
    return _Reverse(version)


class _Reverse:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    import base64
    import binascii

    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "fieldsafe-emulator"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        """The request body, with or without Content-Length (node-fetch streams multipart as chunked)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        size = int(length)
        if size > MAX_BODY:
            raise api_error(413, "payload_too_large", f"request body over {MAX_BODY} bytes")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise api_error(400, "invalid_request", "malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise api_error(413, "payload_too_large", f"request body over {MAX_BODY} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # CRLF after each chunk

    def _handle(self) -> None:
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        auth = self.headers.get("Authorization") or ""
        scheme, _, credential = auth.partition(" ")
        token = credential.strip() if scheme.lower() == "bearer" else None
        if token is None and query.get("access_token"):
            token = query["access_token"][0]
        record = RequestRecord(
            method=self.command,
            path=split.path,
            query={k: v for k, v in query.items() if k != "access_token"},
            user_agent=self.headers.get("User-Agent"),
            particle_tool=self.headers.get("X-Particle-Tool"),
            auth_scheme=scheme or None,
            token_in_query="access_token" in query,
        )
        owner.record(record)
        try:
            body = self._read_body()
            if split.path.startswith("/__emulator/"):
                reply = owner.admin(self.command, split.path, body, self.client_address[0])
                self._send(reply, record)
                return
            retry = owner.limiter.check(self.client_address[0]) if owner.limiter is not None else None
            if retry is not None:
                record.fault = "rate_limited"
                self._send(_rate_limited(retry), record)
                return
            rule = owner.faults.take(self.command, split.path)
            record.fault = rule.kind if rule else None
            if rule is not None and rule.kind == "drop":
                self.close_connection = True
                record.status = 0
                return
            if rule is not None and rule.kind == "latency":
                time.sleep(rule.delay)
                rule = None
            if rule is not None and rule.kind in ("error", "rate_limit", "token_expired"):
                self._send(_fault_reply(rule), record)
                return
            if token is None and body and self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                token = form_fields(Request(self.command, split.path, query, self.headers, body, None)).get(
                    "access_token"
                )
            request = Request(self.command, split.path, query, self.headers, body, token)
            reply = owner.api.dispatch(request)
        except ApiError as exc:
            reply = Reply(exc.status, json.dumps(exc.body).encode(), headers=exc.headers)
            rule = None
        except Exception as exc:  # a bug in the emulator must still answer, as a 500 with the reason
            log.exception("emulator error on %s %s", self.command, split.path)
            reply = json_reply({"ok": False, "error": "internal_error", "error_description": repr(exc)}, 500)
            rule = None
        if rule is not None and rule.kind == "malformed_json":
            reply = Reply(200, b'{"ok": true, "devices": [{"id": ', "application/json")
        if rule is not None and rule.kind == "truncate":
            self._send(reply, record, truncate=True)
            return
        self._send(reply, record)

    def _send(self, reply: Reply, record: RequestRecord, *, truncate: bool = False) -> None:
        record.status = reply.status
        if reply.stream is not None:
            self._send_stream(reply)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if truncate:
            self.close_connection = True

    def _send_stream(self, reply: Reply) -> None:
        """An open-ended body (SSE): no Content-Length, the connection closes when the stream ends."""
        assert reply.stream is not None
        self.close_connection = True
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        reply.stream(self.wfile)


def _rate_limited(retry_after: int) -> Reply:
    body = {"ok": False, "error": "Too many requests", "error_description": "API rate limit exceeded"}
    return Reply(429, json.dumps(body).encode(), headers={"Retry-After": str(retry_after)})


def _fault_reply(rule: FaultRule) -> Reply:
    if rule.kind == "rate_limit":
        seconds = rule.retry_after
        retry = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
        body = {"ok": False, "error": "Too many requests", "error_description": "API rate limit exceeded"}
        return Reply(429, json.dumps(body).encode(), headers={"Retry-After": retry})
    if rule.kind == "token_expired":
        body = {"ok": False, "error": "invalid_token", "error_description": "The access token provided has expired."}
        return Reply(401, json.dumps(body).encode())
    status = rule.status
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return Reply(status, json.dumps({"ok": False, "error": phrase, "error_description": "injected fault"}).encode())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: EmulatorServer


class EmulatorServer:
    """The emulator as an object: ``with EmulatorServer(state, ["tok"]) as emu: ... emu.url``.

    ``state`` is an :class:`EmulatorState`, a path to a state file, or ``None`` for the bundled
    default fleet. ``tokens`` are accepted in addition to the state file's. ``compiler`` replaces
    ``fieldsafe.emulator.compiler.compile_sources`` (tests inject a fake one). ``rate_limit`` (or the
    state file's ``rate_limit``) enables the per-client request budget (429 with ``Retry-After``).
    """

    def __init__(
        self,
        state: EmulatorState | str | Path | None = None,
        tokens: Iterable[str] = (),
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        compiler: CompilerFn | None = None,
        clock: float | str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the emulator listens on loopback only, not {host!r}")
        if state is None:
            state = default_state()
        elif not isinstance(state, EmulatorState):
            state = load_state(state)
        self.state = state
        self.faults = Faults()
        for rule in state.faults:
            self.faults.add(rule)
        self.api = Emulator(state, tokens, compiler, clock)
        limit = rate_limit or state.rate_limit
        self.limiter: RateLimiter | None = RateLimiter(limit) if limit is not None else None
        self.requests: deque[RequestRecord] = deque(maxlen=1000)
        self._requests_lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self.api.base_url = self.url

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{self.port}"

    def add_token(self, token: str, expires_at: dt.datetime | None = None) -> None:
        with self.api.lock:
            self.api.tokens[token] = TokenEntry(token=token, expires_at=expires_at)

    def record(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self.requests.append(record)

    def seen(self, path_glob: str = "*", method: str | None = None) -> list[RequestRecord]:
        """Requests received so far whose path matches ``path_glob`` (for assertions in tests)."""
        import fnmatch

        with self._requests_lock:
            return [
                r
                for r in self.requests
                if fnmatch.fnmatchcase(r.path, path_glob) and (method is None or r.method == method)
            ]

    def admin(self, method: str, path: str, body: bytes, client: str) -> Reply:
        """``/__emulator/faults`` (GET list, POST add, DELETE clear), ``/__emulator/requests``, ``/__emulator/health``."""
        if not is_loopback_host(client):
            return json_reply({"ok": False, "error": "admin endpoints answer loopback clients only"}, 403)
        if path == "/__emulator/health":
            return json_reply({"ok": True, "url": self.url})
        if path == "/__emulator/handshake" and method == "POST":
            return self._handshake(body)
        field_reply = fieldapi.admin(self.api, method, path, body)
        if field_reply is not None:
            return field_reply
        if path == "/__emulator/faults":
            if method == "GET":
                return json_reply({"faults": [r.to_json() for r in self.faults.rules()]})
            if method == "DELETE":
                self.faults.clear()
                return json_reply({"ok": True})
            if method == "POST":
                try:
                    data = json.loads(body or b"null")
                    rules = [
                        make_rule(d, f"faults[{i}]") for i, d in enumerate(data if isinstance(data, list) else [data])
                    ]
                except (ValueError, FaultError) as exc:
                    return json_reply({"ok": False, "error": "invalid_fault", "error_description": str(exc)}, 400)
                for rule in rules:
                    self.faults.add(rule)
                return json_reply({"ok": True, "faults": [r.to_json() for r in rules]})
        if path == "/__emulator/requests" and method == "GET":
            with self._requests_lock:
                return json_reply({"requests": [r.__dict__ for r in self.requests]})
        return json_reply({"ok": False, "error": f"no admin endpoint {method} {path}"}, 404)

    def _handshake(self, body: bytes) -> Reply:
        """Devices connect now and get their targeted product firmware (``rollout.handshake``)."""
        from fieldsafe.emulator import rollout

        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            return json_reply({"ok": False, "error": "invalid_request", "error_description": "send a JSON object"}, 400)
        try:
            result = rollout.handshake(self.api, data)
        except ApiError as exc:
            return Reply(exc.status, json.dumps(exc.body).encode())
        return json_reply({"ok": True, **result.to_json()})

    def start(self) -> EmulatorServer:
        """Serve in a background daemon thread; returns self (``url`` is valid immediately)."""
        self.api.field.start()
        if self._thread is None:
            self._warm_listing()
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fieldsafe-emulator", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another thread or a signal."""
        self._warm_listing()
        self.api.field.start()
        try:
            self._httpd.serve_forever()
        finally:
            self.api.events.close()
            self.api.field.stop()

    def _warm_listing(self) -> None:
        """Sort big products before the first request (a 100k-device sort takes a few hundred ms)."""
        counts: dict[int, int] = {}
        for device in self.state.devices:
            counts[device.product_id] = counts.get(device.product_id, 0) + 1
        self.api.listing.warm([p.id for p in self.state.products if counts.get(p.id, 0) >= WARM_DEVICES])

    def stop(self) -> None:
        self.api.events.close()  # ends every open event stream
        self.api.field.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
