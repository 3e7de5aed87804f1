"""The emulator's event bus and its Server-Sent Events streams (``/v1/devices/events`` and friends).

Why a bus: the field simulator (``field.py``) and the product firmware routes publish the events the real cloud
publishes (``spark/status``, ``spark/status/safe-mode``, ``spark/flash/status``, ``particle/firmware/release``...),
and clients watch them exactly as they watch the real cloud: an SSE stream that starts with ``:ok`` and then
carries ``event: <name>`` / ``data: <json>`` pairs with the real envelope
(``{data, ttl, published_at, coreid, userid, version, public, productID, name}``; shared/docs/fleet-api.md §5.4).

Bounded: the bus keeps the last ``MAX_EVENTS`` events only (there is no replay in the real API either: a stream
sees what is published after it connects), and :meth:`EventBus.close` ends every open stream, which the server
calls when it stops, so no test or client hangs on a stream of a stopped emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

MAX_EVENTS = 10_000
HEARTBEAT_SECONDS = 5.0  # a comment line now and then, so a vanished client is noticed (the write fails)
EVENT_TTL = 60


@dataclass(frozen=True)
class Event:
    """One published event; ``published_at`` is the simulated wall clock time in the cloud's ISO format."""

    seq: int
    name: str
    data: str
    coreid: str
    published_at: str
    product_id: int | None = None
    version: int = 0
    userid: str = ""

    def envelope(self) -> dict[str, Any]:
        """The JSON object the real stream carries in ``data:`` (key order as in the captures)."""
        body: dict[str, Any] = {
            "data": self.data,
            "ttl": EVENT_TTL,
            "published_at": self.published_at,
            "coreid": self.coreid,
            "userid": self.userid,
            "version": self.version,
            "public": False,
        }
        if self.product_id is not None:
            body["productID"] = self.product_id
        body["name"] = self.name
        return body

    def sse(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.envelope(), separators=(',', ':'))}\n\n".encode()


EventFilter = Callable[[Event], bool]


class EventBus:
    """Thread-safe publish/subscribe with a bounded history; ``publish`` has fleetemu's hook signature."""

    def __init__(self, now_iso: Callable[[], str] | None = None, max_events: int = MAX_EVENTS) -> None:
        from fieldsafe.emulator.state import iso, utcnow

        self._now_iso = now_iso or (lambda: iso(utcnow()) or "")
        self._events: deque[Event] = deque(maxlen=max_events)
        self._cond = threading.Condition()
        self._seq = 0
        self.closed = False

    def set_clock(self, now_iso: Callable[[], str]) -> None:
        self._now_iso = now_iso

    def publish(
        self,
        name: str,
        data: str,
        *,
        coreid: str,
        product_id: int | None = None,
        version: int | None = None,
        userid: str = "",
        published_at: str | None = None,
    ) -> Event:
        with self._cond:
            self._seq += 1
            event = Event(
                seq=self._seq,
                name=name,
                data=data,
                coreid=coreid,
                published_at=published_at or self._now_iso(),
                product_id=product_id,
                version=version or 0,
                userid=userid,
            )
            self._events.append(event)
            self._cond.notify_all()
        return event

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def history(self, match: EventFilter | None = None) -> list[Event]:
        """Events still held (oldest first), for tests and the admin endpoint."""
        with self._cond:
            return [e for e in self._events if match is None or match(e)]

    def wait_after(self, seq: int, timeout: float) -> list[Event]:
        """Events newer than ``seq``; blocks up to ``timeout`` seconds for one. Empty when closed or timed out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.closed:
                if self._seq > seq:
                    newer: list[Event] = []
                    for event in reversed(self._events):  # the newest are at the right: stop at the first old one
                        if event.seq <= seq:
                            break
                        newer.append(event)
                    return newer[::-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            return []

    def close(self) -> None:
        """End every stream (server shutdown)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def stream(self, out: BinaryIO, match: EventFilter, *, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        """Write an SSE stream to ``out`` until the bus closes or the client goes away."""
        seq = self.last_seq
        try:
            out.write(b":ok\n\n")
            out.flush()
            while not self.closed:
                events = self.wait_after(seq, heartbeat)
                if not events:
                    if self.closed:
                        break
                    out.write(b":\n\n")
                    out.flush()
                    continue
                seq = events[-1].seq
                chunk = b"".join(e.sse() for e in events if match(e))
                if chunk:
                    out.write(chunk)
                    out.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError, ValueError):
            return


def name_filter(prefix: str | None) -> EventFilter:
    """The real API's ``/events/:prefix``: event names starting with the prefix."""
    if not prefix:
        return lambda e: True
    return lambda e: e.name.startswith(prefix)


def both(a: EventFilter, b: EventFilter) -> EventFilter:
    return lambda e: a(e) and b(e)
