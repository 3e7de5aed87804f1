"""Fault injection for the emulator: make one endpoint slow, failing, rate-limited or broken on demand.

Why: the client's retry rules, typed errors and offline cache are only trustworthy if tests can make
the cloud misbehave in each documented way, in process (Python API) and out of process (state file
``faults`` or the loopback-only ``/__emulator/faults`` admin endpoint).

A rule matches a request when its ``pattern`` (an ``fnmatch`` glob such as ``/v1/devices*``) matches
the request path (query string excluded) and its optional ``method`` matches. ``count`` is how many
matching requests it affects (``None`` = until cleared). Rules are checked in the order they were set.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("latency", "error", "rate_limit", "drop", "truncate", "malformed_json", "token_expired")
"""latency: sleep ``delay`` seconds then answer normally; error: HTTP ``status`` (default 500);
rate_limit: 429 with ``Retry-After: retry_after``; drop: close the connection without a reply;
truncate: announce the full Content-Length but send only half the body; malformed_json: a 200 whose
body is not JSON; token_expired: 401 ``invalid_token`` as if the token had just expired."""


class FaultError(ValueError):
    """A fault rule with an unknown kind or a bad parameter (message names the field)."""


@dataclass
class FaultRule:
    """One switch. ``remaining`` counts down from ``count``; ``hits`` counts requests it affected."""

    pattern: str
    kind: str
    count: int | None = None
    method: str | None = None
    delay: float = 0.0
    status: int = 500
    retry_after: float = 1.0
    remaining: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.pattern)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_rule(data: dict[str, Any], where: str = "fault") -> FaultRule:
    """Validate a rule from JSON (state file or admin endpoint); errors name ``where`` and the field."""
    if not isinstance(data, dict):
        raise FaultError(f"{where}: expected an object with 'pattern' and 'kind'")
    unknown = set(data) - {"pattern", "kind", "count", "method", "delay", "status", "retry_after"}
    if unknown:
        raise FaultError(f"{where}: unknown field(s) {sorted(unknown)}")
    pattern = data.get("pattern", "*")
    kind = data.get("kind")
    if not isinstance(pattern, str) or not pattern:
        raise FaultError(f"{where}.pattern: expected a path glob such as '/v1/devices*'")
    if kind not in KINDS:
        raise FaultError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    count = data.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultError(f"{where}.count: expected a positive integer or null (forever)")
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise FaultError(f"{where}.method: expected an HTTP method such as 'GET'")
    numbers: dict[str, float] = {}
    for name, default in (("delay", 0.0), ("retry_after", 1.0)):
        value = data.get(name, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise FaultError(f"{where}.{name}: expected a number of seconds >= 0")
        numbers[name] = float(value)
    status = data.get("status", 500)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise FaultError(f"{where}.status: expected an HTTP error status 400-599")
    return FaultRule(
        pattern=pattern,
        kind=kind,
        count=count,
        method=method.upper() if method else None,
        delay=numbers["delay"],
        status=status,
        retry_after=numbers["retry_after"],
        remaining=count,
    )


class Faults:
    """The emulator's fault switchboard (thread-safe: the HTTP server handles requests in threads)."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def set(
        self,
        pattern: str,
        kind: str,
        *,
        count: int | None = None,
        method: str | None = None,
        delay: float = 0.0,
        status: int = 500,
        retry_after: float = 1.0,
    ) -> FaultRule:
        """Add a rule, e.g. ``set("/v1/devices", "rate_limit", count=2, retry_after=3)``."""
        data: dict[str, Any] = {"pattern": pattern, "kind": kind, "count": count, "delay": delay}
        data.update({"status": status, "retry_after": retry_after, "method": method})
        rule = make_rule(data)
        self.add(rule)
        return rule

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first live rule matching this request, consuming one of its ``count`` (None if none)."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0 or not rule.matches(method, path):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                return rule
        return None
