"""Check a project's targets: the pin, and the devices and fleets (``fieldsafe.fleetcheck``) it is meant to run on.

Why one module for both faces: ``fieldsafe check``/``fieldsafe compile`` (what CI runs) and the
language server (what the editor shows) must reach the same verdict for the same project, including
when a target could not be checked at all (no token, cloud unreachable). The faces only fetch and
format; the decisions are here:

* :func:`project_targets` says *what* the targets are (``particle.targetDevice`` or an explicit
  ``device:NAME``; fleet targets plug in as ``kind="fleet"`` refs);
* :func:`lookup_targets` / :func:`lookup_device` fetch their state (blocking; the language server
  calls :func:`lookup_device` from a worker thread through its memoizing resolver);
* :func:`evaluate` turns pin + fetched state into a :class:`TargetReport` (pure, offline-testable);
* :func:`check_project_targets` is the three in a row, for the CLI.

A target that could not be looked up is never silently skipped: it becomes FS403 (the cloud does not
know the name) or FS404 (:func:`target_unchecked`: the lookup failed, with the fix), and
:meth:`TargetReport.exit_status` is the one documented CI policy.

No network imports at module load: the cloud module (and ``requests``) loads only when a lookup runs,
which keeps ``fieldsafe lsp`` start-up and ``fieldsafe check`` without a device target fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fieldsafe import compat, platforms
from fieldsafe.findings import Finding, Severity

if TYPE_CHECKING:
    from pathlib import Path

    from fieldsafe.cloud import CloudError, ParticleCloud
    from fieldsafe.project import WorkbenchSettings
    from fieldsafe.targets import Target

DEVICE_KEY = "particle.targetDevice"
DEVICE_NOT_FOUND = "FS403"
TARGET_UNCHECKED = "FS404"
UNKNOWN_RELEASE = "FS104"
# Codes that fail a CI run whatever their severity: an unknown release (a typo of a future release is a
# warning in the editor, where the table may simply be older than the release) and a target that could
# not be checked (a green CI run must mean the devices were checked).
FAILS_CI = frozenset({UNKNOWN_RELEASE, TARGET_UNCHECKED})
# Target findings that mean the asked-for build cannot be made as asked: ``compile`` prints them and does
# not upload (another platform than the device's, a release the table or the platform does not have).
BLOCKS_BUILD = frozenset({"FS102", UNKNOWN_RELEASE, "FS105", "FS106", "FS107"})


@dataclass(frozen=True)
class TargetRef:
    """One thing the build must run on: ``kind`` "device" (name or id) or "fleet" (added by issue 11)."""

    kind: str
    name: str
    setting: str = DEVICE_KEY  # where the user said it: "particle.targetDevice", "--target device:NAME"
    groups: tuple[str, ...] = ()  # fleet: fieldsafe.targetGroups / --groups
    allow_healed: bool = False  # fleet: fieldsafe.allowHealedUpdates / --allow-healed-updates

    def label(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Lookup:
    """The cloud's answer for one target: its JSON, how old it is (None = live), or why it failed."""

    raw: dict[str, Any] | None
    age_seconds: float | None = None
    error: CloudError | None = None
    listing: Any = None  # fleet: the fieldsafe.fleetlisting.FleetListing (raw is then {"product": name})


@dataclass(frozen=True)
class CheckedTarget:
    """A target whose state was known: live (``age_seconds`` None) or the cached last known state."""

    ref: TargetRef
    state: compat.DeviceState

    @property
    def age_seconds(self) -> float | None:
        return self.state.age_seconds

    def describe(self) -> str:
        """``field-unit-7 (Electron, Device OS 0.6.4, last known state 3 h old)``."""
        platform = platforms.find(self.state.platform_id)
        bits = [platform.display_name if platform else f"platform {self.state.platform_id}"]
        bits.append(f"Device OS {self.state.device_os}" if self.state.device_os else "Device OS unknown")
        if self.age_seconds is not None:
            bits.append(f"last known state, {compat.age_phrase(self.age_seconds)} old")
        return f"{self.ref.name} ({', '.join(bits)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.ref.kind,
            "name": self.ref.name,
            "setting": self.ref.setting,
            "checked": True,
            "platform_id": self.state.platform_id,
            "device_os": self.state.device_os,
            "age_seconds": self.age_seconds,
            "source": "live" if self.age_seconds is None else "cache",
            "reason": None,
        }


@dataclass(frozen=True)
class UncheckedTarget:
    """A target the checks could not look at, and why (the matching finding says how to fix it)."""

    ref: TargetRef
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.ref.kind,
            "name": self.ref.name,
            "setting": self.ref.setting,
            "checked": False,
            "platform_id": None,
            "device_os": None,
            "age_seconds": None,
            "source": None,
            "reason": self.reason,
        }


@dataclass
class TargetReport:
    """What checking the targets found; ``release``/``platform_id`` are what the build was checked as."""

    release: str | None
    platform_id: int | None
    findings: list[Finding] = field(default_factory=list)
    checked: list[CheckedTarget] = field(default_factory=list)
    unchecked: list[UncheckedTarget] = field(default_factory=list)
    fleets: list[Any] = field(default_factory=list)  # fieldsafe.fleetcheck.CheckedFleet

    def exit_status(self, more: Iterable[Finding] = ()) -> int:
        """The CI policy (README "Exit status"): 1 on any error, unknown release or unchecked target, else 0."""
        return exit_status([*self.findings, *more])

    def blocking(self) -> list[Finding]:
        """The findings that stop ``compile`` before it uploads (:data:`BLOCKS_BUILD`, errors only)."""
        return [f for f in self.findings if f.code in BLOCKS_BUILD and f.severity == Severity.ERROR]

    def to_json(self) -> dict[str, Any]:
        """The ``target`` object of ``fieldsafe check --json`` / ``compile --json``."""
        platform = platforms.find(self.platform_id) if self.platform_id is not None else None
        return {
            "release": self.release,
            "platform": platform.name if platform else None,
            "platform_id": self.platform_id,
            "targets": [t.to_json() for t in self.checked]
            + [t.to_json() for t in self.fleets]
            + [t.to_json() for t in self.unchecked],
        }


def exit_status(findings: Iterable[Finding]) -> int:
    """0 when the findings let a CI run pass, 1 when not (see :data:`FAILS_CI`)."""
    return 1 if any(f.severity == Severity.ERROR or f.code in FAILS_CI for f in findings) else 0


# ------------------------------------------------------------------------------------------ what to check


def project_targets(
    settings: WorkbenchSettings | None, *, device_override: str | None = None, fleet_override: Any = None
) -> list[TargetRef]:
    """The project's targets: an explicit ``device:NAME`` replaces ``particle.targetDevice``; an explicit
    ``product:SLUG`` (a ``fleettarget.FleetTarget``) replaces ``fieldsafe.targetProduct``. Both kinds are checked."""
    refs: list[TargetRef] = []
    if device_override is not None:
        refs.append(TargetRef("device", device_override, f"--target device:{device_override}"))
    elif settings is not None and settings.target_device:
        refs.append(TargetRef("device", settings.target_device, DEVICE_KEY))
    fleet = fleet_override if fleet_override is not None else getattr(settings, "fleet", None)
    if fleet is not None:
        from fieldsafe import fleetcheck

        refs.append(fleetcheck.fleet_ref(fleet))
    return refs


def project_root(path: Path) -> Path:
    """The project a CLI path belongs to, walking up as the editor does (run from ``src/``: its parent)."""
    from fieldsafe.project import find_project_root

    return find_project_root(path) or path


# ------------------------------------------------------------------------------------------ fetching


def open_cloud(api_url: str | None = None) -> tuple[ParticleCloud | None, CloudError | None]:
    """The cloud client from the environment / particle-cli profile, or the configuration error."""
    from fieldsafe import cloud

    try:
        return cloud.ParticleCloud(cloud.resolve_config(explicit_url=api_url)), None
    except cloud.CloudError as exc:
        return None, exc


def lookup_device(client: ParticleCloud, name: str, *, offline: bool = False) -> Lookup:
    """One device: live when possible, else (any lookup failure but 404/403, or ``offline``) the cached
    state + age, with the error that made it stand in (``cloud.ParticleCloud.lookup_device``)."""
    from fieldsafe import cloud

    if offline:
        hit = client.cached(f"device:{name}")
        if hit is None:
            return Lookup(
                None,
                None,
                cloud.Offline(f"offline mode and no cached state for device '{name}'", host=client.config.host),
            )
        return Lookup(hit[0], hit[1])
    # every failure but the cloud's "not there" falls back to the last known state, keeping the error
    return Lookup(*client.lookup_device(name))


def lookup_targets(
    refs: Iterable[TargetRef],
    client: ParticleCloud | None,
    *,
    offline: bool = False,
    cloud_error: CloudError | None = None,
) -> dict[TargetRef, Lookup]:
    """Fetch every target's state (blocking). ``cloud_error``: why there is no client, when ``client`` is None."""
    from fieldsafe import cloud

    out: dict[TargetRef, Lookup] = {}
    for ref in refs:
        if client is None:
            error = cloud_error or cloud.NotLoggedIn(f"no Particle Cloud configured; {cloud.NotLoggedIn.hint}")
            out[ref] = Lookup(None, None, error)
        elif ref.kind == "device":
            out[ref] = lookup_device(client, ref.name, offline=offline)
        elif ref.kind == "fleet":
            from fieldsafe import fleetcheck

            out[ref] = fleetcheck.lookup_fleet(client, ref, offline=offline)
    return out


def check_project_targets(
    settings: WorkbenchSettings | None,
    client: ParticleCloud | None,
    target: Target,
    *,
    offline: bool = False,
    cloud_error: CloudError | None = None,
    fleet_override: Any = None,
) -> TargetReport:
    """The CLI's path: the resolved build ``target`` checked against the project's targets.

    A ``device:NAME`` target was looked up while resolving it; its answer is reused, not fetched twice.
    """
    device = target.device_name if target.source == "device" else None
    refs = project_targets(settings, device_override=device, fleet_override=fleet_override)
    known: dict[TargetRef, Lookup] = {}
    if device is not None and target.device is not None:
        known[refs[0]] = Lookup(target.device, target.device_age)
    todo = [r for r in refs if r not in known]
    lookups = {**known, **lookup_targets(todo, client, offline=offline, cloud_error=cloud_error)}
    return evaluate(target.check_spec, target.platform.name, refs, lookups)


# ------------------------------------------------------------------------------------------ judging


def evaluate(
    pin: str | None,
    platform: str | int | None,
    refs: Iterable[TargetRef],
    lookups: Mapping[TargetRef, Lookup],
) -> TargetReport:
    """Pin sanity (``compat.check_target``) plus every target's check, de-duplicated, in that order.

    ``platform`` None builds for the device's platform (nothing to contradict); an explicit or pinned
    platform that differs from a device's is FS102, never a silent switch.
    """
    found = platforms.find(platform) if platform not in (None, "") else None
    report = TargetReport(release=pin, platform_id=found.id if found else None)
    if pin:
        report.findings.extend(compat.check_target(pin, platform))
    for ref in refs:
        lookup = lookups.get(ref)
        if lookup is None:
            continue  # a kind this build does not look up (yet)
        if ref.kind == "device":
            _evaluate_device(report, ref, lookup, pin, platform)
        elif ref.kind == "fleet":
            from fieldsafe import fleetcheck

            fleetcheck.evaluate_fleet(report, ref, lookup, pin, platform)
    report.findings = _unique(report.findings)
    return report


def _evaluate_device(report: TargetReport, ref: TargetRef, lookup: Lookup, pin: str | None, platform: Any) -> None:
    if lookup.raw is None:
        report.unchecked.append(UncheckedTarget(ref, str(lookup.error) if lookup.error else "unknown error"))
        report.findings.extend(lookup_failure_findings(ref, lookup.error))
        return
    state = compat.device_state_from_cloud(lookup.raw, lookup.age_seconds, ref.name)
    report.checked.append(CheckedTarget(ref, state))
    if report.platform_id is None and platform in (None, ""):
        report.platform_id = state.platform_id if platforms.find(state.platform_id) else None
    if not pin or report.platform_id is None:
        return
    needs = compat.BuildNeeds(platform_id=report.platform_id, release=pin, source="pin")
    report.findings.extend(compat.check_build_against_device(needs, state))


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def lookup_failure_findings(ref: TargetRef, error: CloudError | None) -> list[Finding]:
    """FS403 when the cloud does not know the target, FS404 when it could not be asked."""
    from fieldsafe import cloud

    if isinstance(error, cloud.NotFound | cloud.Forbidden):
        return [device_not_found(ref, error)]
    return [target_unchecked(ref, error)]


def device_not_found(ref: TargetRef, error: CloudError) -> Finding:
    """FS403: a typo in the target device silently disables the device check, so it must show."""
    return Finding(
        DEVICE_NOT_FOUND,
        Severity.WARNING,
        f'"{ref.setting}": {error}. This build is not checked against any device; set it to the name or id '
        "of one of your devices (`fieldsafe devices` lists them)",
        facts={"device": ref.name, "status": getattr(error, "status", None), "setting": ref.setting},
    )


def target_unchecked(ref: TargetRef, error: BaseException | None, fix: str | None = None) -> Finding:
    """FS404, THE "target could not be checked" finding (CLI and editor): why, and how to fix it.

    ``fix`` overrides the per-kind advice (callers that know better, e.g. a fleet listing).
    """
    reason = str(error) if error is not None else "the lookup failed"
    advice = fix or _unchecked_fix(error)
    return Finding(
        TARGET_UNCHECKED,
        Severity.WARNING,
        f'{ref.label()} ("{ref.setting}") could not be checked: {reason}. This build is NOT checked against it; '
        f"{advice}",
        facts={
            "target": ref.name,
            "kind": ref.kind,
            "setting": ref.setting,
            "error": type(error).__name__ if error is not None else None,
        },
    )


def _unchecked_fix(error: BaseException | None) -> str:
    from fieldsafe import cloud

    if isinstance(error, cloud.NotLoggedIn | cloud.TokenExpired):
        return (
            "run `particle login` or set PARTICLE_ACCESS_TOKEN (in CI: a secret), or check against the last "
            "known state with --offline"
        )
    if isinstance(error, cloud.Offline):
        return (
            "connect and check again; once a check has run online, --offline (editor: the `offline` setting) "
            "uses the last known state"
        )
    if isinstance(error, cloud.RateLimited):
        wait = f" in {error.retry_after:.0f} s" if error.retry_after else " later"
        return f"the cloud is rate limiting: check again{wait}"
    if isinstance(error, cloud.ServerError):
        return "the cloud had a server error: check again later"
    return "fix the cause above and check again, or remove the target to build without a device check"
