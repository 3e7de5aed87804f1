"""``fieldsafe check [PROJECT] [--target RELEASE] [--platform P] [--json]``: will this project build for
the Device OS it is pinned to?

Runs the pin checks (``fieldsafe.compat.check_target``: is the release real, does the platform get it)
and the API availability lint (``fieldsafe.apilint``) over the project's sources. ``--target`` and
``--platform`` override the Workbench pin (``particle.firmwareVersion``, ``particle.targetPlatform``
in ``.vscode/settings.json``). Targets other than an exact release (``latest-lts``, ``^5.3.0``,
``device:NAME``) are resolved the way ``fieldsafe compile`` resolves them (``fieldsafe.targets``). Exit status: 0 clean, 1 findings of error severity, 2 usage (no target
known, unknown platform, bad project path or unreadable settings). Wiring only: no domain logic here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fieldsafe.findings import Finding, Severity


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    p = subparsers.add_parser(
        "check",
        help="check a project's sources against its pinned Device OS (API availability, pin sanity)",
        description="Check that a Particle project's code only uses Device OS APIs its pinned release has.",
    )
    p.add_argument("project", nargs="?", default=".", help="project directory (default: current directory)")
    p.add_argument("--target", metavar="RELEASE", help="Device OS release to check against (overrides the pin)")
    p.add_argument("--platform", metavar="P", help="platform name or id (overrides particle.targetPlatform)")
    p.add_argument("--json", action="store_true", help="print findings as JSON")
    p.set_defaults(func=run)


def _usage(message: str) -> int:
    print(f"fieldsafe check: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Resolve project, target and platform, run the checks, print, return the exit status."""
    from fieldsafe import apilint, platforms
    from fieldsafe.compat import check_target
    from fieldsafe.project import ProjectSettingsError, read_settings
    from fieldsafe.versions import DeviceOSVersion

    root = Path(args.project)
    if not root.is_dir():
        return _usage(f"{root} is not a directory; pass the project folder (the one with project.properties)")
    try:
        settings = read_settings(root)
    except ProjectSettingsError as exc:
        return _usage(str(exc))
    pin_target, pin_platform = settings.firmware_version, settings.target_platform
    target_text = args.target or pin_target
    platform_text = args.platform or pin_platform
    if not target_text:
        return _usage(
            "no Device OS target known: pass --target RELEASE or set particle.firmwareVersion in "
            f"{root / '.vscode' / 'settings.json'}"
        )
    spec = target_text  # what the user wrote: a keyword or range pin is itself a finding (FS115)
    if DeviceOSVersion.try_parse(target_text) is None:  # latest-lts, ^5.3.0, 2.3, device:NAME: as compile does
        resolved = _resolve_spec(root, args, target_text, platform_text)
        if isinstance(resolved, int):
            return resolved
        target_text, platform_text = resolved
    target = DeviceOSVersion.parse(target_text)
    platform_id = None
    if platform_text:
        try:
            platform_id = platforms.get(platform_text).id
        except KeyError as exc:
            return _usage(str(exc.args[0]) if exc.args else f"unknown platform {platform_text!r}")
    sources = apilint.source_files(root)
    if not sources:  # a green check that looked at nothing would hide a wrong path in CI
        return _usage(f"no source files (.ino, .cpp, .c, .h) in {root}; pass the project folder (the one with src/)")
    findings = list(check_target(spec if not spec.startswith("device:") else target_text, platform_id))
    try:
        findings += apilint.lint_project(root, target, platform_id, files=sources)
    except OSError as exc:
        print(f"fieldsafe check: cannot read {exc.filename or root}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _print(findings, args.json)
    return 1 if any(f.severity == Severity.ERROR for f in findings) else 0


def _resolve_spec(
    root: Path, args: argparse.Namespace, target_text: str, platform_text: str | None
) -> tuple[str, str] | int:
    """(exact release, platform) for a non-exact target, resolved like ``fieldsafe compile``; or an exit status."""
    from fieldsafe.cloud import CloudError, ConfigError, ParticleCloud, resolve_config
    from fieldsafe.targets import DEVICE_PREFIX, TargetError, resolve_target
    from fieldsafe.versions import DeviceOSVersion

    is_device = target_text.startswith(DEVICE_PREFIX)
    if not platform_text and not is_device:
        where = "--target" if args.target else "particle.firmwareVersion"
        try:
            DeviceOSVersion.parse(target_text)
        except ValueError as exc:
            return _usage(f"{where} {target_text!r}: {exc}; a range (latest-lts, ^5.3.0, 4.x) also needs --platform")
    try:
        cloud = ParticleCloud(resolve_config()) if is_device else None
        target = resolve_target(root, platform=args.platform, target=args.target, cloud=cloud)
    except (TargetError, ConfigError) as exc:
        return _usage(str(exc))
    except CloudError as exc:
        print(f"fieldsafe check: {exc}", file=sys.stderr)
        return 1
    print(f"fieldsafe check: checking against Device OS {target.describe()}", file=sys.stderr)
    return str(target.release.version), target.platform.name


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


def _print(findings: list[Finding], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"findings": [_json_row(f) for f in findings]}, indent=2))
        return
    for f in findings:
        print(f.gcc_line())
    errors = sum(f.severity == Severity.ERROR for f in findings)
    print(f"{len(findings)} finding(s), {errors} error(s)", file=sys.stderr)
