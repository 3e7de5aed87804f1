"""``fieldsafe check [PROJECT] [--target T] [--platform P] [--offline] [--json]``: will this project build for
the Device OS it is pinned to, and run on the device it targets?

Checks, through the engine the editor uses (``fieldsafe.checking``): the pin (``compat.check_target``: is
the release real, does the platform get it), the target device (``particle.targetDevice`` or
``--target device:NAME``: Safe Mode, platform, downgrade), then the API availability lint
(``fieldsafe.apilint``) over the project's sources. ``--target``/``--platform`` override the Workbench
pin; ranges and words (``latest-lts``, ``^5.3.0``) are resolved as ``fieldsafe compile`` resolves them.

Exit status (the CI policy, ``checking.exit_status``): 0 clean; 1 error findings, an unknown release
(FS104, also a future-looking one) or a target that could not be checked (FS404: no token, cloud
unreachable without a cached state); 2 usage (no target known, unknown platform, bad project path or
unreadable settings). Wiring only: no domain logic here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldsafe.cli.fleet import add_target_arguments, say_fleets, split_fleet_target
from fieldsafe.findings import Finding, Severity

if TYPE_CHECKING:
    from fieldsafe.apilint import CodeFloor
    from fieldsafe.checking import TargetReport
    from fieldsafe.cloud import CloudError, ParticleCloud
    from fieldsafe.project import WorkbenchSettings
    from fieldsafe.targets import Target

TARGET_HELP = (
    "what to check against instead of the pin: a release (2.3.1), a range or word (latest-lts, ^5.3.0), "
    "or device:NAME (the Device OS that device runs, and the device itself), or product:SLUG (check the pin "
    "against the product's fleet, with --groups a,b)"
)
EPILOG = (
    "The project is found by walking up from PROJECT (run it from src/ too). When the project names a target "
    "device (particle.targetDevice) or you pass --target device:NAME, the device's state comes from the Particle "
    "Cloud (particle-cli's login or PARTICLE_ACCESS_TOKEN; PARTICLE_API_URL for another API); when the cloud "
    "cannot be reached the last known state is used and its age said. Exit status: 0 clean; 1 error findings, "
    "an unknown release (FS104) or a target that could not be checked (FS404); 2 usage."
)


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    p = subparsers.add_parser(
        "check",
        help="check a project against its pinned Device OS and target device (API availability, pin, device)",
        description="Check that a Particle project's code only uses Device OS APIs its pinned release has, "
        "that the release exists for its platform, and that its target device can run the build.",
        epilog=EPILOG,
    )
    p.add_argument("project", nargs="?", default=".", help="project directory or a folder inside it (default: .)")
    p.add_argument("--target", metavar="RELEASE|device:NAME", help=TARGET_HELP)
    p.add_argument("--platform", metavar="P", help="platform name or id (overrides particle.targetPlatform)")
    p.add_argument(
        "--offline", action="store_true", help="do not ask the cloud: use the last known device state (and its age)"
    )
    p.add_argument("--json", action="store_true", help="print the target checked and the findings as JSON")
    add_target_arguments(p)
    p.set_defaults(func=run)


def _usage(message: str) -> int:
    print(f"fieldsafe check: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Resolve project and target, run the engine's target checks and the API lint, print, return the status."""
    from fieldsafe import apilint, checking
    from fieldsafe.cloud import CloudError
    from fieldsafe.project import ProjectSettingsError, read_settings
    from fieldsafe.targets import DEVICE_PREFIX, TargetError, UnknownRelease, resolve_target

    given = Path(args.project)
    if not given.is_dir():
        return _usage(f"{given} is not a directory; pass the project folder (the one with project.properties)")
    root = checking.project_root(given.resolve())
    try:
        settings = read_settings(root)
        fleet_override = split_fleet_target(args, settings)
    except (ProjectSettingsError, ValueError) as exc:
        return _usage(str(exc))
    if not (args.target or settings.firmware_version):
        return _usage(
            "no Device OS target known: pass --target RELEASE (or device:NAME) or set particle.firmwareVersion in "
            f"{settings.path}"
        )
    sources = apilint.source_files(root)
    if not sources:  # a green check that looked at nothing would hide a wrong path in CI
        return _usage(f"no source files (.ino, .cpp, .c, .h) in {root}; pass the project folder (the one with src/)")
    wants_cloud = (
        bool(settings.target_device)
        or (args.target or "").startswith(DEVICE_PREFIX)
        or bool(fleet_override or settings.fleet)
    )
    client, cloud_error = checking.open_cloud() if wants_cloud else (None, None)  # offline: its cache
    if (args.target or "").startswith(DEVICE_PREFIX) and client is None:
        return _usage(str(cloud_error))
    if not (args.platform or settings.target_platform) and not (args.target or "").startswith(DEVICE_PREFIX):
        return _without_platform(args, root, settings, sources, client, cloud_error, fleet_override)
    try:
        target = resolve_target(
            root,
            platform=args.platform,
            target=args.target,
            cloud=client,
            settings=settings,
            offline=args.offline,
            strict=False,
        )
    except UnknownRelease as exc:
        _print(None, [exc.finding], args.json, root)
        return checking.exit_status([exc.finding])
    except TargetError as exc:
        return _usage(str(exc))
    except CloudError as exc:
        print(f"fieldsafe check: {args.target}: {exc}", file=sys.stderr)
        return 1
    report = checking.check_project_targets(
        settings, client, target, offline=args.offline, cloud_error=cloud_error, fleet_override=fleet_override
    )
    _say_target(root, given, target, report)
    say_fleets("fieldsafe check", report)
    findings = list(report.findings)
    try:
        findings += apilint.lint_project(
            root, target.release.version, target.platform.id, files=sources, target_reason=_reason(target)
        )
        if report.fleets:  # the target window: the code's own floor against each fleet's floor
            from fieldsafe.fleetcheck import window_findings

            findings += window_findings(report, apilint.project_floor(root, target.platform.id, files=sources))
        floor = apilint.project_floor(root, target.platform.id, files=sources)
    except OSError as exc:
        print(f"fieldsafe check: cannot read {exc.filename or root}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"fieldsafe check: code floor {floor.describe()}", file=sys.stderr)
    _print(report, findings, args.json, root, floor)
    return checking.exit_status(findings)


def _without_platform(
    args: argparse.Namespace,
    root: Path,
    settings: WorkbenchSettings,
    sources: list[str],
    client: ParticleCloud | None,
    cloud_error: CloudError | None,
    fleet_override: Any = None,
) -> int:
    """No platform pinned or given: an exact release is checked alone (API lint for every platform)."""
    from fieldsafe import apilint, checking
    from fieldsafe.versions import DeviceOSVersion

    spec = args.target or settings.firmware_version
    exact = DeviceOSVersion.try_parse(spec)
    if exact is None:
        where = "--target" if args.target else "particle.firmwareVersion"
        return _usage(
            f"{where} {spec!r} is not a Device OS version; a range (latest-lts, ^5.3.0, 4.x) also needs --platform"
        )
    refs = checking.project_targets(settings, fleet_override=fleet_override)
    lookups = checking.lookup_targets(refs, client, offline=args.offline, cloud_error=cloud_error)
    report = checking.evaluate(spec, None, refs, lookups)
    print(f"fieldsafe check: checking against Device OS {spec} (no platform pinned: every platform)", file=sys.stderr)
    try:
        findings = report.findings + apilint.lint_project(root, exact, report.platform_id, files=sources)
    except OSError as exc:
        print(f"fieldsafe check: cannot read {exc.filename or root}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _print(report, findings, args.json, root)
    return checking.exit_status(findings)


def _reason(target: Target) -> str | None:
    """Why the release is what it is, for the API findings ("this project targets 4.0.2 (what X runs)")."""
    if target.source == "device":
        return f"what {target.device_name} runs"
    return None


def _say_target(root: Path, given: Path, target: Target, report: TargetReport) -> None:
    """One stderr line per fact a reader of CI logs needs: the root, the release checked, each target."""
    if root != given.resolve():
        print(f"fieldsafe check: project {root}", file=sys.stderr)
    print(
        f"fieldsafe check: checking against Device OS {target.describe()} for {target.platform.name}", file=sys.stderr
    )
    for checked in report.checked:
        print(f"fieldsafe check: target device {checked.describe()}", file=sys.stderr)
    for unchecked in report.unchecked:
        print(f"fieldsafe check: target {unchecked.ref.name} NOT checked: {unchecked.reason}", file=sys.stderr)


def _json_row(f: Finding) -> dict[str, Any]:
    api = f.facts.get("api") if f.code.startswith("FS2") else None
    return {
        "code": f.code,
        "severity": f.severity.label,
        "file": f.span.file if f.span else None,
        "line": f.span.line if f.span else None,
        "column": f.span.column if f.span else None,
        "message": f.message,
        "api": api,
        "since": f.facts.get("since") if api else None,
        "fixes": [x.to_json() for x in f.fixes],
    }


def _print(
    report: TargetReport | None, findings: list[Finding], as_json: bool, root: Path, floor: CodeFloor | None = None
) -> None:
    if as_json:
        target = report.to_json() if report is not None else None
        out = {"project": str(root), "target": target, "findings": [_json_row(f) for f in findings]}
        if floor is not None:
            out["floor"] = floor.to_json()  # the lowest release the code compiles on for the target's platform
        print(json.dumps(out, indent=2))
        return
    from fieldsafe.guard import fix_commands

    for f in findings:
        print(f.gcc_line())
        for command in fix_commands(f):  # FS101's "Update the device first" is this command
            print(f"    fix: {command}")
    errors = sum(f.severity == Severity.ERROR for f in findings)
    print(f"{len(findings)} finding(s), {errors} error(s)", file=sys.stderr)
