"""The guarded-flash decision: may this binary go to this device over the air, and at what cost? (FS6xx)

Why this module: particle-cli's cloud flash and the cloud itself send any app to any device; an app built
for a newer Device OS than the device runs boots in Safe Mode, and whether the cloud then heals the device
(and what that costs in cellular data, reboots and time without the app) depends on the policy table. This
module answers *before* anything is sent, from the binary's real dependency (parsed from the module, never
from a pin) and the device's freshly read state, with the same ``compat`` rules the editor uses and the
upgrade path of ``delivery.plan_flash``. The CLI (``fieldsafe flash``), the language server's guarded
flash command and VS Code's dialog all show this one decision.

Pure: no network; ``fieldsafe.flashjob`` does the reading and sending.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fieldsafe import compat, delivery, platforms, policy
from fieldsafe.findings import Finding, Fix, Severity
from fieldsafe.modules import FUNCTION_USER_PART, ModuleInfo

# Codes (stable; documented in docs/findings-flash.md).
DEVICE_UNREADABLE = "FS601"
NEEDS_DEVICE_OS_UPDATE = "FS602"
DEVICE_OS_UPDATE_ALLOWED = "FS603"
WOULD_BE_STUCK = "FS604"
DEVICE_OFFLINE = "FS605"
MARKED_DEVELOPMENT = "FS606"
FLASH_NOT_CONFIRMED = "FS607"
NOT_AN_APP = "FS608"
UPDATES_DISABLED = "FS614"


class Verdict(StrEnum):
    """What the guard lets happen."""

    SEND = "send"  # the device runs the app as it is
    SEND_WITH_UPDATE = "send_with_update"  # allowed: the cloud updates Device OS first (cost shown)
    REFUSE = "refuse"  # nothing is sent


# --------------------------------------------------------------------------------------------- device


def device_facts(raw: Mapping[str, Any], state: compat.DeviceState | None = None) -> policy.DeviceFacts:
    """The policy's view of a device, from the cloud's device JSON (``GET /v1/devices/:id``)."""
    state = state or compat.device_state_from_cloud(raw)
    return dataclasses.replace(state.facts(), updates_forced=bool(raw.get("firmware_updates_forced")))


def needs_development_mark(state: compat.DeviceState) -> bool:
    """A product device that is not a development device: the fleet release would overwrite a flash."""
    return state.in_product and not state.development


# ------------------------------------------------------------------------------------------ wording


def kb(nbytes: int) -> str:
    """``"1,234 KB"`` (1000 bytes, as the Device OS docs count)."""
    return f"{round(nbytes / 1000):,} KB"


def duration(seconds: float | None) -> str:
    """``"~45 s"``, ``"~12 min"``, ``"~1.5 h"`` for messages; None is "until someone acts"."""
    if seconds is None:
        return "an unbounded time (until someone acts)"
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


_PATH_TEXT = {
    policy.UpgradePath.COMBINED_OTA: "one combined OTA (app and Device OS together, no Safe Mode)",
    policy.UpgradePath.HEALER: "the Safe Mode healer (the device boots in Safe Mode, then the cloud sends the "
    "missing modules one by one, with a reboot each)",
    policy.UpgradePath.STUCK: "none: the cloud will not heal it",
    policy.UpgradePath.RUNS: "none needed",
}


def plan_summary(plan: delivery.DeliveryPlan, cellular: bool | None) -> str:
    """One sentence on a plan's cost: path, modules, bytes over the air, reboots, time without the app."""
    link = "over cellular" if cellular else "over Wi-Fi" if cellular is False else "over the air"
    modules = ", ".join(f"{s.module.name} {s.release}" for s in plan.steps) or "no Device OS modules"
    via = f" via {', '.join(plan.intermediate_releases)}" if plan.intermediate_releases else ""
    return (
        f"upgrade path: {_PATH_TEXT.get(plan.decision.path, plan.decision.path)}; sends {modules}{via} "
        f"({kb(plan.total_bytes)} {link} in total, app included), {plan.reboots} reboot"
        f"{'s' if plan.reboots != 1 else ''}, the app does not run for {duration(plan.downtime_seconds)}"
    )


def plan_json(plan: delivery.DeliveryPlan) -> dict[str, Any]:
    """The plan as JSON (CLI ``--json``, LSP results, the VS Code dialog)."""
    return {
        "platformId": plan.platform_id,
        "fromRelease": plan.from_release,
        "toRelease": plan.to_release,
        "path": str(plan.decision.path),
        "rule": plan.decision.rule,
        "certainty": plan.decision.certainty,
        "reason": plan.decision.reason,
        "steps": [
            {
                "module": s.module.name,
                "function": s.module.function,
                "index": s.module.index,
                "version": s.module.version,
                "bytes": s.module.bytes,
                "sizeSource": s.module.size_source,
                "release": s.release,
                "reason": s.reason,
            }
            for s in plan.steps
        ],
        "appBytes": plan.app_bytes,
        "totalBytes": plan.total_bytes,
        "reboots": plan.reboots,
        "downtimeSeconds": None if plan.downtime_seconds is None else round(plan.downtime_seconds, 1),
        "intermediateReleases": list(plan.intermediate_releases),
        "notes": list(plan.notes),
    }


# ---------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class FlashDecision:
    """The guard's answer for one binary and one freshly read device."""

    verdict: Verdict
    findings: tuple[Finding, ...]
    device: compat.DeviceState | None = None
    requirement: compat.BinaryRequirement | None = None
    needed_release: str | None = None
    plan: delivery.DeliveryPlan | None = None
    app_bytes: int = 0
    app_hash: str | None = None
    mark_development: bool = False
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.verdict != Verdict.REFUSE

    @property
    def predicted_bytes(self) -> int:
        """What goes over the air if sent: the plan's total (app included), else the app alone."""
        return self.plan.total_bytes if self.plan is not None else self.app_bytes

    @property
    def predicted_seconds(self) -> float:
        """Time until the device runs the app, by the shared timing model (app transfer + the plan's downtime).

        A refused (stuck) plan has no bound; the app-only figure is given then, for the wait timeout only.
        """
        cellular = bool(self.device and self.device.cellular)
        app = delivery.transfer_seconds(self.app_bytes, cellular)
        if self.plan is not None and self.plan.downtime_seconds is not None:
            return app + self.plan.downtime_seconds
        return app + delivery.REBOOT_SECONDS

    def summary(self) -> str:
        """One line for the CLI, the LSP result and the dialog's headline."""
        name = self.device.name if self.device else "the device"
        if self.verdict == Verdict.SEND:
            return f"{name} runs this app as it is: sending {kb(self.app_bytes)}."
        if self.verdict == Verdict.SEND_WITH_UPDATE and self.plan is not None:
            return f"Sending with a Device OS update to {self.needed_release}: {plan_summary(self.plan, self._cell())}."
        worst = min(self.findings, key=lambda f: f.severity, default=None)
        return f"Refused, nothing sent: {worst.message}" if worst else "Refused, nothing sent."

    def fix(self, kind: str) -> Fix | None:
        """The first fix of a kind among the findings ("retarget", "update-os")."""
        return next((x for f in self.findings for x in f.fixes if x.kind == kind), None)

    def _cell(self) -> bool | None:
        return self.device.cellular if self.device else None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "allowed": self.allowed,
            "summary": self.summary(),
            "device": _device_json(self.device),
            "requirement": self.requirement.text if self.requirement else None,
            "neededRelease": self.needed_release,
            "appBytes": self.app_bytes,
            "appHash": self.app_hash,
            "predictedBytes": self.predicted_bytes,
            "predictedSeconds": round(self.predicted_seconds, 1) if self.allowed else None,
            "markDevelopment": self.mark_development,
            "retarget": _fix_json(self.fix("retarget"), "release"),
            "update": _fix_json(self.fix("update-os"), "release", "bytes"),
            "plan": plan_json(self.plan) if self.plan is not None else None,
            "findings": [f.to_json() for f in self.findings],
        }


def _fix_json(fix: Fix | None, *keys: str) -> dict[str, Any] | None:
    """What a dialog needs of a fix (``{title, release, bytes}``); None when the decision has none."""
    if fix is None:
        return None
    return {"title": fix.title, **{k: fix.params.get(k) for k in keys}}


def _device_json(state: compat.DeviceState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "id": state.device_id,
        "name": state.name,
        "platformId": state.platform_id,
        "deviceOs": state.device_os,
        "cellular": state.cellular,
        "online": state.online,
        "product": state.product,
        "development": state.development,
    }


def refuse_unreadable(device_ref: str, why: str) -> FlashDecision:
    """The device's state could not be read fresh: never flash on a guess (FS601)."""
    return FlashDecision(
        Verdict.REFUSE,
        (
            Finding(
                DEVICE_UNREADABLE,
                Severity.ERROR,
                f"Cannot read the current state of device '{device_ref}' ({why}), so fieldsafe cannot tell whether "
                "it would run this app; nothing was sent. Check the device name (`fieldsafe devices`) and your "
                "login (`particle login` or PARTICLE_ACCESS_TOKEN), then try again.",
                facts={"device": device_ref, "reason": why},
            ),
        ),
    )


def not_an_app(why: str, *, platform_id: int | None = None) -> Finding:
    """The file is not an application binary fieldsafe can check (FS608)."""
    return Finding(
        NOT_AN_APP,
        Severity.ERROR,
        f"{why}; `fieldsafe flash` only sends application binaries whose Device OS dependency it can check. "
        "Device OS modules go through `fieldsafe update-os`.",
        facts={"reason": why, "platform_id": platform_id},
    )


def decide_flash(
    info: ModuleInfo,
    app_bytes: int,
    raw_device: Mapping[str, Any],
    *,
    allow_device_os_update: bool = False,
    app_hash: str | None = None,
) -> FlashDecision:
    """Decide for a parsed binary and a freshly read device (``raw_device`` = the cloud's device JSON)."""
    state = compat.device_state_from_cloud(raw_device)
    requirement = compat.binary_requirement(info)
    base = {"device": state, "requirement": requirement, "app_bytes": app_bytes, "app_hash": app_hash}
    if info.module_function != FUNCTION_USER_PART or requirement.dependency is None:
        what = info.function_name.replace("_", " ")
        return FlashDecision(
            Verdict.REFUSE, (not_an_app(f"the file is a {what}", platform_id=info.platform_id),), **base
        )
    needs = compat.BuildNeeds(
        platform_id=info.platform_id, dependency_version=requirement.dependency.version, source="binary"
    )
    found = tuple(compat.check_build_against_device(needs, state))
    codes = {f.code for f in found}
    blocking = [f for f in found if f.code in (compat.PLATFORM_MISMATCH, compat.BINARY_DEPENDENCY_UNKNOWN)]
    if blocking:
        return FlashDecision(Verdict.REFUSE, found, **base)
    if compat.DEVICE_RELEASE_UNKNOWN in codes:
        unknown = refuse_unreadable(state.name, f"it reports an unknown Device OS {state.device_os!r}")
        return FlashDecision(Verdict.REFUSE, found + unknown.findings, **base)
    mark = needs_development_mark(state)
    if state.online is False:
        return FlashDecision(Verdict.REFUSE, (*found, _offline(state)), mark_development=mark, **base)
    if _updates_disabled(raw_device, state):
        return FlashDecision(Verdict.REFUSE, (*found, _deferred(state, raw_device)), mark_development=mark, **base)
    if compat.SAFE_MODE not in codes:
        return FlashDecision(Verdict.SEND, found, mark_development=mark, **base)
    needed = requirement.min_release
    assert needed is not None  # FS113 (dependency newer than every release) was handled above
    facts = device_facts(raw_device, state)
    plan = delivery.plan_flash(facts, needed, app_bytes=app_bytes)
    base.update(needed_release=needed, plan=plan, mark_development=mark)
    path = plan.decision.path
    if path == policy.UpgradePath.RUNS:
        return FlashDecision(Verdict.SEND, found, **base)
    if path == policy.UpgradePath.UNKNOWN:
        unknown = refuse_unreadable(state.name, plan.decision.reason)
        return FlashDecision(Verdict.REFUSE, found + unknown.findings, **base)
    if path == policy.UpgradePath.STUCK:
        return FlashDecision(Verdict.REFUSE, (*found, _stuck(state, plan, needed, facts)), **base)
    if not allow_device_os_update:
        return FlashDecision(Verdict.REFUSE, (*found, _needs_update(state, plan, needed)), **base)
    return FlashDecision(Verdict.SEND_WITH_UPDATE, (*found, _update_allowed(state, plan, needed)), **base)


# ------------------------------------------------------------------------------------------ findings


def _label(state: compat.DeviceState) -> str:
    found = platforms.find(state.platform_id)
    return f"{state.name} ({found.display_name if found else f'platform {state.platform_id}'}, Device OS {state.device_os})"


def _plan_facts(state: compat.DeviceState, plan: delivery.DeliveryPlan, needed: str) -> dict[str, Any]:
    return {
        "device": state.name,
        "device_id": state.device_id,
        "device_release": state.device_os,
        "needs_release": needed,
        "path": str(plan.decision.path),
        "rule": plan.decision.rule,
        "total_bytes": plan.total_bytes,
        "device_os_bytes": plan.total_bytes - plan.app_bytes,
        "reboots": plan.reboots,
        "downtime_seconds": None if plan.downtime_seconds is None else round(plan.downtime_seconds, 1),
        "modules": [s.module.name for s in plan.steps],
    }


def update_fix(state: compat.DeviceState, release: str, nbytes: int) -> Fix:
    """The "update the device first" action: ``fieldsafe update-os`` (CLI) / the planned update (editor)."""
    return Fix(
        "update-os",
        f"Update Device OS first (~{kb(nbytes)}): fieldsafe update-os {state.name} --to {release}",
        {
            "device": state.name,
            "release": release,
            "bytes": nbytes,
            "command": ["update-os", state.name, "--to", release],
        },
    )


def fix_commands(finding: Finding) -> list[str]:
    """The finding's Device OS update fixes as the command that does it (``fieldsafe update-os DEV --to REL``).

    Why here: FS101's "Update the device first" (compat) and FS602/FS604's update fix mean the same action;
    the CLI prints it as a command to run, the editor runs it as ``fieldsafe.server.updateOs``.
    """
    out = []
    for fix in finding.fixes:
        if fix.kind in ("update-device", "update-os") and fix.params.get("device") and fix.params.get("release"):
            out.append(f"fieldsafe update-os {fix.params['device']} --to {fix.params['release']}")
    return out


def _retarget_fix(state: compat.DeviceState) -> Fix:
    return Fix(
        "retarget",
        f"Retarget to {state.device_os} (what {state.name} runs) and rebuild",
        {"release": state.device_os, "device": state.name},
    )


def _needs_update(state: compat.DeviceState, plan: delivery.DeliveryPlan, needed: str) -> Finding:
    cost = plan_summary(plan, state.cellular)
    return Finding(
        NEEDS_DEVICE_OS_UPDATE,
        Severity.ERROR,
        f"{_label(state)} would not run this app as it is: it needs Device OS {needed}. Flashed anyway, the cloud "
        f"would update it: {cost}. Refused, nothing sent: pass --allow-device-os-update to accept that cost, "
        f"update the device on purpose first (fieldsafe update-os), or retarget the build to {state.device_os}.",
        facts=_plan_facts(state, plan, needed),
        fixes=(update_fix(state, needed, _update_bytes(state, needed, plan)), _retarget_fix(state)),
    )


def _update_bytes(state: compat.DeviceState, needed: str, plan: delivery.DeliveryPlan) -> int:
    update = delivery.plan_update_os(state.facts(), needed)
    return update.total_bytes if update.steps else plan.module_bytes


def _update_allowed(state: compat.DeviceState, plan: delivery.DeliveryPlan, needed: str) -> Finding:
    return Finding(
        DEVICE_OS_UPDATE_ALLOWED,
        Severity.WARNING,
        f"{_label(state)} needs Device OS {needed} for this app; --allow-device-os-update accepts the cloud's "
        f"update: {plan_summary(plan, state.cellular)}.",
        facts=_plan_facts(state, plan, needed),
    )


def _stuck(state: compat.DeviceState, plan: delivery.DeliveryPlan, needed: str, facts: policy.DeviceFacts) -> Finding:
    fixes = [_retarget_fix(state)]
    update = delivery.plan_update_os(facts, needed)  # can the modules be sent on purpose, and at what cost?
    can_update = update.decision.path == policy.UpgradePath.PLANNED
    if can_update:
        fixes.insert(0, update_fix(state, needed, update.total_bytes))
    where = "update it on purpose first (fieldsafe update-os) or retarget" if can_update else "retarget"
    return Finding(
        WOULD_BE_STUCK,
        Severity.ERROR,
        f"{_label(state)} would boot this app (it needs Device OS {needed}) in Safe Mode and stay there: "
        f"{_sentence(plan.decision.reason)} Refused even with --allow-device-os-update, nothing sent; {where} the build "
        f"to {state.device_os}.",
        facts=_plan_facts(state, plan, needed),
        fixes=tuple(fixes),
    )


def _updates_disabled(raw: Mapping[str, Any], state: compat.DeviceState) -> bool:
    """The policy's DEFERRED row: with updates disabled (and not forced) the device refuses every OTA."""
    facts = device_facts(raw, state)
    return not facts.updates_enabled and not facts.updates_forced


def _deferred(state: compat.DeviceState, raw: Mapping[str, Any]) -> Finding:
    how = (
        "set firmware_updates_forced for it (console: Force enable OTA updates) or have the app call "
        "System.enableUpdates()"
        if state.in_product
        else "have the app call System.enableUpdates()"
    )
    return Finding(
        UPDATES_DISABLED,
        Severity.ERROR,
        f"{_label(state)} reports updates disabled (System.disableUpdates()), so it refuses over-the-air updates: "
        f"the flash would not be applied and the device keeps running its current app. Nothing was sent; {how}, "
        "then flash again.",
        facts={
            "device": state.name,
            "device_id": state.device_id,
            "firmware_updates_enabled": False,
            "firmware_updates_forced": bool(raw.get("firmware_updates_forced")),
            "product_id": state.product,
        },
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _offline(state: compat.DeviceState) -> Finding:
    return Finding(
        DEVICE_OFFLINE,
        Severity.ERROR,
        f"{_label(state)} is offline: an over-the-air flash only goes through while the device is connected. "
        "Nothing was sent; try again when it is online.",
        facts={"device": state.name, "device_id": state.device_id, "last_heard": state.last_heard},
    )


def marked_development(state: compat.DeviceState) -> Finding:
    """Said when the flash marked a product device as a development device (as particle-cli does)."""
    return Finding(
        MARKED_DEVELOPMENT,
        Severity.INFO,
        f"{state.name} is in product {state.product_id}: marked it as a development device first (as particle-cli "
        "does), so the product's fleet release does not overwrite this flash. Unmark it in the console (or "
        "`PUT /v1/products/:p/devices/:id {development: false}`) to return it to the fleet release.",
        facts={"device": state.name, "device_id": state.device_id, "product_id": state.product_id},
    )


def not_confirmed(state: compat.DeviceState | None, outcome: str, detail: str) -> Finding:
    """The flash was sent but the device did not come back running it (failed / timeout / cancelled)."""
    name = state.name if state else "the device"
    return Finding(
        FLASH_NOT_CONFIRMED,
        Severity.ERROR,
        f"Sent to {name}, but {detail}.",
        facts={"device": name, "outcome": outcome},
    )
