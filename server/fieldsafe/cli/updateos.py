"""``fieldsafe update-os DEVICE --to RELEASE [--dry-run] [--yes]``: a planned Device OS update.

Wiring only: the plan and the module-by-module run are ``fieldsafe.osupdate``. Prints the ordered modules,
their sizes and the total first; asks before sending unless ``--yes`` (refuses to ask when stdin is not a
terminal). Exit status: 0 done / nothing to do / dry run, 1 refused or failed (progress saved: run again
to resume), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fieldsafe.osupdate import UpdatePlan, UpdateResult


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``update-os`` subcommand."""
    parser = sub.add_parser(
        "update-os",
        help="update a device's Device OS over the air on purpose, module by module (plan shown first)",
        description=(
            "Plan and run an over-the-air Device OS update of one device: the ordered modules (bootloader first "
            "where needed, system parts in dependency order, intermediate releases where a direct jump is not "
            "allowed), their sizes and the total, then module by module with confirmation. An interrupted run "
            "resumes where it stopped. Downgrades and the Gen 2 cap are refused."
        ),
    )
    parser.add_argument("device", help="device name or id")
    parser.add_argument("--to", required=True, metavar="RELEASE", help="Device OS release to update to, e.g. 2.3.1")
    parser.add_argument("--product", help="product id or slug, for a product device you do not own")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--state-dir", help="where interrupted runs are remembered (default: user state dir)")
    parser.add_argument("--step-timeout", type=float, help="seconds to wait for each module (default: from the plan)")
    parser.set_defaults(func=run)


def _err(message: str) -> None:
    print(f"fieldsafe update-os: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from fieldsafe.cloud import ConfigError, ParticleCloud, resolve_config
    from fieldsafe.osupdate import run_update
    from fieldsafe.versions import catalog

    if catalog().release(args.to) is None:
        near = ", ".join(str(r.version) for r in catalog().nearest(args.to, None))
        _err(f"--to {args.to}: not a Device OS release fieldsafe knows (nearest: {near})")
        return 2
    try:
        cloud = ParticleCloud(resolve_config())
    except ConfigError as exc:
        _err(str(exc))
        return 2
    if args.json:
        confirm = None
    elif args.yes:
        confirm = _show_and_go
    elif not sys.stdin.isatty():
        confirm = _refuse_to_ask
    else:
        confirm = _ask
    from fieldsafe.cli.flash import _ProgressLine

    line = _ProgressLine(enabled=not args.json)
    try:
        result = run_update(
            cloud,
            args.device,
            args.to,
            execute=not args.dry_run,
            confirm=confirm,
            state_dir=Path(args.state_dir) if args.state_dir else None,
            step_timeout_s=args.step_timeout,
            progress=line.show,
            product=args.product,
        )
    finally:
        line.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_result(result, dry_run=args.dry_run)
    if result.outcome == "declined" and confirm is _refuse_to_ask:
        return 2
    return result.exit_status()


def print_plan(planned: UpdatePlan) -> None:
    """The ordered module list with sizes and the total (before anything is sent)."""
    state = planned.device
    if state is not None:
        cell = ", cellular" if state.cellular else ", Wi-Fi" if state.cellular is False else ""
        print(f"Device {state.name} ({state.device_id}): Device OS {state.device_os}{cell}, read just now")
    for finding in planned.findings:
        print(finding.gcc_line())
    plan = planned.plan
    if plan is None or not plan.steps:
        print(planned.summary())
        return
    if plan.intermediate_releases:
        print(f"Via intermediate releases: {', '.join(plan.intermediate_releases)}")
    for i, step in enumerate(plan.steps, 1):
        print(
            f"  {i:2d}. {step.module.name:<16} {step.release:<10} {step.module.bytes:>10,} B  "
            f"({step.module.size_source}){'  ' + step.reason if step.reason else ''}"
        )
    for note in plan.notes:
        print(f"  note: {note}")
    print(planned.summary())


def _show_and_go(planned: UpdatePlan) -> bool:
    print_plan(planned)
    return not planned.refused


def _ask(planned: UpdatePlan) -> bool:
    print_plan(planned)
    if planned.refused:
        return False
    try:
        answer = input("Send these modules now? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _refuse_to_ask(planned: UpdatePlan) -> bool:
    print_plan(planned)
    _err("not a terminal, so cannot ask for confirmation: pass --yes to send, or --dry-run to only plan")
    return False


def _print_result(result: UpdateResult, *, dry_run: bool) -> None:
    from fieldsafe import guard

    if dry_run or result.outcome in ("refused", "nothing"):
        print_plan(result.planned)
        if dry_run and not result.planned.refused:
            print("Dry run: nothing sent.")
        return
    for finding in result.findings:
        print(finding.gcc_line())
    for step in result.steps:
        if step.outcome == "pending":
            continue
        print(f"  {step.index + 1:2d}. {step.module:<16} {step.release:<10} {step.outcome:<9} {step.sent_bytes:>10,} B")
    if result.outcome == "declined":
        print("Not confirmed: nothing sent.")
        return
    after = result.device_after or {}
    print(
        f"Update {result.outcome}: sent {guard.kb(result.sent_bytes)} in {result.elapsed_seconds:.1f} s; "
        f"the device reports Device OS {after.get('system_firmware_version', '?')}."
    )
