"""``fieldsafe demo``: the whole story offline, on the local Particle Cloud emulator and the example project.

Wiring only: it starts the emulator, then runs the same domain steps a user runs (devices, pin check,
API check, pinned compile, binary vs device check, retarget, compile again) on a temporary copy of the
example project, so the user's files are never touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldsafe.cloud import ParticleCloud
    from fieldsafe.compat import DeviceState
    from fieldsafe.findings import Finding

EXAMPLE = "field-tracker"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = sub.add_parser(
        "demo",
        help="offline walkthrough: emulator + example project, pin vs device, compile, retarget",
        description=(
            "Start the local Particle Cloud emulator with a small fleet, check and compile a copy of the "
            "example project against its pin, show why the device would boot in Safe Mode, retarget to what "
            "the device runs and compile again. Nothing leaves this machine."
        ),
    )
    parser.add_argument("project", nargs="?", help=f"project to use instead of examples/{EXAMPLE} (copied first)")
    parser.add_argument("--state", help="emulator state file (default: the built-in fleet)")
    parser.set_defaults(func=run)


def find_example() -> Path | None:
    """The example project shipped inside the package (``fieldsafe/examples``, package data).

    Why package data: ``fieldsafe demo`` must work from an installed wheel, not only from a checkout; in
    a checkout ``server/fieldsafe/examples`` is a symlink to the repository's ``examples/``.
    """
    candidate = Path(__file__).resolve().parents[1] / "examples" / EXAMPLE
    return candidate if (candidate / "project.properties").is_file() else None


def run(args: argparse.Namespace) -> int:
    """Run the walkthrough; 0 when the retargeted build is safe for the device."""
    from fieldsafe.emulator.server import EmulatorServer
    from fieldsafe.emulator.state import StateError, default_state, load_state

    source = Path(args.project).resolve() if args.project else find_example()
    if args.project and not source.is_dir():
        print(f"fieldsafe demo: {args.project}: no such project directory", file=sys.stderr)
        return 2
    if source is None:
        print(
            "fieldsafe demo: the example project is missing from this installation (fieldsafe/examples); "
            "reinstall fieldsafe (python3 -m pip install --force-reinstall PATH_TO_CHECKOUT) or pass a project directory",
            file=sys.stderr,
        )
        return 2
    try:
        state = load_state(args.state) if args.state else default_state()
    except StateError as exc:
        print(f"fieldsafe demo: {exc}", file=sys.stderr)
        return 2
    token = "demo-" + secrets.token_hex(12)
    with tempfile.TemporaryDirectory(prefix="fieldsafe-demo-") as tmp, EmulatorServer(state, [token]) as emulator:
        root = Path(tmp) / source.name
        shutil.copytree(source, root, symlinks=True)
        _say(f"fieldsafe demo: offline, against the local Particle Cloud emulator at {emulator.url}")
        _say(f"project: a copy of {source} in {root}\n")
        return Walkthrough(root, _cloud(emulator.url, token, Path(tmp))).run()


def _cloud(url: str, token: str, tmp: Path) -> ParticleCloud:
    from fieldsafe.cloud import CloudConfig, ParticleCloud

    config = CloudConfig(api_url=url, token=token, source_of_url="demo", source_of_token="demo")
    return ParticleCloud(config, cache_dir=tmp / "cache")


def _say(text: str = "") -> None:
    print(text, flush=True)


def _show(findings: list[Finding], indent: str = "   ") -> None:
    if not findings:
        _say(f"{indent}no findings")
    for finding in findings:
        _say(f"{indent}{finding.severity.label} {finding.code}: {finding.message}")
        for fix in finding.fixes:
            _say(f"{indent}    fix: {fix.title}")


class Walkthrough:
    """The demo's steps, each printing what a user would see from the matching command."""

    def __init__(self, root: Path, cloud: ParticleCloud) -> None:
        self.root = root
        self.cloud = cloud

    def run(self) -> int:
        from fieldsafe.targets import resolve_target

        self.devices()
        pin = resolve_target(self.root, cloud=self.cloud)
        settings = self._settings()
        device = self.device(settings.target_device)
        self.pin_check(str(pin.release.version), pin.platform.id, device)
        self.api_check(str(pin.release.version), pin.platform.id)
        first = self.compile_and_check(str(pin.release.version), pin.platform.id, device, step=4)
        if device is None or device.device_os is None:
            return 0 if first else 1
        _say(f"5. Retarget to what {device.name} runs ({device.device_os}) and compile again")
        self.retarget(device.device_os)
        ok = self.compile_and_check(device.device_os, pin.platform.id, device, step=None)
        verdict = "safe to flash" if ok else "still NOT safe to flash"
        _say(f"\nResult: the build pinned to {device.device_os} is {verdict} to {device.name}.")
        return 0 if ok else 1

    def _settings(self) -> Any:
        from fieldsafe.project import read_settings

        return read_settings(self.root)

    def devices(self) -> None:
        from fieldsafe.cli.devices import device_row, format_table

        _say("1. Devices on the account (fieldsafe devices)")
        now = dt.datetime.now(dt.UTC)
        rows = [device_row(device, now) for device in self.cloud.list_devices()]
        for line in format_table(rows).splitlines():
            _say("   " + line)
        _say()

    def device(self, name: str | None) -> DeviceState | None:
        from fieldsafe.compat import device_state_from_cloud

        if not name:
            return None
        return device_state_from_cloud(self.cloud.get_device(name))

    def pin_check(self, release: str, platform_id: int, device: DeviceState | None) -> None:
        from fieldsafe.compat import BuildNeeds, check_build_against_device, check_target

        _say(f"2. The project's pin: Device OS {release} (.vscode/settings.json, particle.firmwareVersion)")
        findings = check_target(release, platform_id)
        if device is not None:
            _say(f"   target device {device.name} runs Device OS {device.device_os}")
            findings += check_build_against_device(BuildNeeds(platform_id, release=release), device)
        _show(findings)
        _say()

    def api_check(self, release: str, platform_id: int) -> None:
        from fieldsafe.apilint import lint_project

        _say(f"3. Device OS API availability for {release} (fieldsafe check)")
        _show(lint_project(self.root, release, platform_id))
        _say()

    def compile_and_check(self, release: str, platform_id: int, device: DeviceState | None, step: int | None) -> bool:
        """Compile against ``release``; True when it compiled and the device can run the binary."""
        from fieldsafe.compat import BuildNeeds, check_build_against_device
        from fieldsafe.compilejob import compile_project, gather_files
        from fieldsafe.findings import Severity
        from fieldsafe.versions import describe_module_version

        if step is not None:
            _say(f"{step}. Compile against the pin, {release} (fieldsafe compile)")
        started = time.monotonic()
        outcome = compile_project(gather_files(self.root), platform_id, release, self.cloud)
        took = time.monotonic() - started
        for finding in outcome.findings:
            _say("   " + finding.gcc_line())
        if not outcome.ok or outcome.module is None:
            _say(f"   compile failed in {took:.1f} s")
            return False
        memory = f"; flash {outcome.memory.flash:,} B, RAM {outcome.memory.ram:,} B" if outcome.memory else ""
        _say(f"   compile succeeded in {took:.1f} s{memory}")
        dep = outcome.module.dependencies[0]
        _say(f"   the binary depends on system module {dep.index} at version {describe_module_version(dep.version)}")
        if device is None:
            return True
        _say(f"   checked against {device.name} (runs {device.device_os}):")
        findings = check_build_against_device(
            BuildNeeds(platform_id, dependency_version=dep.version, source="binary"), device
        )
        _show(findings, indent="     ")
        _say()
        return not any(f.severity <= Severity.WARNING for f in findings)

    def retarget(self, release: str) -> None:
        from fieldsafe.project import write_setting

        write_setting(self.root, "particle.firmwareVersion", release)
        settings = (self.root / ".vscode" / "settings.json").read_text(encoding="utf-8")
        _say("   .vscode/settings.json now reads (comments and formatting kept):")
        for line in settings.splitlines():
            _say("     " + line)
