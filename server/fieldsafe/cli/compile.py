"""``fieldsafe compile``: a cloud compile pinned to one Device OS release, printed like gcc.

Wiring only: target resolution lives in ``fieldsafe.targets``, the compile in ``fieldsafe.compilejob``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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
    from fieldsafe.cloud import CloudError, ConfigError, ParticleCloud, resolve_config
    from fieldsafe.compilejob import compile_project, gather_files, has_compile_units
    from fieldsafe.findings import Severity
    from fieldsafe.project import Skipped
    from fieldsafe.targets import TargetError, resolve_target

    root = Path(args.project).resolve()
    if not root.is_dir():
        what = "is a file, not a project directory" if root.exists() else "no such project directory"
        print(f"fieldsafe compile: {args.project}: {what}", file=sys.stderr)
        return 2
    save_problem = _save_to_problem(args.save_to)
    if save_problem:  # before the compile, so a typo does not cost a cloud build
        print(f"fieldsafe compile: --save-to {args.save_to}: {save_problem}", file=sys.stderr)
        return 2
    skipped: list[Skipped] = []
    try:
        cloud = ParticleCloud(resolve_config())
        target = resolve_target(root, platform=args.platform, target=args.target, cloud=cloud)
        files = gather_files(root, follow_symlinks=args.follow_symlinks, skipped=skipped)
    except (TargetError, ConfigError) as exc:
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
    if not args.json:
        print(f"Compiling {root.name} for {target.platform.name} against Device OS {target.describe()}")
        print("Including:\n" + "\n".join(f"    {rel}" for rel in sorted(files)))
    try:
        outcome = compile_project(files, target.platform.id, str(target.release.version), cloud)
    except CloudError as exc:
        print(f"fieldsafe compile: {exc}", file=sys.stderr)
        return 1
    # a binary fieldsafe could not parse (FS307) is never written: nobody should flash it
    saved = args.save_to if outcome.ok and outcome.module is not None and args.save_to else None
    if saved:
        try:
            _save(Path(saved), outcome.binary or b"")
        except OSError as exc:
            print(f"fieldsafe compile: cannot write {saved}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if args.json:
        result = outcome.to_json()
        result["saved_to"] = str(Path(saved).resolve()) if saved else None
        print(json.dumps(result, indent=2))
    else:
        _print_text(outcome, saved, args.save_to)
    return 1 if any(f.severity == Severity.ERROR for f in outcome.findings) or not outcome.ok else 0


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


def _print_text(outcome: CompileOutcome, save_to: str | None, asked_save_to: str | None = None) -> None:
    from fieldsafe.versions import describe_module_version

    for finding in outcome.findings:
        print(finding.gcc_line())
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
    if save_to:
        print(f"Saved firmware to: {Path(save_to).resolve()}")
