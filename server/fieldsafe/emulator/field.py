"""The field behind the emulated cloud: OTA flashes and their consequences, on an accelerated clock.

Why: fieldsafe claims to prevent Safe Mode, wasted cellular data and reboots; those claims are measured here,
offline. A flashed app replaces the device's app; the device checks module dependencies at boot the way Device
OS does (particle-domain.md §2.1: same function and index, version >=); an unmet dependency sends it into Safe
Mode, and then the ONE policy table (``fieldsafe.policy.decide``, the table compat predicts with) says whether
the cloud heals it, combines the update into one transfer, or leaves it stuck. The mechanics (which module is
missing, which goes first, what it weighs) are the device's and the healer's, computed here from the modules
of each release (``fieldsafe.delivery.release_modules``) and the module files the emulator serves
(``osfiles.py``): a prediction that disagrees with this simulation is a bug one of the two can show.

Every device keeps a ledger (bytes over the air, Safe Mode entries, reboots, time not running the app, Device OS,
app hash) served at ``GET /__emulator/field``. Time is simulated (:class:`SimClock`): ``speed`` simulated seconds
per real second, ``manual`` (advanced by ``POST /__emulator/clock``) or ``instant`` (each step runs as soon as it
is scheduled). Rules and sources: docs/emulator.md "Field simulator".
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fieldsafe import modules, platforms
from fieldsafe.emulator.devicecheck import AppImage, Installed, describe, unmet
from fieldsafe.emulator.events import EventBus
from fieldsafe.emulator.simclock import SimClock
from fieldsafe.emulator.state import Device, iso, utcnow
from fieldsafe.versions import catalog

FLASHABLE = {"user_part", "system_part", "bootloader", "radio_stack", "ncp_firmware"}
HISTORY_LIMIT = 200


class FieldError(Exception):
    """A flash the cloud refuses (offline device, wrong platform, not a module): ``status`` + real-style body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"ok": False, "error": error, "error_description": description}


# --------------------------------------------------------------------------------------------------
# what a device carries


@dataclass
class Ledger:
    """What delivering firmware cost one device (the figures tests and the demo read)."""

    bytes_app: int = 0
    bytes_modules: int = 0
    transfers: list[dict[str, Any]] = field(default_factory=list)
    safe_mode_entries: int = 0
    reboots: int = 0
    downtime: float = 0.0
    down_since: float | None = None
    rejected_modules: int = 0
    deferred_updates: int = 0
    decision: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def downtime_at(self, now: float) -> float:
        return self.downtime + (now - self.down_since if self.down_since is not None else 0.0)


@dataclass
class DeviceSim:
    device_id: str
    installed: dict[tuple[str, int], Installed]
    app: AppImage | None
    os_known: bool
    ledger: Ledger = field(default_factory=Ledger)
    generation: int = 0
    running_app: bool = True
    pending: list[Any] = field(default_factory=list)  # what the next reboot applies (app and/or modules)
    # modules the healer already sent in this Safe Mode episode: a module that travels with another
    # (``sent_with``, the rtl872x prebootloader) stays "missing" until its companion is installed
    healer_sent: set[tuple[str, int, int]] = field(default_factory=set)
    # an OTA the device refused because updates are disabled: (binary, cause, userid), sent once they are not
    deferred: tuple[bytes, str, str] | None = None


@dataclass(order=True)
class _Step:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    sim: DeviceSim | None = field(default=None, compare=False)
    generation: int = field(default=0, compare=False)

    @property
    def live(self) -> bool:
        return self.sim is None or self.sim.generation == self.generation


def _dep_tuple(dep: modules.Dependency) -> tuple[str, int, int]:
    return (modules.function_name(dep.function), dep.index, dep.version)


def _initial_modules(device: Device) -> tuple[dict[tuple[str, int], Installed], bool]:
    """The modules a device runs, from its reported Device OS: ``osmodules.installed_modules`` (the same
    reading the prediction makes; an untabled bootloader counts as unknown, so an upgrade sends one)."""
    from fieldsafe import osmodules
    from fieldsafe.emulator import osfiles

    release = device.system_firmware_version
    have = osmodules.installed_modules(device.platform_id, release)
    specs = osfiles.release_specs(device.platform_id, release) if release and have else ()
    installed = {
        (s.function, s.index): Installed(
            s.name, s.function, s.index, s.version, tuple(s.dependencies), release, s.bytes
        )
        for s in specs
        if (s.function, s.index) in have
    }
    return installed, bool(specs)


# --------------------------------------------------------------------------------------------------
# the simulator


class FieldSimulator:
    """Devices' flashes, boots, Safe Mode and healing, as discrete steps on a :class:`SimClock`.

    ``lock`` is the emulator's state lock (device objects are shared with the API routes). Steps run when
    simulated time reaches them: from the ticker thread (``speed`` mode), from :meth:`advance` (admin clock),
    or at once (``instant``).
    """

    def __init__(self, state: Any, bus: EventBus, lock: threading.RLock, clock: SimClock | None = None) -> None:
        self.state = state
        self.bus = bus
        self.lock = lock
        self.clock = clock or SimClock()
        self.sims: dict[str, DeviceSim] = {}
        self._steps: list[_Step] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._now: float | None = None  # time of the step being run (event timestamps)
        bus.set_clock(lambda: iso(self.clock.wall(self._now)) or "")

    # ---- lifecycle and time ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._tick, name="fieldsafe-field", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _tick(self) -> None:
        with self._wake:
            while not self._stopping:
                self._run_due()
                wait = self.clock.real_wait(self._steps[0].at) if self._steps else None
                self._wake.wait(timeout=None if wait is None else max(wait, 0.001))

    def _run_due(self, until: float | None = None) -> None:
        """Run every step due by now (or by ``until``), in time order; steps may schedule more steps."""
        limit = self.clock.now() if until is None else until
        if self.clock.mode == "instant":
            limit = float("inf")
        while self._steps and self._steps[0].at <= limit:
            step = heapq.heappop(self._steps)
            if not step.live:
                continue
            self.clock.jump_to(step.at)
            self._now = step.at
            try:
                step.action()
            finally:
                self._now = None

    def advance(self, seconds: float) -> None:
        with self._wake:
            target = self.clock.now() + max(0.0, seconds)
            self._run_due(until=target)
            self.clock.jump_to(target)
            self._wake.notify_all()

    def settle(self) -> float:
        """Run every pending step now (jumping time); returns the simulated seconds that took."""
        with self._wake:
            before = self.clock.now()
            self._run_due(until=float("inf"))
            self._wake.notify_all()
            return self.clock.now() - before

    def set_speed(self, speed: float | str) -> None:
        with self._wake:
            self.clock.set_speed(speed)
            if self.clock.mode == "instant":
                self._run_due()
            self._wake.notify_all()

    def idle(self) -> bool:
        with self.lock:
            return not self._steps

    def _t(self) -> float:
        return self._now if self._now is not None else self.clock.now()

    def _at(self, delay: float, sim: DeviceSim, action: Callable[[], None]) -> None:
        """Schedule ``action`` ``delay`` simulated seconds from now, dropped if a newer flash supersedes it."""
        step = _Step(self._t() + max(0.0, delay), next(self._seq), action, sim, sim.generation)
        heapq.heappush(self._steps, step)
        if self.clock.mode == "instant" and self._now is None:
            self._run_due()
        else:
            self._wake.notify_all()

    # ---- device bookkeeping --------------------------------------------------------------------------

    def sim(self, device: Device) -> DeviceSim:
        sim = self.sims.get(device.id)
        if sim is None:
            installed, known = _initial_modules(device)
            sim = DeviceSim(device.id, installed, None, known)
            if device.status == "safe_mode":  # the state file says so: its app is not running (since t = 0)
                sim.running_app = False
                sim.ledger.down_since = 0.0
            self.sims[device.id] = sim
        return sim

    def _note(self, sim: DeviceSim, what: str, **extra: Any) -> None:
        entry = {"at": round(self._t(), 3), "what": what, **extra}
        sim.ledger.history.append(entry)
        del sim.ledger.history[:-HISTORY_LIMIT]

    def _publish(self, device: Device, name: str, data: str, *, userid: str = "") -> None:
        sim = self.sims.get(device.id)
        version = 0
        if (
            sim is not None
            and sim.running_app
            and sim.app is not None
            and sim.app.product_version not in (None, 0xFFFF)
        ):
            version = sim.app.product_version or 0
        self.bus.publish(
            name,
            data,
            coreid=device.id,
            product_id=device.product_id if device.in_product else None,
            version=version,
            userid=userid,
        )

    def _facts(self, device: Device) -> Any:
        from fieldsafe import policy

        return policy.DeviceFacts(
            platform_id=device.platform_id,
            release=device.system_firmware_version,
            in_product=device.in_product,
            development=device.development,
            updates_enabled=device.firmware_updates_enabled,
            updates_forced=device.firmware_updates_forced,
            cellular=device.cellular,
            healer=getattr(device, "healer", None),
        )

    # ---- the request side ----------------------------------------------------------------------------

    def deliver(self, device: Device, binary: bytes, *, cause: str = "flash", userid: str = "") -> AppImage | Installed:
        """Start sending ``binary`` to ``device``; raises :class:`FieldError` for what the cloud refuses."""
        try:
            info = modules.parse_module(binary)
        except modules.ModuleParseError as exc:
            raise FieldError(400, "invalid_binary", f"the file is not a Particle module: {exc.reason}") from None
        platform = platforms.find(device.platform_id)
        if info.platform_id != device.platform_id:
            theirs = platforms.find(info.platform_id)
            raise FieldError(
                400,
                "Platform mismatch",
                f"this binary is for {theirs.display_name if theirs else 'platform'} ({info.platform_id}) but "
                f"{device.name} is {platform.display_name if platform else 'platform'} ({device.platform_id}); "
                "compile it for the device's platform",
            )
        if info.function_name not in FLASHABLE:
            raise FieldError(400, "invalid_binary", f"a {info.function_name} module cannot be flashed over the air")
        with self._wake:
            if not device.online:
                raise FieldError(400, "Device is offline", f"{device.name} ({device.id}) is not connected to the cloud")
            sim = self.sim(device)
            deps = tuple(_dep_tuple(d) for d in info.dependencies)
            item: AppImage | Installed
            if info.function_name == "user_part":
                item = AppImage(
                    info.sha256_stored,
                    len(binary),
                    info.module_index,
                    info.module_version,
                    deps,
                    info.product_id if info.is_product_firmware else None,
                    info.product_version if info.is_product_firmware else None,
                )
            else:
                item = Installed(
                    _module_name(platform, info),
                    info.function_name,
                    info.module_index,
                    info.module_version,
                    deps,
                    _module_release(device.platform_id, info),
                    len(binary),
                )
            if self._defers(device, sim, item):
                sim.deferred = (bytes(binary), cause, userid)
                sim.ledger.deferred_updates += 1
                self._note(sim, "OTA refused by the device: updates disabled (pending until enabled or forced)")
                self._publish(device, "particle/device/updates/pending", "true")
                return item
            sim.deferred = None
            sim.generation += 1
            if isinstance(item, AppImage):
                sim.healer_sent.clear()
                self._start_app_ota(device, sim, item, cause, userid)
            else:
                self._start_module_ota(device, sim, item, cause, userid)
            return item

    def _defers(self, device: Device, sim: DeviceSim, item: AppImage | Installed) -> bool:
        """The policy's ``deferred`` path: updates disabled (not forced), the device refuses the OTA."""
        from fieldsafe import policy

        if not sim.os_known:
            return False
        if isinstance(item, AppImage):
            needed = self._required_release(device, item.dependencies)
            if not needed:
                return False
            decision = policy.decide(self._facts(device), needed)
            if decision.path == policy.UpgradePath.DEFERRED:
                sim.ledger.decision = _decision_json(decision, needed)
            return decision.path == policy.UpgradePath.DEFERRED
        if item.release is None:
            return False
        return policy.decide_update(self._facts(device), item.release).path == policy.UpgradePath.DEFERRED

    def reconsider(self, device: Device) -> None:
        """Its flags changed: send an OTA it refused (updates now enabled or forced), re-run the healer policy."""
        with self._wake:
            sim = self.sims.get(device.id)
            if sim is not None and sim.deferred is not None and device.online:
                binary, cause, userid = sim.deferred
                self.deliver(device, binary, cause=cause, userid=userid)  # deferred again if still disabled
                return
            if sim is None or device.status != "safe_mode" or not device.online or self._has_steps(sim):
                return
            sim.generation += 1
            self._heal_round(device, sim)

    def _has_steps(self, sim: DeviceSim) -> bool:
        """True while something is on its way to (or booting on) this device."""
        return any(step.sim is sim and step.live for step in self._steps)

    # ---- over the air --------------------------------------------------------------------------------

    def _transfer_seconds(self, device: Device, nbytes: int) -> float:
        from fieldsafe import delivery

        return float(delivery.transfer_seconds(nbytes, bool(device.cellular)))

    @staticmethod
    def _reboot_seconds() -> float:
        from fieldsafe import delivery

        return float(delivery.REBOOT_SECONDS)

    def _record_transfer(self, sim: DeviceSim, kind: str, parts: list[dict[str, Any]], cause: str) -> int:
        total = sum(p["bytes"] for p in parts)
        for part in parts:
            if part["function"] == "user_part":
                sim.ledger.bytes_app += part["bytes"]
            else:
                sim.ledger.bytes_modules += part["bytes"]
        sim.ledger.transfers.append(
            {"at": round(self._t(), 3), "kind": kind, "cause": cause, "bytes": total, "parts": parts}
        )
        return total

    def _start_app_ota(self, device: Device, sim: DeviceSim, app: AppImage, cause: str, userid: str) -> None:
        from fieldsafe import policy

        if cause == "auto-update":
            self._publish(device, "spark/status", "auto-update")
        parts = [
            {
                "name": "app",
                "function": "user_part",
                "index": app.index,
                "version": app.version,
                "release": None,
                "bytes": app.size,
            }
        ]
        decision = self._decide_for(device, sim, app)
        kind = "app"
        sim.pending = [app]
        if decision is not None and decision.path == policy.UpgradePath.COMBINED_OTA:
            needed = self._modules_needed(device, sim, app.dependencies, decision.target)
            if needed:
                kind = "combined"
                sim.pending = [app, *needed]
                parts += [_part(m) for m in needed]
        self._note(sim, f"{kind} OTA started", cause=cause, path=decision.path.value if decision else "runs")
        self._publish(device, "spark/flash/status", "started ", userid=userid)
        total = self._record_transfer(sim, kind, parts, cause)
        self._at(self._transfer_seconds(device, total), sim, lambda: self._transfer_done(device, sim, userid))

    def _start_module_ota(self, device: Device, sim: DeviceSim, module: Installed, cause: str, userid: str) -> None:
        self._note(sim, f"module OTA started: {module.name} v{module.version}", cause=cause)
        self._publish(device, "spark/flash/status", "started ", userid=userid)
        total = self._record_transfer(sim, "module", [_part(module)], cause)

        def arrived() -> None:
            # the device validates a module when the transfer finishes (comm.ota "Validating firmware update")
            rejected = unmet(sim.installed, module.dependencies, replacing=(module.function, module.index))
            self._publish(device, "spark/flash/status", "failed " if rejected else "success ", userid=userid)
            if rejected:
                sim.ledger.rejected_modules += 1
                self._note(
                    sim, f"{module.name} v{module.version} rejected by the device: dependency not met", unmet=rejected
                )
                return
            sim.pending = [module]
            self._reboot(device, sim)

        self._at(self._transfer_seconds(device, total), sim, arrived)

    def _transfer_done(self, device: Device, sim: DeviceSim, userid: str) -> None:
        self._publish(device, "spark/flash/status", "success ", userid=userid)
        self._reboot(device, sim)

    def _reboot(self, device: Device, sim: DeviceSim) -> None:
        """Reset: the device goes offline, applies what arrived, boots and checks its dependencies."""
        sim.ledger.reboots += 1
        if sim.running_app:
            sim.running_app = False
            sim.ledger.down_since = self._t()
        self._publish(device, "spark/status", "offline")
        device.online = False
        self._at(self._reboot_seconds(), sim, lambda: self._boot(device, sim))

    def _boot(self, device: Device, sim: DeviceSim) -> None:
        for item in sim.pending:
            if isinstance(item, AppImage):
                sim.app = item
            else:
                sim.installed[(item.function, item.index)] = item
        sim.pending = []
        self._refresh_reported_os(device, sim)
        device.online = True
        device.last_heard = utcnow()  # real time, like every other device timestamp (ages stay meaningful)
        missing = self._app_unmet(sim)
        if not missing:
            self._run_app(device, sim)
            return
        first_entry = device.status != "safe_mode"
        device.status = "safe_mode"
        if first_entry:
            sim.ledger.safe_mode_entries += 1
        self._note(sim, "booted into Safe Mode", unmet=missing)
        self._publish(device, "spark/status", "online")
        self._publish(
            device,
            "spark/status/safe-mode",
            json.dumps(describe(device, sim.installed, sim.app), separators=(",", ":")),
        )
        self._heal_round(device, sim)

    def _run_app(self, device: Device, sim: DeviceSim) -> None:
        sim.healer_sent.clear()
        device.status = "normal"
        sim.running_app = True
        if sim.ledger.down_since is not None:
            sim.ledger.downtime += self._t() - sim.ledger.down_since
            sim.ledger.down_since = None
        if sim.app is not None and sim.app.product_version is not None and device.in_product:
            device.firmware_version = sim.app.product_version
        self._note(sim, "running the app", device_os=device.system_firmware_version)
        # the order of the firmware-update-events.md captures after an update
        self._publish(device, "spark/status", "online")
        self._publish(device, "spark/device/last_reset", "update")
        self._publish(device, "particle/device/updates/enabled", _flag(device.firmware_updates_enabled))
        self._publish(device, "particle/device/updates/forced", _flag(device.firmware_updates_forced))
        if sim.app is not None:
            self._publish(device, "spark/device/app-hash", sim.app.sha)
        self._publish(device, "particle/device/updates/pending", "false")

    # ---- the healer -----------------------------------------------------------------------------------

    def _decide_for(self, device: Device, sim: DeviceSim, app: AppImage) -> Any:
        """The policy decision for ``app`` on ``device`` (None when its dependencies are met: it just runs)."""
        from fieldsafe import policy

        needed = self._needed_release(device, sim, app.dependencies)
        if needed is None:
            return None
        if needed == "":
            decision = _Decision(policy.UpgradePath.STUCK, "no_release", "documented",
                                 "no Device OS release fieldsafe knows satisfies the app's dependency", "release table", None)  # fmt: skip
        else:
            raw = policy.decide(self._facts(device), needed)
            decision = _Decision(raw.path, raw.rule, raw.certainty, raw.reason, raw.source, needed)
        sim.ledger.decision = _decision_json(decision, decision.target)
        return decision

    def _required_release(self, device: Device, deps: tuple[tuple[str, int, int], ...]) -> str | None:
        """The lowest release whose system part meets the app's system dependency, met or not (None: none asked)."""
        system = [v for function, _, v in deps if function == "system_part"]
        if not system:
            return None
        return _release_for(max(system), device.platform_id) or None

    def _needed_release(self, device: Device, sim: DeviceSim, deps: tuple[tuple[str, int, int], ...]) -> str | None:
        """The lowest release whose system part meets the unmet system dependency; None = nothing unmet, "" = none."""
        if not sim.os_known:
            return None
        missing = unmet(sim.installed, deps)
        if not missing:
            return None
        system = [v for function, _, v in missing if function == "system_part"]
        if not system:
            return ""
        return _release_for(max(system), device.platform_id)

    def _app_unmet(self, sim: DeviceSim) -> list[tuple[str, int, int]]:
        if sim.app is None or not sim.os_known:
            return []
        return unmet(sim.installed, sim.app.dependencies)

    def _modules_needed(
        self, device: Device, sim: DeviceSim, deps: tuple[tuple[str, int, int], ...], release: str | None
    ) -> list[Installed]:
        """The modules of ``release`` the device lacks (older or absent), in install order: what the healer sends.

        The cloud compares the device's modules with the needed release's (``osmodules.modules_to_send``, the
        comparison the prediction makes too); whether and when each one applies is the device's own check.
        """
        from fieldsafe import osmodules

        if not release:
            return []
        have = {key: m.version for key, m in sim.installed.items()}
        try:
            missing = osmodules.modules_to_send(device.platform_id, have, release)
        except LookupError:
            return []
        out = [
            Installed(s.name, s.function, s.index, s.version, tuple(s.dependencies), release, s.bytes) for s in missing
        ]
        if unmet({**sim.installed, **{(m.function, m.index): m for m in out}}, deps):
            return []  # even the whole release would not meet the app's dependency
        return out

    def _heal_round(self, device: Device, sim: DeviceSim) -> None:
        """In Safe Mode: the policy says heal (send the next missing module) or leave it stuck."""
        from fieldsafe import policy

        if sim.app is None:
            return
        decision = self._decide_for(device, sim, sim.app)
        if decision is None:
            return
        if decision.path not in (policy.UpgradePath.HEALER, policy.UpgradePath.COMBINED_OTA):
            self._note(sim, f"stuck in Safe Mode ({decision.rule})", reason=decision.reason)
            return
        needed = [
            m
            for m in self._modules_needed(device, sim, sim.app.dependencies, decision.target)
            if (m.function, m.index, m.version) not in sim.healer_sent
        ]
        module = next(
            (m for m in needed if not unmet(sim.installed, m.dependencies, replacing=(m.function, m.index))), None
        )
        if module is None:
            self._note(sim, "stuck in Safe Mode (no missing module can be applied)", needed=[m.name for m in needed])
            return
        from fieldsafe.emulator import osfiles

        platform = platforms.get(device.platform_id)
        spec_name = osfiles.file_name(platform, module, module.release or "") if module.release else module.name
        sim.healer_sent.add((module.function, module.index, module.version))
        self._note(sim, f"healer sends {module.name} v{module.version}", release=module.release)
        self._publish(device, "spark/safe-mode-updater/updating", spec_name)
        total = self._record_transfer(sim, "module", [_part(module)], "healer")
        last = len(needed) == 1

        def arrived() -> None:
            sim.pending = [module]
            if last:
                self._publish(device, "spark/flash/status", "success ")
            self._reboot(device, sim)

        self._at(self._transfer_seconds(device, total), sim, arrived)

    # ---- reporting ------------------------------------------------------------------------------------

    def _refresh_reported_os(self, device: Device, sim: DeviceSim) -> None:
        """``system_firmware_version`` follows the system part apps depend on (release table lookup)."""
        platform = platforms.find(device.platform_id)
        if platform is None or platform.monolithic:
            return
        function, index = platform.user_part_dependency(device.system_firmware_version or "0.0.0")
        part = sim.installed.get((modules.function_name(function), index))
        if part is None:
            return
        rows = catalog().releases_for_module(part.version, device.platform_id)
        if rows:
            device.system_firmware_version = str(rows[0].version)

    def ledger_json(self, device: Device) -> dict[str, Any]:
        sim = self.sim(device)
        ledger = sim.ledger
        now = self.clock.now()
        return {
            "id": device.id,
            "name": device.name,
            "platform_id": device.platform_id,
            "product_id": device.product_id if device.in_product else None,
            "online": device.online,
            "status": device.status,
            "running_app": sim.running_app,
            "device_os": device.system_firmware_version,
            "device_os_known": sim.os_known,
            "modules": [
                {"name": m.name, "function": m.function, "index": m.index, "version": m.version, "release": m.release}
                for m in sorted(sim.installed.values(), key=lambda m: (m.function, m.index))
            ],
            "app_hash": sim.app.sha if sim.app else None,
            "app_product_version": sim.app.product_version if sim.app else None,
            "bytes_total": ledger.bytes_app + ledger.bytes_modules,
            "bytes_app": ledger.bytes_app,
            "bytes_modules": ledger.bytes_modules,
            "transfers": ledger.transfers,
            "safe_mode_entries": ledger.safe_mode_entries,
            "reboots": ledger.reboots,
            "downtime_seconds": round(ledger.downtime_at(now), 3),
            "rejected_modules": ledger.rejected_modules,
            "deferred_updates": ledger.deferred_updates,
            "update_pending": sim.deferred is not None,
            "decision": ledger.decision,
            "updating": self._has_steps(sim),
            "history": ledger.history,
        }

    def ledger(self, device_id: str | None = None) -> dict[str, Any]:
        """``GET /__emulator/field``: every device that has been touched (or one device, by id or name)."""
        with self._wake:
            self._run_due()
            if device_id is not None:
                device = self.state.find_device(device_id)
                if device is None:
                    raise KeyError(device_id)
                return {"clock": self.clock.to_json(), "device": self.ledger_json(device)}
            devices = {d.id: self.ledger_json(d) for d in self.state.devices if d.id in self.sims}
            pending = sum(1 for step in self._steps if step.live)
            return {"clock": self.clock.to_json(), "pending_steps": pending, "devices": devices}

    def reset(self) -> None:
        """Finish what is under way (settle), then zero every ledger; devices keep their Device OS, app, status."""
        with self._wake:
            self._run_due(until=float("inf"))
            self._steps.clear()
            for sim in self.sims.values():
                sim.generation += 1
                sim.ledger = Ledger()
                sim.pending = []
                if not sim.running_app:
                    sim.ledger.down_since = self.clock.now()


@dataclass(frozen=True)
class _Decision:
    path: Any
    rule: str
    certainty: str
    reason: str
    source: str
    target: str | None


def _release_for(module_version: int, platform_id: int) -> str:
    """The lowest release whose system module is >= ``module_version`` ("" when none is known)."""
    row = catalog().min_release_for_dependency(module_version, platform_id)
    if row is None:  # no release of this platform has it (e.g. past the Gen 2 cap): the table says why
        rows = [r for r in catalog().releases(include_prereleases=False) if r.module_version >= module_version]
        row = min(rows, key=lambda r: (r.module_version, r.version)) if rows else None
    return str(row.version) if row is not None else ""


def _module_release(platform_id: int, info: modules.ModuleInfo) -> str | None:
    """The release a module file belongs to: by system module version, or a bootloader by the table's column."""
    if info.function_name == "system_part":
        rows = catalog().releases_for_module(info.module_version, platform_id)
        return str(rows[0].version) if rows else None
    if info.function_name == "bootloader" and info.module_index == 0:
        rows = [r for r in catalog().releases(platform_id) if r.bootloader_version == info.module_version]
        return str(rows[0].version) if rows else None
    return None


def _decision_json(decision: Any, needed: str | None) -> dict[str, Any]:
    then = getattr(decision, "then", None)
    return {
        "path": decision.path.value,
        "rule": decision.rule,
        "certainty": decision.certainty,
        "reason": decision.reason,
        "source": decision.source,
        "needed_release": needed,
        "then": then.value if then is not None else None,
    }


def _part(module: Installed) -> dict[str, Any]:
    return {
        "name": module.name,
        "function": module.function,
        "index": module.index,
        "version": module.version,
        "release": module.release,
        "bytes": module.size,
    }


def _module_name(platform: platforms.Platform | None, info: modules.ModuleInfo) -> str:
    if info.function_name == "system_part" and platform is not None:
        return platform.system_part_file(info.module_index).removeprefix(platform.name + "-")
    return {"radio_stack": "softdevice", "ncp_firmware": "ncp"}.get(info.function_name, info.function_name)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def user_id(username: str) -> str:
    """A stable 24-hex user id for ``userid`` of user-initiated events (the real one is the account's id)."""
    return hashlib.sha256(username.encode()).hexdigest()[:24]
