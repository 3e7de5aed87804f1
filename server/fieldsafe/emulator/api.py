"""The emulator's HTTP-free plumbing: requests, replies, errors, multipart, arguments and route tables.

Why a module of its own: each feature of the emulator (products, product firmware, OTA, events, the
Device OS versions API...) lives in its own module with a ``routes(emu)`` function returning
:class:`Route` s; they all share these types, and ``server.py`` only wires them to the socket.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, BinaryIO, NamedTuple


class ApiError(Exception):
    """Raised inside a route to answer with ``status`` and a JSON error body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("error_description") or body.get("error"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def api_error(status: int, error: str, description: str | None = None) -> ApiError:
    body: dict[str, Any] = {"ok": False, "error": error}
    if description:
        body["error_description"] = description
    return ApiError(status, body)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Callable[[BinaryIO], None] | None = None  # SSE: writes the body until the stream ends


def json_reply(obj: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(obj).encode())


@dataclass
class RequestRecord:
    """What the emulator saw (for tests): never the token, only whether and how auth was sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    user_agent: str | None
    particle_tool: str | None
    auth_scheme: str | None
    token_in_query: bool
    status: int | None = None
    fault: str | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    token: str | None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
    """Fields and file parts ``(field name, filename, bytes)`` of a multipart body, bytes kept exact."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise api_error(400, "invalid_request", "multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise api_error(400, "invalid_request", "malformed multipart part (no header/body separator)")
        content = content.removesuffix(b"\r\n")
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            raise api_error(400, "invalid_request", "multipart part without a field name")
        if isinstance(filename, str):
            files.append((name, filename, content))
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def int_arg(
    request: Request, name: str, default: int, *, minimum: int, maximum: int | None = None, clamp: bool = False
) -> int:
    """An integer query argument; out of range is a 400 naming the argument, or clamped with ``clamp``."""
    text = request.arg(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise api_error(400, "invalid_request", f"{name} must be an integer, got {text!r}") from None
    if clamp and maximum is not None and value > maximum:
        return maximum
    if value < minimum or (maximum is not None and value > maximum):
        raise api_error(400, "invalid_request", f"{name} must be between {minimum} and {maximum or 'any'}")
    return value


def form_fields(request: Request) -> dict[str, str]:
    """The fields of a JSON, multipart or url-encoded body (values as strings)."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise api_error(400, "invalid_request", "body is not valid JSON") from None
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    if content_type.startswith("multipart/form-data"):
        return parse_multipart(content_type, request.body)[0]
    parsed = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"))
    return {k: v[0] for k, v in parsed.items()}


class Route(NamedTuple):
    """One endpoint: ``pattern`` must match the whole path; its named groups become handler keywords.
    (A tuple: route tables may also hold plain ``(method, pattern, handler, auth)`` tuples.)"""

    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Reply]
    auth: bool = True


def route(method: str, regex: str, handler: Callable[..., Reply], auth: bool = True) -> Route:
    return Route(method, re.compile(regex), handler, auth)


def json_body(request: Request) -> dict[str, Any]:
    """A JSON object body, or the fields of a form body (PUT/POST endpoints accept both, like the cloud)."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("application/json") or (request.body[:1] in (b"{", b"[") and "form" not in content_type):
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise api_error(400, "invalid_request", "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise api_error(400, "invalid_request", "the JSON body must be an object")
        return data
    return dict(form_fields(request))
