"""``fieldsafe compile``: a cloud compile pinned to one Device OS release, printed like gcc.

Wiring only: target resolution lives in ``fieldsafe.targets``, the compile in ``fieldsafe.compilejob``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fieldsafe.compilejob import CompileOutcome


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
    )
    parser.add_argument("project", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument("--platform", "-p", help="platform name, alias or id (e.g. electron, e, boron, 13)")
    parser.add_argument(
        "--target",
        "-t",
        help="Device OS release (2.3.1, latest-lts, ^5.3.0) or device:NAME to build for what that device runs",
    )
    parser.add_argument("--save-to", "--saveTo", dest="save_to", help="where to write the binary")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--follow-symlinks", action="store_true", help="upload files behind symlinks too")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the target, compile, print findings gcc-style; 1 on compile errors, 2 on usage errors."""
    from fieldsafe.cloud import CloudError, ParticleCloud, resolve_config
    from fieldsafe.compilejob import compile_project, gather_files
    from fieldsafe.findings import Severity
    from fieldsafe.targets import TargetError, resolve_target

    root = Path(args.project).resolve()
    if not root.is_dir():
        print(f"fieldsafe compile: {args.project}: no such project directory", file=sys.stderr)
        return 2
    try:
        cloud = ParticleCloud(resolve_config())
        target = resolve_target(root, platform=args.platform, target=args.target, cloud=cloud)
        files = gather_files(root, follow_symlinks=args.follow_symlinks)
    except TargetError as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 2
    except CloudError as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 1
    if not files:
        print(f"fieldsafe compile: {root}: no source files to upload (.ino, .cpp, .c, .h)", file=sys.stderr)
        return 2
    if not args.json:
        print(f"Compiling {root.name} for {target.platform.name} against Device OS {target.describe()}")
        print("Including:\n" + "\n".join(f"    {rel}" for rel in sorted(files)))
    try:
        outcome = compile_project(files, target.platform.id, str(target.release.version), cloud)
    except CloudError as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 1
    if outcome.ok and outcome.binary is not None and args.save_to:
        _save(Path(args.save_to), outcome.binary)
    if args.json:
        result = outcome.to_json()
        result["saved_to"] = str(Path(args.save_to).resolve()) if args.save_to and outcome.ok else None
        print(json.dumps(result, indent=2))
    else:
        _print_text(outcome, args.save_to)
    return 1 if any(f.severity == Severity.ERROR for f in outcome.findings) or not outcome.ok else 0


def _save(path: Path, data: bytes) -> None:
    """Write the binary atomically so a failed write never leaves half a firmware file."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _print_text(outcome: CompileOutcome, save_to: str | None) -> None:
    from fieldsafe.versions import describe_module_version

    for finding in outcome.findings:
        print(finding.gcc_line())
    if not outcome.ok:
        errors = len(outcome.errors)
        print(f"Compile failed: {errors} error{'s' if errors != 1 else ''}.")
        return
    print("Compile succeeded.")
    if outcome.memory:
        print(f"Memory use:\n    Flash  {outcome.memory.flash:>9,} B\n    RAM    {outcome.memory.ram:>9,} B")
    if outcome.module is not None:
        for dep in outcome.module.dependencies:
            what = describe_module_version(dep.version, outcome.platform_id)
            print(f"The binary depends on system module {dep.index} at version {what}")
    if save_to:
        print(f"Saved firmware to: {Path(save_to).resolve()}")
