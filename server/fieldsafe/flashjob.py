"""Guarded flash, end to end: read the device fresh, decide (``guard``), send, follow it until it runs the app.

Why its own module: the CLI (``fieldsafe flash``) and the language server's guarded-flash command run the
same steps and must report the same outcome; only how progress is shown differs (a callback). All network
goes through :class:`fieldsafe.cloud.ParticleCloud`; waiting is bounded by a deadline and stops when
``should_stop`` says so (the editor's Cancel, Ctrl-C).

Steps: fresh ``GET /v1/devices/:id`` (never the cache: a flash decided on stale state is the harm this
guards against) -> parse the binary -> :func:`fieldsafe.guard.decide_flash` -> nothing more when refused
or when the caller only asked for the decision -> product device not in development: mark it (as
particle-cli does) -> open the device's event stream -> ``PUT /v1/devices/:id`` -> wait for
``spark/flash/status`` / ``spark/status`` online / ``spark/device/app-hash`` == this app -> fresh device read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fieldsafe import cloud as cloudmod
from fieldsafe import compat, guard
from fieldsafe.findings import Finding, Severity
from fieldsafe.modules import ModuleParseError, parse_module

Progress = Callable[[str, float | None], None]  # (message, fraction 0..1 or None)
POLL_SECONDS = 2.0  # fresh device reads while waiting (the event stream may be absent or quiet)
MIN_TIMEOUT_S = 60.0


@dataclass
class FlashResult:
    """What happened: the decision, whether anything was sent, and how it ended."""

    decision: guard.FlashDecision
    outcome: str  # refused | decided | done | failed | timeout | cancelled
    sent: bool = False
    marked_development: bool = False
    findings: list[Finding] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    device_after: dict[str, Any] | None = None
    elapsed_seconds: float = 0.0
    wait_seconds: float = 0.0  # from the PUT to the confirmation

    @property
    def ok(self) -> bool:
        return self.outcome == "done" or (self.outcome == "decided" and self.decision.allowed)

    def exit_status(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        body = self.decision.to_json()
        body.update(
            {
                "outcome": self.outcome,
                "sent": self.sent,
                "markedDevelopment": self.marked_development,
                "findings": [f.to_json() for f in self.findings],
                "events": self.events,
                "deviceAfter": _device_after(self.device_after),
                "elapsedSeconds": round(self.elapsed_seconds, 2),
                "waitSeconds": round(self.wait_seconds, 2),
            }
        )
        return body


def _device_after(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    return {
        "deviceOs": raw.get("system_firmware_version"),
        "online": raw.get("online", raw.get("connected")),
        "appHash": raw.get("app_hash"),
        "status": raw.get("status"),
    }


def read_device(
    cloud: cloudmod.ParticleCloud, ref: str, product: str | int | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """A fresh device read (never the offline cache): ``(raw, None)`` or ``(None, why it failed)``."""
    try:
        return (cloud.get_product_device(product, ref) if product is not None else cloud.get_device(ref)), None
    except cloudmod.CloudError as exc:
        return None, str(exc)


def decide(
    cloud: cloudmod.ParticleCloud,
    device_ref: str,
    binary: bytes,
    *,
    allow_device_os_update: bool = False,
    product: str | int | None = None,
) -> tuple[guard.FlashDecision, dict[str, Any] | None]:
    """Read the device fresh and decide; the raw device JSON is returned for the send step."""
    try:
        info = parse_module(binary)
    except ModuleParseError as exc:
        return guard.FlashDecision(
            guard.Verdict.REFUSE, (guard.not_an_app(f"the file is not a module: {exc.reason}"),)
        ), None
    raw, error = read_device(cloud, device_ref, product)
    if raw is None:
        return guard.refuse_unreadable(device_ref, error or "no answer"), None
    decision = guard.decide_flash(
        info,
        len(binary),
        raw,
        allow_device_os_update=allow_device_os_update,
        app_hash=info.sha256_stored.lower() if info.sha256_stored else None,
    )
    return decision, raw


def guarded_flash(
    cloud: cloudmod.ParticleCloud,
    device_ref: str,
    binary: bytes,
    *,
    allow_device_os_update: bool = False,
    execute: bool = True,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    filename: str = "firmware.bin",
    product: str | int | None = None,
) -> FlashResult:
    """Decide, and (when allowed and ``execute``) send and follow the device; never raises CloudError."""
    started = time.monotonic()
    say = progress or (lambda _m, _f: None)
    stop = should_stop or (lambda: False)
    say(f"reading {device_ref}", None)
    decision, raw = decide(cloud, device_ref, binary, allow_device_os_update=allow_device_os_update, product=product)
    result = FlashResult(decision, "refused", findings=list(decision.findings))
    if not decision.allowed or raw is None:
        result.elapsed_seconds = time.monotonic() - started
        return result
    if not execute:
        result.outcome = "decided"
        result.elapsed_seconds = time.monotonic() - started
        return result
    if stop():
        result.outcome = "cancelled"
        return result
    state = decision.device
    assert state is not None and state.device_id is not None
    if decision.mark_development:
        say(f"marking {state.name} as a development device of product {state.product_id}", None)
        try:
            cloud.set_development(state.product_id or 0, state.device_id, True)
        except cloudmod.CloudError as exc:
            result.findings.append(
                guard.not_confirmed(state, "failed", f"marking it as a development device failed: {exc}")
            )
            result.findings[-1] = _refused_before_send(result.findings[-1], exc)
            result.outcome = "failed"
            result.elapsed_seconds = time.monotonic() - started
            return result
        result.marked_development = True
        result.findings.append(guard.marked_development(state))
    timeout = timeout_s if timeout_s is not None else max(MIN_TIMEOUT_S, decision.predicted_seconds * 1.5 + 60)
    _send_and_follow(cloud, decision, result, binary, filename, timeout, say, stop, product)
    result.elapsed_seconds = time.monotonic() - started
    return result


def _refused_before_send(finding: Finding, exc: cloudmod.CloudError) -> Finding:
    return Finding(
        guard.FLASH_NOT_CONFIRMED,
        Severity.ERROR,
        f"Nothing was sent: marking the product device as a development device failed ({exc}); without it the "
        "fleet release would overwrite the flash.",
        facts=finding.facts | {"outcome": "failed", "sent": False},
    )


def _open_events(
    cloud: cloudmod.ParticleCloud, device_id: str, product: str | int | None = None
) -> cloudmod.EventStream | None:
    try:
        return cloud.open_events(device_id, product=product)
    except cloudmod.CloudError:
        return None  # no stream (or not allowed): fresh device reads alone decide


@dataclass
class _Watch:
    """What the events and device reads have shown so far."""

    app_hash: str | None
    flash_failed: str | None = None
    hash_seen: bool = False
    back_online: bool = False
    went_offline: bool = False
    safe_mode: int = 0

    def take(self, event: cloudmod.CloudEvent) -> None:
        """Why the resets: each healer cycle is online -> safe-mode; only an app hash reported after the
        latest ``online`` (and no Safe Mode since) means the device now runs this app."""
        data = event.data.strip()
        if event.name == "spark/flash/status" and data.startswith("failed"):
            self.flash_failed = data
        elif event.name == "spark/device/app-hash":
            self.hash_seen = bool(self.app_hash) and data.lower() == self.app_hash
        elif event.name == "spark/status":
            if data == "offline":
                self.went_offline = True
                self.back_online = self.hash_seen = False
            elif data == "online":
                self.back_online, self.hash_seen = True, False
        elif event.name == "spark/status/safe-mode":
            self.safe_mode += 1
            self.back_online = self.hash_seen = False

    def take_device(self, raw: dict[str, Any]) -> None:
        hash_now = str(raw.get("app_hash") or "").lower()
        if self.app_hash and hash_now == self.app_hash:
            self.hash_seen = True
            if raw.get("online", raw.get("connected")) and raw.get("status", "normal") != "safe_mode":
                self.back_online = True

    @property
    def done(self) -> bool:
        return self.hash_seen and self.back_online


def _send_and_follow(
    cloud: cloudmod.ParticleCloud,
    decision: guard.FlashDecision,
    result: FlashResult,
    binary: bytes,
    filename: str,
    timeout: float,
    say: Progress,
    stop: Callable[[], bool],
    product: str | int | None = None,
) -> None:
    state = decision.device
    assert state is not None and state.device_id is not None
    events = _open_events(cloud, state.device_id, product)
    try:
        say(f"sending {guard.kb(len(binary))} to {state.name}", 0.0)
        try:
            cloud.flash_device(state.device_id, binary, filename=filename, product=product)
        except cloudmod.CloudError as exc:
            result.outcome = "failed"
            result.findings.append(guard.not_confirmed(state, "failed", f"the cloud refused the flash: {exc}"))
            result.findings[-1] = Finding(
                guard.FLASH_NOT_CONFIRMED,
                Severity.ERROR,
                f"The cloud refused the flash of {state.name}: {exc}",
                facts={"device": state.name, "outcome": "failed", "sent": False},
            )
            return
        result.sent = True
        sent_at = time.monotonic()
        watch = _Watch(decision.app_hash)
        outcome = wait_for(cloud, state.device_id, events, watch, result.events, sent_at + timeout, decision, say, stop)
        result.wait_seconds = time.monotonic() - sent_at
    finally:
        if events is not None:
            events.close()
    raw, _error = read_device(cloud, state.device_id, product)
    result.device_after = raw
    result.outcome = outcome
    if outcome == "done":
        return
    detail = {
        "failed": f"the device reported the flash failed ({watch.flash_failed})",
        "timeout": f"it did not come back online running this app within {guard.duration(timeout)}"
        + (f" (it entered Safe Mode {watch.safe_mode} time(s))" if watch.safe_mode else ""),
        "cancelled": "fieldsafe stopped waiting (cancelled); the cloud may still be delivering it",
    }[outcome]
    result.findings.append(guard.not_confirmed(state, outcome, detail))


def wait_for(
    cloud: cloudmod.ParticleCloud,
    device_id: str,
    events: cloudmod.EventStream | None,
    watch: _Watch,
    log: list[dict[str, Any]],
    deadline: float,
    decision: guard.FlashDecision,
    say: Progress,
    stop: Callable[[], bool],
) -> str:
    """Follow events (and fresh reads every ``POLL_SECONDS``) until done, failed, timeout or cancelled."""
    expected = max(1.0, decision.predicted_seconds)
    started = time.monotonic()
    next_poll = started + POLL_SECONDS
    while True:
        now = time.monotonic()
        if watch.done:
            return "done"
        if watch.flash_failed:
            return "failed"
        if stop():
            return "cancelled"
        if now >= deadline:
            return "timeout"
        wait = min(0.25, deadline - now)
        event = events.next_event(wait) if events is not None and not events.ended else None
        if event is None and (events is None or events.ended):
            time.sleep(min(wait, max(0.0, next_poll - time.monotonic())))
        if event is not None:
            log.append({"name": event.name, "data": event.data, "publishedAt": event.published_at})
            watch.take(event)
            say(_event_text(event), min(0.99, (time.monotonic() - started) / expected))
        if time.monotonic() >= next_poll and not watch.done:
            next_poll = time.monotonic() + POLL_SECONDS
            raw, _ = read_device(cloud, device_id)
            if raw is not None:
                watch.take_device(raw)


def _event_text(event: cloudmod.CloudEvent) -> str:
    data = event.data.strip()
    short = data if len(data) <= 40 else data[:37] + "..."
    return f"{event.name} {short}".strip()


class BuildError(Exception):
    """The project cannot be compiled for a flash; ``status`` is the CLI exit status (2 usage, 1 failure)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def build_project(
    root: Any,
    cloud: cloudmod.ParticleCloud,
    *,
    platform: str | None = None,
    target: str | None = None,
    settings: Any = None,
    should_stop: Callable[[], bool] = lambda: False,
    cache: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Compile pinned exactly as ``fieldsafe compile`` does: ``(CompileOutcome, Target)``.

    ``cache`` (content key -> CompileOutcome, the language server's compile-on-save results) is reused when
    the same files were already built for the same release: the binary flashed is the one just checked.
    Raises :class:`BuildError` for a target that cannot be resolved or a project with nothing to compile;
    cloud failures propagate as ``CloudError``.
    """
    from fieldsafe.compilejob import compile_project, content_key, gather_files, has_compile_units
    from fieldsafe.targets import TargetError, resolve_target

    try:
        resolved = resolve_target(root, platform=platform, target=target, cloud=cloud, settings=settings)
    except TargetError as exc:
        raise BuildError(str(exc)) from None
    try:
        files = gather_files(root)
    except OSError as exc:
        raise BuildError(f"cannot read {exc.filename or root}: {exc.strerror or exc}", 1) from None
    if not has_compile_units(files):
        raise BuildError(
            f"{root}: no source files to compile (.ino, .cpp, .c); pass --binary FILE or the project folder"
        )
    release = str(resolved.release.version)
    key = content_key(files, resolved.platform.id, release)
    cached = cache.get(key) if cache is not None else None
    if cached is not None and cached.ok and cached.binary is not None and cached.module is not None:
        return cached, resolved
    outcome = compile_project(files, resolved.platform.id, release, cloud, should_stop=should_stop)
    if cache is not None and outcome.ok:
        cache[key] = outcome
    return outcome, resolved


def device_state(raw: dict[str, Any]) -> compat.DeviceState:
    """The device JSON as compat's state (what the faces print after a flash)."""
    return compat.device_state_from_cloud(raw)
