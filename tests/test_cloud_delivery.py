"""The cloud client's delivery calls: server-sent events parsing, flash/development request shapes."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import requests

from fieldsafe import cloud as cloudmod


class _Lines:
    """A stand-in for a streamed ``requests.Response`` (iter_lines + close)."""

    def __init__(self, lines: list[bytes], *, hang: bool = False) -> None:
        self.lines = lines
        self.hang = hang
        self.closed = False

    def iter_lines(self, chunk_size: int = 1, decode_unicode: bool = False) -> Any:
        yield from self.lines
        while self.hang and not self.closed:
            time.sleep(0.01)
        if self.closed:
            raise requests.exceptions.ConnectionError("closed")

    def close(self) -> None:
        self.closed = True


def _event(name: str, data: str) -> list[bytes]:
    body = {"data": data, "ttl": 60, "published_at": "2026-12-01T09:00:00.000Z", "coreid": "e00f"}
    return [f"event: {name}".encode(), f"data: {json.dumps(body)}".encode(), b""]


def test_event_stream_parses_blocks_and_skips_keepalives() -> None:
    lines = [b":ok", b"", *_event("spark/status", "online"), b":", *_event("spark/device/app-hash", "ab" * 32)]
    stream = cloudmod.EventStream(_Lines(lines))  # type: ignore[arg-type]
    first = stream.next_event(1.0)
    second = stream.next_event(1.0)
    assert first == cloudmod.CloudEvent("spark/status", "online", "2026-12-01T09:00:00.000Z", "e00f")
    assert second is not None and second.name == "spark/device/app-hash" and second.data == "ab" * 32
    assert stream.next_event(1.0) is None and stream.ended


def test_event_stream_wait_is_bounded_and_close_unblocks() -> None:
    response = _Lines([], hang=True)
    stream = cloudmod.EventStream(response)  # type: ignore[arg-type]
    began = time.monotonic()
    assert stream.next_event(0.2) is None
    assert time.monotonic() - began < 1.0 and not stream.ended
    stream.close()
    assert stream.next_event(1.0) is None and stream.ended
    assert stream.error is None  # closing is not an error


def test_event_without_json_keeps_the_text() -> None:
    stream = cloudmod.EventStream(_Lines([b"event: x", b"data: plain text", b""]))  # type: ignore[arg-type]
    assert stream.next_event(1.0) == cloudmod.CloudEvent("x", "plain text")


class _Session:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.trust_env = False

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kw})
        response = requests.Response()
        response.status_code = 200
        # A body the client reads as it reads a real one (streamed from ``raw``, bounded), not a pre-filled _content.
        response.raw = io.BytesIO(json.dumps({"id": "e00f", "status": "Update started", "development": True}).encode())
        response.url = url
        return response


def _client(tmp_path: Any) -> tuple[cloudmod.ParticleCloud, _Session]:
    session = _Session()
    config = cloudmod.CloudConfig(api_url="http://127.0.0.1:9", token=cloudmod.Secret("t" * 40))
    return cloudmod.ParticleCloud(config, session=session, cache_dir=tmp_path), session  # type: ignore[arg-type]


def test_flash_device_sends_one_multipart_put(tmp_path: Any) -> None:
    client, session = _client(tmp_path)
    assert client.flash_device("e00f", b"\x01\x02", filename="app.bin")["status"] == "Update started"
    (call,) = session.calls
    assert call["method"] == "PUT" and call["url"].endswith("/v1/devices/e00f")
    assert call["files"] == [("file", ("app.bin", b"\x01\x02", "application/octet-stream"))]
    client.flash_device("e00f", b"\x01", product=31337)
    assert session.calls[-1]["url"].endswith("/v1/products/31337/devices/e00f")


def test_set_development_sends_json(tmp_path: Any) -> None:
    client, session = _client(tmp_path)
    client.set_development(31337, "e00f")
    (call,) = session.calls
    assert call["method"] == "PUT" and call["json"] == {"development": True}
    assert call["url"].endswith("/v1/products/31337/devices/e00f")


def test_module_file_names_cannot_escape_the_base_url(tmp_path: Any) -> None:
    client, _ = _client(tmp_path)
    with pytest.raises(cloudmod.BadResponse):
        client.download_module("/v1/firmware/device-os/v2.3.1", "../../v1/devices")
