"""``fieldsafe compile``: a cloud compile pinned to one Device OS release, printed like gcc.

Wiring only: target resolution lives in ``fieldsafe.targets``, the compile in ``fieldsafe.compilejob``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldsafe.cli.fleet import add_target_arguments, say_fleets, split_fleet_target

if TYPE_CHECKING:
    from fieldsafe.compilejob import CompileOutcome
    from fieldsafe.findings import Finding

EPILOG = (
    "The project is found by walking up from PROJECT (run it from src/ too). The build is checked like "
    "`fieldsafe check` checks it: the pin, and the target device (particle.targetDevice, or the device of "
    "--target device:NAME; a device of another platform is FS102 and nothing is uploaded). The binary is saved "
    "as --save-to, else like particle-cli as ./<platform>_firmware_<timestamp>.bin, and the path is printed. "
    "Exit status: 0 built and clean; 1 compile errors, error findings, an unknown release (FS104) or a target "
    "device that could not be checked (FS404); 2 usage."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compile`` subcommand."""
    parser = sub.add_parser(
        "compile",
        help="cloud-compile a project against exactly the pinned Device OS release",
        description=(
            "Compile a Particle project in the cloud against one Device OS release and check the built "
            "binary's dependency. The release and platform default to the project's pin "
            "(.vscode/settings.json: particle.firmwareVersion, particle.targetPlatform)."
        ),
        epilog=EPILOG,
    )
    parser.add_argument("project", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument("--platform", "-p", help="platform name, alias or id (e.g. electron, e, boron, 13)")
    parser.add_argument(
        "--target",
        "-t",
        help="Device OS release (2.3.1, latest-lts, ^5.3.0) or device:NAME to build for what that device runs",
    )
    parser.add_argument(
        "--save-to",
        "--saveTo",
        dest="save_to",
        help="where to write the binary (default: ./<platform>_firmware_<timestamp>.bin, as particle-cli)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--follow-symlinks", action="store_true", help="upload files behind symlinks too")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the target, check it (pin + target device), compile, print gcc-style; see ``EPILOG`` for statuses."""
    from fieldsafe import checking
    from fieldsafe.cloud import CloudError, ConfigError, ParticleCloud, resolve_config
    from fieldsafe.compilejob import compile_project, gather_files, has_compile_units
    from fieldsafe.fleettarget import FleetTargetError
    from fieldsafe.project import ProjectSettingsError, Skipped, read_settings
    from fieldsafe.targets import TargetError, UnknownRelease, resolve_target

    given = Path(args.project).resolve()
    if not given.is_dir():
        what = "is a file, not a project directory" if given.exists() else "no such project directory"
        print(f"fieldsafe compile: {args.project}: {what}", file=sys.stderr)
        return 2
    root = checking.project_root(given)
    if root != given:
        print(f"fieldsafe compile: project {root}", file=sys.stderr)
    save_problem = _save_to_problem(args.save_to)
    if save_problem:  # before the compile, so a typo does not cost a cloud build
        print(f"fieldsafe compile: --save-to {args.save_to}: {save_problem}", file=sys.stderr)
        return 2
    skipped: list[Skipped] = []
    try:
        settings = read_settings(root)
        fleet_override = split_fleet_target(args, settings)
        cloud = ParticleCloud(resolve_config())
        target = resolve_target(
            root, platform=args.platform, target=args.target, cloud=cloud, settings=settings, strict=False
        )
        files = gather_files(root, follow_symlinks=args.follow_symlinks, skipped=skipped)
    except UnknownRelease as exc:  # the CI policy: an unknown release fails like in ``check`` (exit 1)
        _print_findings([exc.finding], args.json, {"ok": False, "findings": [exc.finding.to_json()]})
        return checking.exit_status([exc.finding])
    except (TargetError, ConfigError, ProjectSettingsError, FleetTargetError) as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 2
    except CloudError as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fieldsafe compile: cannot read {exc.filename or root}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if target.pin_warning():
        print(f"fieldsafe compile: warning: {target.pin_warning()}", file=sys.stderr)
    for skip in skipped:
        print(f"fieldsafe compile: warning: not uploading {skip.path}: {skip.reason}", file=sys.stderr)
    if not has_compile_units(files):
        print(
            f"fieldsafe compile: {root}: no source files to compile (.ino, .cpp, .c); "
            "pass the project folder (the one with project.properties and src/)",
            file=sys.stderr,
        )
        return 2
    report = checking.check_project_targets(settings, cloud, target, fleet_override=fleet_override)
    say_fleets("fieldsafe compile", report)
    report.findings = [f for f in report.findings if f.code != "FS115"]  # said once above, as the drift warning
    blocking = report.blocking()
    if blocking:  # e.g. a device of another platform: say so instead of building for a board nobody asked for
        _print_findings(report.findings, args.json, {"ok": False, "target": report.to_json()})
        print("fieldsafe compile: not compiling: the target cannot take this build (see above)", file=sys.stderr)
        return 1
    if not args.json:
        print(f"Compiling {root.name} for {target.platform.name} against Device OS {target.describe()}")
        print("Including:\n" + "\n".join(f"    {rel}" for rel in sorted(files)))
        for checked in report.checked:
            print(f"Target device: {checked.describe()}")
    try:
        outcome = compile_project(files, target.platform.id, str(target.release.version), cloud)
    except CloudError as exc:
        # fail safe: what the target check found (FS101 ...) still stands when the cloud build fails
        _print_findings(report.findings, args.json, {"ok": False, "error": str(exc), "target": report.to_json()})
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 1
    # a binary fieldsafe could not parse (FS307) is never written: nobody should flash it
    saved = None
    if outcome.ok and outcome.module is not None:
        saved = Path(args.save_to or default_save_name(target.platform.name)).resolve()
        try:
            _save(saved, outcome.binary or b"")
        except OSError as exc:
            print(f"fieldsafe compile: cannot write {saved}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    findings = report.findings + outcome.findings
    if report.fleets and outcome.module is not None:  # the fleet judged on the binary's real dependency
        from fieldsafe.fleetcheck import binary_findings

        name = saved.name if saved else "the built binary"
        findings += binary_findings(report, outcome.module, name, app_bytes=len(outcome.binary or b""))
    if args.json:
        result = outcome.to_json()
        result["target"] = report.to_json()
        result["findings"] = [f.to_json() for f in findings]
        result["saved_to"] = str(saved) if saved else None
        print(json.dumps(result, indent=2))
    else:
        _print_text(outcome, report.findings, saved, args.save_to)
    return 1 if checking.exit_status(findings) or not outcome.ok else 0


def default_save_name(platform_name: str) -> str:
    """particle-cli's and Workbench's name for a compiled binary: ``<platform>_firmware_<ms since epoch>.bin``."""
    return f"{platform_name}_firmware_{int(time.time() * 1000)}.bin"


def _print_findings(findings: list[Finding], as_json: bool, body: dict[str, Any]) -> None:
    if as_json:
        body = {**body, "findings": [f.to_json() for f in findings]}
        print(json.dumps(body, indent=2))
        return
    from fieldsafe.guard import fix_commands

    for finding in findings:
        print(finding.gcc_line())
        for command in fix_commands(finding):
            print(f"    fix: {command}")


def _save_to_problem(save_to: str | None) -> str | None:
    """Why ``--save-to`` cannot be written (checked up front), or None when it looks writable."""
    if not save_to:
        return None
    path = Path(save_to).resolve()
    if path.is_dir():
        return "is a directory; name the file to write, e.g. firmware.bin"
    for parent in path.parents:  # the nearest existing ancestor must be a directory we can write into
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a directory; pick another path"
            if not os.access(parent, os.W_OK):
                return f"{parent} is not writable; pick another path"
            return None
    return None


def _save(path: Path, data: bytes) -> None:
    """Write the binary atomically so a failed or interrupted write never leaves half a firmware file."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:  # includes Ctrl-C between write and rename
        Path(tmp).unlink(missing_ok=True)
        raise


def _print_text(
    outcome: CompileOutcome, target_findings: list[Finding], saved: Path | None, asked_save_to: str | None = None
) -> None:
    from fieldsafe.guard import fix_commands
    from fieldsafe.versions import describe_module_version

    for finding in [*target_findings, *outcome.findings]:
        print(finding.gcc_line())
        for command in fix_commands(finding):  # FS101's "Update the device first" is this command
            print(f"    fix: {command}")
    if not outcome.ok:
        errors = len(outcome.errors)
        print(f"Compile failed: {errors} error{'s' if errors != 1 else ''}.")
        return
    if outcome.module is None:
        print("Compile succeeded, but the downloaded binary is unusable (see the error above).")
        if asked_save_to:
            print(f"Not saved to {asked_save_to}: compile again.")
        return
    print("Compile succeeded.")
    if outcome.memory:
        print(f"Memory use:\n    Flash  {outcome.memory.flash:>9,} B\n    RAM    {outcome.memory.ram:>9,} B")
    if outcome.module is not None:
        for dep in outcome.module.dependencies:
            what = describe_module_version(dep.version, outcome.platform_id)
            print(f"The binary depends on system module {dep.index} at version {what}")
    if saved:
        print(f"Saved firmware to: {saved}")
