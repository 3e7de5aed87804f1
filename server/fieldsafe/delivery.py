"""The delivery plan: which modules go over the air, in what order, and what that costs a device.

Why: ``fieldsafe flash`` and ``fieldsafe update-os`` must say *before* anything is sent what the device
will go through (combined OTA, Safe Mode with reboots, or stuck), how many bytes that is over cellular
or Wi-Fi, and how long the app will not run; ``fleet`` adds the same figures up over a product; the
emulator's simulator spends exactly these bytes. The path comes from :mod:`fieldsafe.policy` (the one
table), the modules and sizes from :mod:`fieldsafe.osmodules`.

Timing model (documented in docs/emulator.md; the simulator's clock uses the same numbers):
- cellular throughput: 373,462 bytes in about 73 s in the one measured combined OTA (firmware-update-events.md),
  so about 5,100 B/s;
- Wi-Fi throughput: 50,000 B/s (assumed; no measured figure found);
- a reboot and reconnect: 15 s (assumed).

Pure: no network, no editor imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldsafe import osmodules
from fieldsafe.osmodules import ModuleSpec, release_modules
from fieldsafe.policy import Decision, DeviceFacts, UpgradePath, decide, decide_update, intermediate_releases
from fieldsafe.versions import catalog

__all__ = [
    "CELLULAR_BYTES_PER_SECOND",
    "REBOOT_SECONDS",
    "WIFI_BYTES_PER_SECOND",
    "DeliveryPlan",
    "DeliveryStep",
    "ModuleSpec",
    "plan_flash",
    "plan_update_os",
    "release_modules",
    "transfer_seconds",
]

CELLULAR_BYTES_PER_SECOND = 373_462 / 73
WIFI_BYTES_PER_SECOND = 50_000.0
REBOOT_SECONDS = 15.0


def transfer_seconds(nbytes: int, cellular: bool) -> float:
    """Seconds an OTA transfer of ``nbytes`` takes by the shared timing model."""
    rate = CELLULAR_BYTES_PER_SECOND if cellular else WIFI_BYTES_PER_SECOND
    return nbytes / rate


@dataclass(frozen=True)
class DeliveryStep:
    """One module sent on its own (or, on the combined path, as part of the one transfer)."""

    module: ModuleSpec
    release: str  # the release the module belongs to
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.module.name,
            "function": self.module.function,
            "index": self.module.index,
            "version": self.module.version,
            "bytes": self.module.bytes,
            "size_source": self.module.size_source,
            "release": self.release,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DeliveryPlan:
    """What a flash or a planned update does to one device.

    ``downtime_seconds`` is how long the app does not run; None means indefinitely (a stuck device, or a
    refused/unknown plan). ``total_bytes`` is everything over the air: the app plus every step (0 for a
    deferred flash: the device refuses the OTA while updates are disabled, so nothing is sent).
    """

    platform_id: int
    from_release: str | None
    to_release: str
    decision: Decision
    steps: tuple[DeliveryStep, ...]
    app_bytes: int
    total_bytes: int
    reboots: int
    downtime_seconds: float | None
    intermediate_releases: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cellular: bool = False

    @property
    def path(self) -> UpgradePath:
        return self.decision.path

    @property
    def module_bytes(self) -> int:
        return sum(s.module.bytes for s in self.steps)

    def to_json(self) -> dict[str, object]:
        return {
            "platform_id": self.platform_id,
            "from_release": self.from_release,
            "to_release": self.to_release,
            "path": str(self.decision.path),
            "rule": self.decision.rule,
            "certainty": self.decision.certainty,
            "reason": self.decision.reason,
            "source": self.decision.source,
            "steps": [s.to_json() for s in self.steps],
            "app_bytes": self.app_bytes,
            "module_bytes": self.module_bytes,
            "total_bytes": self.total_bytes,
            "reboots": self.reboots,
            "downtime_seconds": self.downtime_seconds,
            "intermediate_releases": list(self.intermediate_releases),
            "notes": list(self.notes),
            "cellular": self.cellular,
        }


def _steps(device: DeviceFacts, to_release: str, reason: str) -> tuple[DeliveryStep, ...]:
    installed = osmodules.installed_modules(device.platform_id, device.release)
    missing = osmodules.modules_to_send(device.platform_id, installed, to_release)
    return tuple(DeliveryStep(m, to_release, reason) for m in missing)


def _notes(steps: tuple[DeliveryStep, ...]) -> tuple[str, ...]:
    guessed = sorted({f"{s.module.name}: {s.module.size_source}" for s in steps if s.module.estimated})
    return tuple(f"size {g}" for g in guessed)


def _canonical(release: str) -> str:
    row = catalog().release(release)
    if row is None:
        raise LookupError(f"release {release!r} is not in fieldsafe's Device OS release table")
    return str(row.version)


def plan_flash(device: DeviceFacts, needed_release: str, *, app_bytes: int = 0) -> DeliveryPlan:
    """What flashing an app that needs ``needed_release`` does to ``device`` (path, modules, bytes, time).

    Raises LookupError for a release not in the table.
    """
    needed = _canonical(needed_release)
    decision = decide(device, needed)
    cellular = device.is_cellular

    def plan(
        steps: tuple[DeliveryStep, ...], reboots: int, downtime: float | None, *, sent: bool = True
    ) -> DeliveryPlan:
        total = (app_bytes if sent else 0) + sum(s.module.bytes for s in steps)
        return DeliveryPlan(
            device.platform_id,
            device.release,
            needed,
            decision,
            steps,
            app_bytes,
            total,
            reboots,
            downtime,
            notes=_notes(steps),
            cellular=cellular,
        )

    if decision.path is UpgradePath.RUNS:
        return plan((), 1, REBOOT_SECONDS)
    if decision.path is UpgradePath.COMBINED_OTA:
        return plan(_steps(device, needed, "sent with the app in one transfer"), 1, REBOOT_SECONDS)
    if decision.path is UpgradePath.HEALER:
        steps = _steps(device, needed, "sent by the Safe Mode healer (one module per reboot)")
        modules_time = sum(transfer_seconds(s.module.bytes, cellular) for s in steps)
        reboots = 1 + len(steps)
        return plan(steps, reboots, modules_time + reboots * REBOOT_SECONDS)
    if decision.path is UpgradePath.DEFERRED:
        return plan(
            (), 0, 0.0, sent=False
        )  # the device refuses the OTA: nothing is sent, its current app keeps running
    return plan((), 1, None)  # stuck or unknown: the app is sent, nothing follows


def plan_update_os(device: DeviceFacts, to_release: str) -> DeliveryPlan:
    """A planned Device OS update, module by module (``fieldsafe update-os``), through documented hops.

    Each step is sent on its own and applied once its dependencies are met, so the device reboots once per
    module; the app keeps running while a module downloads and is down only for the reboots (the current
    app still runs on the newer Device OS). Refused plans (downgrade, past the Gen 2 cap) have no steps.
    """
    target = _canonical(to_release)
    decision = decide_update(device, target)
    cellular = device.is_cellular
    if decision.path is not UpgradePath.PLANNED:
        downtime = 0.0 if decision.path is UpgradePath.RUNS else None
        return DeliveryPlan(
            device.platform_id, device.release, target, decision, (), 0, 0, 0, downtime, cellular=cellular
        )
    assert device.release is not None
    hops = intermediate_releases(device.platform_id, device.release, target)
    steps: list[DeliveryStep] = []
    installed = osmodules.installed_modules(device.platform_id, device.release)
    for release in (*hops, target):
        why = "intermediate release (direct jump not allowed)" if release != target else "target release"
        for module in osmodules.modules_to_send(device.platform_id, installed, release):
            steps.append(DeliveryStep(module, release, why))
            installed[module.key] = module.version
    total = sum(s.module.bytes for s in steps)
    return DeliveryPlan(
        device.platform_id,
        device.release,
        target,
        decision,
        tuple(steps),
        0,
        total,
        len(steps),
        len(steps) * REBOOT_SECONDS,
        hops,
        _notes(tuple(steps)),
        cellular,
    )
