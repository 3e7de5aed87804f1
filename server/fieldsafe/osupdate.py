"""Planned Device OS update of one device, module by module, resumable (``fieldsafe update-os``).

Why: the guarded flash refuses builds a device would not run; the developer who *wants* the newer API
updates the device on purpose instead, seeing first what it costs: which modules (bootloader first where
the new system part needs it, system parts in dependency order, intermediate releases where a direct jump
is not allowed), their sizes and the total over the air. The plan is ``delivery.plan_update_os`` (one
table for prediction and simulation); this module fetches the module files from the versions API,
sends them one at a time, waits for each to be applied (events, then a fresh device read) and records
progress in a small JSON file so an interrupted run (Ctrl-C, a killed process, a dropped connection)
resumes where it stopped instead of starting over.

Network only through :class:`fieldsafe.cloud.ParticleCloud`; the planning half is pure.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fieldsafe import cloud as cloudmod
from fieldsafe import compat, delivery, guard, policy
from fieldsafe.findings import Finding, Severity
from fieldsafe.modules import ModuleParseError, parse_module

UPDATE_REFUSED = "FS610"
STEP_NOT_APPLIED = "FS611"
RESUMED = "FS612"
SIZE_DIFFERS = "FS613"

FUNCTION_CODES = {"bootloader": 2, "system_part": 4, "radio_stack": 7, "user_part": 5}
Progress = Callable[[str, float | None], None]
STATE_VERSION = 1


# ------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class UpdatePlan:
    """The decision for ``update-os DEVICE --to RELEASE`` before anything is sent."""

    device: compat.DeviceState | None
    to_release: str
    plan: delivery.DeliveryPlan | None
    findings: tuple[Finding, ...] = ()

    @property
    def refused(self) -> bool:
        return any(f.severity == Severity.ERROR for f in self.findings)

    @property
    def nothing_to_do(self) -> bool:
        return not self.refused and (self.plan is None or not self.plan.steps)

    def summary(self) -> str:
        name = self.device.name if self.device else "the device"
        if self.refused:
            worst = min(self.findings, key=lambda f: f.severity)
            return f"Refused, nothing sent: {worst.message}"
        if self.nothing_to_do:
            return f"{name} already runs Device OS {self.device.device_os if self.device else '?'}: nothing to send."
        assert self.plan is not None
        cellular = self.device.cellular if self.device else None
        link = "over cellular" if cellular else "over Wi-Fi" if cellular is False else "over the air"
        return (
            f"Update {name} from {self.plan.from_release} to {self.to_release}: {len(self.plan.steps)} module"
            f"{'s' if len(self.plan.steps) != 1 else ''}, {guard.kb(self.plan.total_bytes)} {link}, "
            f"{self.plan.reboots} reboots (the app is down only while it reboots, "
            f"{guard.duration(self.plan.downtime_seconds)} in total)."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "device": guard._device_json(self.device),
            "toRelease": self.to_release,
            "refused": self.refused,
            "nothingToDo": self.nothing_to_do,
            "summary": self.summary(),
            "plan": guard.plan_json(self.plan) if self.plan is not None else None,
            "findings": [f.to_json() for f in self.findings],
        }


def _refused(state: compat.DeviceState | None, to_release: str, why: str) -> Finding:
    facts: dict[str, Any] = {"to_release": to_release, "device": state.name if state else None}
    return Finding(
        UPDATE_REFUSED,
        Severity.ERROR,
        f"Device OS update to {to_release} refused, nothing sent: {why}",
        facts=facts,
    )


def plan_update(raw_device: Mapping[str, Any], to_release: str) -> UpdatePlan:
    """What ``update-os`` would send to this freshly read device (pure): ``delivery.plan_update_os``."""
    state = compat.device_state_from_cloud(raw_device)
    if compat.catalog().release(to_release) is None:
        return UpdatePlan(state, to_release, None, (_refused(state, to_release, "not a release fieldsafe knows."),))
    plan = delivery.plan_update_os(guard.device_facts(raw_device, state), to_release)
    path = plan.decision.path
    if path == policy.UpgradePath.RUNS:
        return UpdatePlan(state, to_release, plan)
    if path != policy.UpgradePath.PLANNED:
        # refused (downgrade, Gen 2 cap), stuck (updates disabled), unknown (the device's release)
        return UpdatePlan(
            state, to_release, plan, (_refused(state, to_release, guard._sentence(plan.decision.reason)),)
        )
    findings: tuple[Finding, ...] = ()
    if state.online is False:
        findings = (_refused(state, to_release, f"{state.name} is offline; an OTA update needs it connected."),)
    return UpdatePlan(state, to_release, plan, findings)


# ------------------------------------------------------------------------------------------ progress


def default_state_dir() -> Path:
    """Where interrupted runs are remembered (``FIELDSAFE_STATE_DIR`` or the user state dir)."""
    override = os.environ.get("FIELDSAFE_STATE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir("fieldsafe")) / "update-os"


def step_keys(plan: delivery.DeliveryPlan) -> list[str]:
    """Identity of each step (a resumed run must be the same plan)."""
    return [f"{s.release}/{s.module.function}/{s.module.index}/{s.module.name}" for s in plan.steps]


@dataclass
class ProgressFile:
    """``<state dir>/<device id>.json``: which steps are confirmed applied, which one was in flight."""

    path: Path
    device_id: str
    to_release: str
    steps: list[str]
    done: list[int] = field(default_factory=list)
    in_flight: int | None = None
    started_at: float = field(default_factory=time.time)

    @classmethod
    def load(cls, path: Path) -> ProgressFile | None:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("version") != STATE_VERSION:
            return None
        try:
            return cls(
                path=path,
                device_id=str(body["device_id"]),
                to_release=str(body["to_release"]),
                steps=[str(x) for x in body["steps"]],
                done=[int(x) for x in body["done"]],
                in_flight=body.get("in_flight") if isinstance(body.get("in_flight"), int) else None,
                started_at=float(body.get("started_at") or time.time()),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def save(self) -> None:
        """Atomic (temp file + rename): a kill mid-write never leaves a half file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "version": STATE_VERSION,
            "device_id": self.device_id,
            "to_release": self.to_release,
            "steps": self.steps,
            "done": self.done,
            "in_flight": self.in_flight,
            "started_at": self.started_at,
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ execution


@dataclass
class StepReport:
    """One module as sent (or skipped because an earlier run confirmed it)."""

    index: int
    release: str
    module: str
    predicted_bytes: int
    sent_bytes: int = 0
    outcome: str = "pending"  # pending | skipped (done before) | done | failed | timeout | cancelled
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "release": self.release,
            "module": self.module,
            "predictedBytes": self.predicted_bytes,
            "sentBytes": self.sent_bytes,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class UpdateResult:
    planned: UpdatePlan
    outcome: str  # refused | planned | nothing | done | failed | timeout | cancelled | declined
    steps: list[StepReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    resumed_from: int = 0
    device_after: dict[str, Any] | None = None
    elapsed_seconds: float = 0.0
    wait_seconds: float = 0.0  # time spent waiting for modules to be applied

    @property
    def ok(self) -> bool:
        return self.outcome in ("done", "planned", "nothing")

    def exit_status(self) -> int:
        return 0 if self.ok else 1

    @property
    def sent_bytes(self) -> int:
        return sum(s.sent_bytes for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        body = self.planned.to_json()
        body.update(
            {
                "outcome": self.outcome,
                "steps": [s.to_json() for s in self.steps],
                "sentBytes": self.sent_bytes,
                "resumedFrom": self.resumed_from,
                "findings": [f.to_json() for f in [*self.planned.findings, *self.findings]],
                "deviceAfter": None
                if self.device_after is None
                else {
                    "deviceOs": self.device_after.get("system_firmware_version"),
                    "online": self.device_after.get("online"),
                },
                "elapsedSeconds": round(self.elapsed_seconds, 2),
                "waitSeconds": round(self.wait_seconds, 2),
            }
        )
        return body


class _Modules:
    """Module files per release from the versions API, matched to plan steps by parsed function + index."""

    def __init__(self, cloud: cloudmod.ParticleCloud, platform_id: int) -> None:
        self.cloud = cloud
        self.platform_id = platform_id
        self._listing: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def fetch(self, step: delivery.DeliveryStep) -> tuple[bytes, str]:
        if step.release not in self._listing:
            self._listing[step.release] = self.cloud.device_os_modules(step.release, self.platform_id)
        base_url, modules = self._listing[step.release]
        want = (FUNCTION_CODES.get(step.module.function), step.module.index)
        # files named after the module first ("electron-system-part1@2.3.1.bin"); the parsed prefix decides
        candidates = sorted(modules, key=lambda m: step.module.name not in str(m.get("filename")))
        for entry in candidates:
            data = self.cloud.download_module(base_url, str(entry["filename"]))
            try:
                info = parse_module(data)
            except ModuleParseError:
                continue
            if (info.module_function, info.module_index) == want and info.platform_id == self.platform_id:
                return data, str(entry["filename"])
        raise cloudmod.BadResponse(
            f"Device OS {step.release}: the versions API lists no {step.module.name} file for platform {self.platform_id}"
        )


def run_update(
    cloud: cloudmod.ParticleCloud,
    device_ref: str,
    to_release: str,
    *,
    execute: bool = True,
    confirm: Callable[[UpdatePlan], bool] | None = None,
    state_dir: Path | None = None,
    step_timeout_s: float | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    product: str | int | None = None,
) -> UpdateResult:
    """Plan, (confirm), send module by module, resume an interrupted run; never raises CloudError.

    ``product``: a product device you do not own is read, flashed and followed through the product's routes.
    """
    started = time.monotonic()
    say = progress or (lambda _m, _f: None)
    stop = should_stop or (lambda: False)
    raw, error = _read(cloud, device_ref, product)
    if raw is None:
        unreadable = guard.refuse_unreadable(device_ref, error or "no answer").findings
        return UpdateResult(UpdatePlan(None, to_release, None, unreadable), "refused")
    planned = plan_update(raw, to_release)
    result = UpdateResult(planned, "refused" if planned.refused else "nothing" if planned.nothing_to_do else "planned")
    if planned.refused or planned.nothing_to_do or not execute:
        _forget_if_done(planned, raw, state_dir)
        return result
    assert planned.plan is not None and planned.device is not None and planned.device.device_id is not None
    plan, state = planned.plan, planned.device
    record = _progress_record(plan, state, to_release, state_dir)
    result.resumed_from = len(record.done)
    if record.done or record.in_flight is not None:
        result.findings.append(_resumed(record, plan))
    if confirm is not None and not confirm(planned):
        result.outcome = "declined"
        return result
    record.save()
    modules = _Modules(cloud, state.platform_id)
    total = max(1, plan.total_bytes)
    sent_before = sum(plan.steps[i].module.bytes for i in record.done)
    for index, step in enumerate(plan.steps):
        report = StepReport(index, step.release, step.module.name, step.module.bytes)
        result.steps.append(report)
        if index in record.done:
            report.outcome = "skipped"
            continue
        if stop():
            report.outcome = result.outcome = "cancelled"
            break
        say(f"step {index + 1}/{len(plan.steps)}: {step.module.name} {step.release}", sent_before / total)
        outcome = _send_step(cloud, state, step, report, record, modules, result, step_timeout_s, say, stop, product)
        if outcome != "done":
            result.outcome = outcome
            result.findings.append(_not_applied(state, step, outcome, report))
            break
        sent_before += step.module.bytes
    else:
        result.outcome = "done"
    result.device_after, _ = _read(cloud, state.device_id, product)
    if result.outcome == "done":
        record.remove()
    result.elapsed_seconds = time.monotonic() - started
    return result


def _read(
    cloud: cloudmod.ParticleCloud, ref: str, product: str | int | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return (cloud.get_product_device(product, ref) if product is not None else cloud.get_device(ref)), None
    except cloudmod.CloudError as exc:
        return None, str(exc)


def _state_path(state_dir: Path | None, device_id: str) -> Path:
    return (state_dir or default_state_dir()) / f"{device_id}.json"


def _progress_record(
    plan: delivery.DeliveryPlan, state: compat.DeviceState, to_release: str, state_dir: Path | None
) -> ProgressFile:
    """The saved progress when it is the same plan, else a fresh record.

    Why the plan is re-derived from the fresh device read and compared step by step: the device may have
    been updated by other means meanwhile; then the old record no longer describes what is left to do.
    A resumed plan is the *remaining* plan computed from the device's release, so the saved keys are
    matched as a suffix of the original.
    """
    assert state.device_id is not None
    path = _state_path(state_dir, state.device_id)
    keys = step_keys(plan)
    saved = ProgressFile.load(path)
    if saved is not None and saved.to_release == to_release and saved.device_id == state.device_id:
        offset = len(saved.steps) - len(keys)
        if offset >= 0 and saved.steps[offset:] == keys:
            # the device finished some releases meanwhile: the fresh plan is the tail of the saved one
            saved.steps = keys
            saved.done = [i - offset for i in saved.done if i >= offset]
            saved.in_flight = (
                saved.in_flight - offset if saved.in_flight is not None and saved.in_flight >= offset else None
            )
            return saved
    return ProgressFile(path=path, device_id=state.device_id, to_release=to_release, steps=keys)


def _forget_if_done(planned: UpdatePlan, raw: Mapping[str, Any], state_dir: Path | None) -> None:
    """The device already runs the target: a leftover record of an interrupted run is obsolete."""
    if planned.nothing_to_do and raw.get("id"):
        _state_path(state_dir, str(raw["id"])).unlink(missing_ok=True)


def _send_step(
    cloud: cloudmod.ParticleCloud,
    state: compat.DeviceState,
    step: delivery.DeliveryStep,
    report: StepReport,
    record: ProgressFile,
    modules: _Modules,
    result: UpdateResult,
    step_timeout_s: float | None,
    say: Progress,
    stop: Callable[[], bool],
    product: str | int | None = None,
) -> str:
    from fieldsafe.flashjob import POLL_SECONDS

    assert state.device_id is not None
    began = time.monotonic()
    try:
        data, filename = modules.fetch(step)
    except cloudmod.CloudError as exc:
        report.outcome = "failed"
        result.findings.append(_fetch_failed(step, exc))
        return "failed"
    if len(data) != step.module.bytes:
        result.findings.append(_size_differs(step, len(data)))
    events = _open(cloud, state.device_id, product)
    try:
        record.in_flight = report.index
        record.save()  # before the PUT: a kill after sending leaves "in flight", which a resume re-sends
        try:
            cloud.flash_device(state.device_id, data, filename=filename, product=product)
        except cloudmod.CloudError as exc:
            report.outcome = "failed"
            result.findings.append(_fetch_failed(step, exc, sending=True))
            return "failed"
        report.sent_bytes = len(data)
        cellular = bool(state.cellular)
        expected = delivery.transfer_seconds(len(data), cellular) + delivery.REBOOT_SECONDS
        timeout = step_timeout_s if step_timeout_s is not None else max(60.0, expected * 2 + 60)
        sent_at = time.monotonic()
        outcome = _wait_applied(cloud, state.device_id, events, sent_at + timeout, POLL_SECONDS, stop, product)
        result.wait_seconds += time.monotonic() - sent_at
    finally:
        if events is not None:
            events.close()
    report.outcome = outcome
    report.seconds = time.monotonic() - began
    if outcome == "done":
        record.done.append(report.index)
        record.in_flight = None
        record.save()
    return outcome


def _open(
    cloud: cloudmod.ParticleCloud, device_id: str, product: str | int | None = None
) -> cloudmod.EventStream | None:
    try:
        return cloud.open_events(device_id, product=product)
    except cloudmod.CloudError:
        return None


def _wait_applied(
    cloud: cloudmod.ParticleCloud,
    device_id: str,
    events: cloudmod.EventStream | None,
    deadline: float,
    poll_s: float,
    stop: Callable[[], bool],
    product: str | int | None = None,
) -> str:
    """Applied = ``spark/flash/status success`` then the device back ``online`` (events), or, without a
    stream, a fresh read showing it online again after having been seen offline."""
    success = online_after = False
    seen_offline = False
    next_poll = time.monotonic() + poll_s
    while True:
        if success and online_after:
            return "done"
        if stop():
            return "cancelled"
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        event = events.next_event(min(0.25, deadline - now)) if events is not None and not events.ended else None
        if event is None and (events is None or events.ended):
            time.sleep(min(0.25, max(0.0, deadline - now)))
        if event is not None:
            data = event.data.strip()
            if event.name == "spark/flash/status":
                if data.startswith("failed"):
                    return "failed"
                if data.startswith("success"):
                    success = True
            elif event.name == "spark/status" and data == "online" and success:
                online_after = True
        if (events is None or events.ended) and time.monotonic() >= next_poll:
            next_poll = time.monotonic() + poll_s
            raw, _ = _read(cloud, device_id, product)
            if raw is not None:
                online = bool(raw.get("online", raw.get("connected")))
                seen_offline = seen_offline or not online
                if seen_offline and online:
                    success = online_after = True


def _resumed(record: ProgressFile, plan: delivery.DeliveryPlan) -> Finding:
    again = ""
    if record.in_flight is not None and record.in_flight not in record.done:
        step = plan.steps[record.in_flight]
        again = (
            f"; {step.module.name} {step.release} was being sent when it stopped and is sent again "
            f"({guard.kb(step.module.bytes)}), since its result was never confirmed"
        )
    return Finding(
        RESUMED,
        Severity.INFO,
        f"Resuming an interrupted update to {record.to_release}: {len(record.done)} of {len(record.steps)} modules "
        f"were already confirmed applied and are not sent again{again}.",
        facts={"done": list(record.done), "in_flight": record.in_flight, "to_release": record.to_release},
    )


def _not_applied(state: compat.DeviceState, step: delivery.DeliveryStep, outcome: str, report: StepReport) -> Finding:
    what = {
        "failed": "the device reported the update failed",
        "timeout": "it was not confirmed applied in time",
        "cancelled": "the run was cancelled",
    }.get(outcome, outcome)
    return Finding(
        STEP_NOT_APPLIED,
        Severity.ERROR,
        f"{step.module.name} {step.release} to {state.name}: {what}. Progress is saved: run the same "
        "`fieldsafe update-os` again to resume from this module.",
        facts={"module": step.module.name, "release": step.release, "outcome": outcome, "index": report.index},
    )


def _fetch_failed(step: delivery.DeliveryStep, exc: cloudmod.CloudError, *, sending: bool = False) -> Finding:
    doing = "sending" if sending else "fetching"
    return Finding(
        STEP_NOT_APPLIED,
        Severity.ERROR,
        f"{doing} {step.module.name} {step.release} failed: {exc}. Progress is saved; run the command again to resume.",
        facts={"module": step.module.name, "release": step.release, "outcome": "failed"},
    )


def _size_differs(step: delivery.DeliveryStep, actual: int) -> Finding:
    return Finding(
        SIZE_DIFFERS,
        Severity.INFO,
        f"{step.module.name} {step.release} is {actual:,} bytes, the plan predicted {step.module.bytes:,} "
        f"({step.module.size_source}).",
        facts={"module": step.module.name, "release": step.release, "bytes": actual, "predicted": step.module.bytes},
    )
