"""Shared helpers for the field simulator tests: app binaries, small fleets, flashing, ledgers, SSE reading."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests

from fieldsafe import modules, platforms
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.state import EmulatorState, parse_state
from fieldsafe.versions import catalog

TOKEN = "field-token-1b2c"
PRODUCT = 4242


def app_for(platform_id: int, release: str, *, size: int = 9000, product_version: int | None = None) -> bytes:
    """A user part built for ``release`` (dependency = that release's system module version), like a real compile."""
    platform = platforms.get(platform_id)
    function, index = platform.user_part_dependency(release)
    version = catalog().module_version(release)
    assert version is not None, release
    payload = bytes((i * 7) & 0xFF for i in range(size))
    total = modules.PREFIX_SIZE + len(payload) + modules.PRODUCT_SUFFIX_SIZE + modules.CRC_SIZE
    return modules.build_user_module(
        platform_id=platform_id,
        module_index=platform.user_part_index(release),
        dependency=modules.Dependency(function, index, version),
        start_address=platform.user_part_start_address(release, total),
        payload=payload,
        product_id=PRODUCT if product_version is not None else None,
        product_version=product_version,
    )


def device(did: int, platform_id: int, release: str | None, **extra: Any) -> dict[str, Any]:
    body = {
        "id": f"e00fce68{did:016x}",
        "name": f"dev-{did}",
        "platform_id": platform_id,
        "system_firmware_version": release,
        "online": True,
        "last_heard_ago": "1m",
    }
    body.update(extra)
    return body


def fleet(*devices: dict[str, Any], clock: Any = "instant", product_platform: int = 13) -> EmulatorState:
    data: dict[str, Any] = {
        "tokens": [TOKEN],
        "products": [{"id": PRODUCT, "slug": "field-test", "name": "Field test", "platform_id": product_platform}],
        "devices": list(devices),
    }
    if clock is not None:
        data["field"] = {"clock": clock}
    return parse_state(data, "<field test>")


def flash(emu: EmulatorServer, device_id: str, binary: bytes, product: int | None = None) -> requests.Response:
    path = f"/v1/products/{product}/devices/{device_id}" if product else f"/v1/devices/{device_id}"
    return requests.put(
        emu.url + path,
        headers={"Authorization": f"Bearer {TOKEN}"},
        files={"file": ("firmware.bin", binary, "application/octet-stream")},
        data={"latest": "true"},
        timeout=10,
    )


def admin(emu: EmulatorServer, path: str, body: Any = None) -> dict[str, Any]:
    if body is None:
        response = requests.get(emu.url + path, timeout=10)
    else:
        response = requests.post(emu.url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ledger(emu: EmulatorServer, device_id: str) -> dict[str, Any]:
    return admin(emu, f"/__emulator/field/{device_id}")["device"]


def settle(emu: EmulatorServer) -> None:
    admin(emu, "/__emulator/clock", {"settle": True})


def get(emu: EmulatorServer, path: str, **params: Any) -> requests.Response:
    return requests.get(emu.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, params=params, timeout=10)


class EventReader:
    """Reads an SSE stream on a raw socket in a thread; ``events`` fills with ``(name, envelope)`` pairs."""

    def __init__(self, emu: EmulatorServer, path: str, token: str = TOKEN) -> None:
        url = urllib.parse.urlsplit(emu.url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=10)
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.raw = b""
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.ok = threading.Event()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.ok.wait(5), f"no ':ok' on {path}: {self.raw[:300]!r}"

    @property
    def status_line(self) -> str:
        return self.raw.split(b"\r\n", 1)[0].decode()

    def _read(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.raw += chunk
                _head, sep, body = self.raw.partition(b"\r\n\r\n")
                if sep and body.startswith(b":ok"):
                    self.ok.set()
                self._parse(body)
        except OSError:
            pass
        finally:
            self.closed.set()

    def _parse(self, body: bytes) -> None:
        events = []
        for block in body.decode("utf-8", "replace").split("\n\n"):
            lines = block.split("\n")
            name = next((line[7:] for line in lines if line.startswith("event: ")), None)
            data = next((line[6:] for line in lines if line.startswith("data: ")), None)
            if name and data:
                try:
                    events.append((name, json.loads(data)))
                except ValueError:
                    continue  # a block still arriving
        self.events = events

    def wait_for(self, predicate: Callable[[list[tuple[str, dict[str, Any]]]], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.events):
                return True
            time.sleep(0.02)
        return predicate(self.events)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
