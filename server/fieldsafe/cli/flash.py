"""``fieldsafe flash [PROJECT] [--device NAME|ID] [--binary FILE]``: an over-the-air flash that checks first.

Wiring only: the decision is ``fieldsafe.guard``, the steps are ``fieldsafe.flashjob``, building is
``fieldsafe compile``'s (``targets`` + ``compilejob``). Exit status: 0 sent and confirmed running, 1 refused
(findings printed, nothing sent) or failed / timed out, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldsafe.findings import Finding
    from fieldsafe.flashjob import FlashResult


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``flash`` subcommand."""
    parser = sub.add_parser(
        "flash",
        help="flash a device over the air, refusing builds it would not run (Safe Mode guard)",
        description=(
            "Flash an app to a device over the air after checking the binary's real Device OS dependency "
            "against the device's current state. Refuses (exit 1, nothing sent) when the device would not run "
            "it as it is; --allow-device-os-update accepts the cloud's Device OS update when it will heal the "
            "device. Without --binary the project is compiled first, exactly like `fieldsafe compile`."
        ),
    )
    parser.add_argument("project", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument("--device", "-d", help="device name or id (default: the project's particle.targetDevice)")
    parser.add_argument("--product", help="product id or slug, for a product device you do not own")
    parser.add_argument("--binary", "-b", help="flash this .bin instead of compiling the project")
    parser.add_argument("--platform", "-p", help="platform for the compile (default: the pin)")
    parser.add_argument("--target", "-t", help="Device OS release for the compile, or device:NAME (default: the pin)")
    parser.add_argument(
        "--allow-device-os-update",
        action="store_true",
        help="proceed when the device needs a Device OS update the cloud will apply (its cost is shown)",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds to wait for the device to run the app (default: from the plan)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (for CI)")
    parser.set_defaults(func=run)


def _err(message: str) -> None:
    print(f"fieldsafe flash: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Resolve the device and the binary, decide, send, follow; see the module docstring."""
    from fieldsafe.cloud import CloudError, ConfigError, ParticleCloud, resolve_config

    root = Path(args.project).resolve()
    try:
        cloud = ParticleCloud(resolve_config())
    except ConfigError as exc:
        _err(str(exc))
        return 2
    device = args.device or _pinned_device(root)
    if not device:
        _err(
            'no device to flash: pass --device NAME, or set "particle.targetDevice" in '
            f"{root / '.vscode' / 'settings.json'}"
        )
        return 2
    if args.binary:
        binary, name, problem = _read_binary(Path(args.binary))
        if problem:
            _err(problem)
            return 2
    else:
        try:
            built = _build(root, args, cloud)
        except CloudError as exc:
            _err(str(exc))
            return 1
        if isinstance(built, int):
            return built
        binary, name = built
    return _flash(cloud, device, binary, name, args)


def _pinned_device(root: Path) -> str | None:
    from fieldsafe.project import ProjectSettingsError, read_settings

    if not root.is_dir():
        return None
    try:
        return read_settings(root).target_device
    except ProjectSettingsError:
        return None


def _read_binary(path: Path) -> tuple[bytes, str, str | None]:
    if not path.is_file():
        return b"", "", f"--binary {path}: {'not a file' if path.exists() else 'no such file'}"
    try:
        return path.read_bytes(), path.name, None
    except OSError as exc:
        return b"", "", f"--binary {path}: cannot read it: {exc.strerror or exc}"


def _build(root: Path, args: argparse.Namespace, cloud: Any) -> tuple[bytes, str] | int:
    """Compile as ``fieldsafe compile`` does; the exit status when it cannot produce a binary."""
    from fieldsafe.flashjob import BuildError, build_project

    if not root.is_dir():
        _err(f"{args.project}: no such project directory (or pass --binary FILE)")
        return 2
    try:
        outcome, target = build_project(root, cloud, platform=args.platform, target=args.target)
    except BuildError as exc:
        _err(str(exc))
        return exc.status
    if not args.json:
        print(f"Compiled {root.name} for {target.platform.name} against Device OS {target.describe()}")
    if not outcome.ok or outcome.binary is None or outcome.module is None:
        for finding in outcome.findings:
            print(finding.gcc_line(), file=sys.stderr if args.json else sys.stdout)
        _err("the compile produced no flashable binary; nothing sent")
        return 1
    return outcome.binary, f"{root.name}.bin"


def _flash(cloud: Any, device: str, binary: bytes, name: str, args: argparse.Namespace) -> int:
    from fieldsafe.flashjob import guarded_flash

    line = _ProgressLine(enabled=not args.json)
    try:
        result = guarded_flash(
            cloud,
            device,
            binary,
            allow_device_os_update=args.allow_device_os_update,
            timeout_s=args.timeout,
            progress=line.show,
            filename=name,
            product=args.product,
        )
    finally:
        line.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_text(result, name)
    return result.exit_status()


class _ProgressLine:
    """One rewritten line on a terminal; plain lines otherwise (CI logs)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stdout.isatty()
        self.width = 0

    def show(self, message: str, fraction: float | None) -> None:
        if not self.enabled:
            return
        text = f"[{round(fraction * 100):3d}%] {message}" if fraction is not None else f"       {message}"
        if self.tty:
            pad = max(0, self.width - len(text))
            sys.stdout.write("\r" + text + " " * pad)
            sys.stdout.flush()
            self.width = len(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.width:
            sys.stdout.write("\r" + " " * self.width + "\r")
            sys.stdout.flush()


def fix_lines(finding: Finding) -> list[str]:
    """The finding's fixes; the Device OS update fix is the ``fieldsafe update-os`` command that does it."""
    from fieldsafe.guard import fix_commands

    commands = fix_commands(finding)
    out = [f"    fix: {command}" for command in commands]
    for fix in finding.fixes:
        if fix.kind not in ("update-device", "update-os") or not commands:
            out.append(f"    fix: {fix.title}")
    return out


def _print_text(result: FlashResult, name: str) -> None:
    from fieldsafe import guard

    decision = result.decision
    state = decision.device
    if state is not None:
        cell = ", cellular" if state.cellular else ", Wi-Fi" if state.cellular is False else ""
        print(f"Device {state.name} ({state.device_id}): Device OS {state.device_os}{cell}, read just now")
    if decision.requirement is not None:
        print(f"Binary {name} ({guard.kb(decision.app_bytes)}): {decision.requirement.text}")
    for finding in result.findings:
        print(finding.gcc_line())
        for line in fix_lines(finding):
            print(line)
    if result.outcome == "refused":
        print("Refused: nothing was sent.")
        return
    print(decision.summary())
    after = result.device_after or {}
    if result.outcome == "done":
        release = after.get("system_firmware_version") or "?"
        print(
            f"Flashed {state.name if state else 'the device'}: back online running this app on Device OS {release} "
            f"({result.wait_seconds:.1f} s after sending; predicted {guard.duration(decision.predicted_seconds)})."
        )
    else:
        print(f"Flash {result.outcome}.")
