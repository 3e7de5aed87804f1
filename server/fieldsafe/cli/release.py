"""``fieldsafe release PRODUCT --binary FILE --version N (--groups a,b | --product-default)``: upload and release
product firmware as the API does, after printing its impact on exactly the devices the release would reach.

The cloud does not refuse a release whose binary needs a newer Device OS than devices run: it sends each such
device into Safe Mode and heals it (or leaves it stuck). This command does refuse, unless
``--allow-device-os-update`` is given and every such device can be updated (combined OTA or healer); it never
releases when a reached device would be stuck, is another platform, or when the listing is incomplete.

Which devices a release reaches is ``fieldsafe.releases`` (development devices never, locks, group
releases, the product default); what happens to each is ``fieldsafe.fleet`` (the policy table). Exit status:
0 released (or a dry run that would release), 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fieldsafe.cli.fleet import add_fleet_arguments, listing_findings, load_listing

PROG = "fieldsafe release"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "release",
        help="upload and release product firmware, refusing when devices it reaches would not run it as is",
        description="Print the impact of a product firmware release on exactly the devices it would reach "
        "(per Device OS version), then upload and release it unless some would not run it as is.",
    )
    p.add_argument("product", help="product id or slug")
    p.add_argument("--binary", metavar="FILE", required=True, help="the compiled application (.bin)")
    p.add_argument("--version", metavar="N", type=int, required=True, help="product firmware version (PRODUCT_VERSION)")
    add_fleet_arguments(p)
    p.add_argument("--product-default", action="store_true", help="release as the product default")
    p.add_argument("--intelligent", action="store_true", help="intelligent release: online devices update now")
    p.add_argument("--dry-run", action="store_true", help="print the impact and the decision; change nothing")
    p.add_argument(
        "--allow-device-os-update",
        action="store_true",
        help="release even if devices must update Device OS (combined OTA or Safe Mode healer); never for stuck devices",
    )
    p.add_argument("--title", metavar="TEXT", help="firmware title for the upload (default: the file name)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _usage(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _read_binary(path: Path) -> tuple[bytes, Any] | int:
    from fieldsafe.modules import ModuleParseError, parse_module

    try:
        data = path.read_bytes()
    except OSError as exc:
        return _usage(f"--binary {path}: cannot read it ({exc.strerror or exc})")
    try:
        return data, parse_module(data)
    except ModuleParseError as exc:
        return _usage(f"--binary {path}: not a Particle module ({exc.reason}); pass the compiled application .bin")


def run(args: argparse.Namespace) -> int:
    from fieldsafe import fleet, fleetfindings, fleettarget
    from fieldsafe.compat import binary_requirement

    if args.groups and args.product_default:
        return _usage("pass either --groups or --product-default, not both (one release targets one of them)")
    groups = fleettarget.parse_groups(args.groups)
    if not groups and not args.product_default:
        return _usage("say who gets it: --groups a,b or --product-default")
    path = Path(args.binary)
    read = _read_binary(path)
    if isinstance(read, int):
        return read
    data, info = read
    req = binary_requirement(info)
    if req.dependency is None or req.min_release is None:
        return _usage(f"--binary {path}: {req.text}; pass an application binary built for the product")
    if info.product_version is not None and info.product_version != args.version:
        return _usage(
            f"--version {args.version} differs from the binary's PRODUCT_VERSION {info.product_version}; the cloud "
            f"needs them equal: pass --version {info.product_version} or rebuild"
        )
    if not args.dry_run:
        args.refresh = True  # a real release is judged on a fresh listing, never on a saved one
    listing = load_listing(args, args.product, PROG)
    if isinstance(listing, int):
        return listing
    from fieldsafe.versions import catalog

    needed = catalog().release(req.min_release)
    assert needed is not None  # min_release comes from the table
    reach = fleet.reached(
        listing.histogram, listing.releases, args.version, product_default=args.product_default, groups=groups
    )
    platform_id = listing.platform_id or info.platform_id
    impact = fleet.evaluate(reach, needed, info.platform_id, app_bytes=len(data), allow_healed=True)
    ctx = fleetfindings.FleetContext(product=args.product, groups=groups, source="binary", binary=path.name)
    findings = listing_findings(listing, ctx)
    if reach.total:
        findings += fleetfindings.impact_findings(reach, needed, info.platform_id, ctx, app_bytes=len(data))
    decision = _decide(impact, listing, args, platform_id, info.platform_id)
    released: dict[str, Any] | None = None
    if not decision["refuse"] and not args.dry_run:
        released = _upload_and_release(args, data, path, groups)
    if args.json:
        body = _json(args, listing, reach, impact, req, decision, findings)
        body["released"] = released
        print(json.dumps(body, indent=2))
    else:
        _print(args, listing, reach, impact, req, decision, findings)
        if released is not None:
            print(f"{PROG}: {released['message']}", file=sys.stdout if released["ok"] else sys.stderr)
    if decision["refuse"]:
        return 1
    return 0 if released is None or released["ok"] else 1


def _decide(impact: Any, listing: Any, args: argparse.Namespace, product_platform: int, binary_platform: int) -> dict:
    """Whether to release, and why not (the rules in the module docstring)."""
    from fieldsafe import fleet

    reasons = []
    if product_platform != binary_platform:
        reasons.append(f"the binary is for platform {binary_platform}, the product is platform {product_platform}")
    if not listing.complete:
        reasons.append(f"the fleet listing is incomplete ({listing.missing_text()}): the impact cannot be known")
    stuck = impact.count(fleet.STUCK, fleet.OTHER_PLATFORM)
    if stuck:
        reasons.append(f"{stuck:,} reached device(s) would be stuck in Safe Mode, not running the app")
    deferred = impact.by_consequence(fleet.DEFERRED)  # updates disabled: judged by what happens once enabled
    later_stuck = sum(c.count for c in deferred if c.eventual == fleet.STUCK)
    if later_stuck:
        reasons.append(
            f"{later_stuck:,} reached device(s) have updates disabled and would be stuck in Safe Mode once they "
            "enable them"
        )
    waiting = sum(c.count for c in deferred if c.eventual != fleet.STUCK)
    updating = impact.count(fleet.COMBINED_OTA, fleet.HEALER, fleet.UNKNOWN) + waiting
    if updating and not args.allow_device_os_update:
        also = f", {waiting:,} of them once they enable updates" if waiting else ""
        reasons.append(
            f"{updating:,} reached device(s) would not run it as is (Device OS update or unknown Device OS{also}); "
            "pass --allow-device-os-update to accept the update, or rebuild for the fleet floor"
        )
    return {"refuse": bool(reasons), "reasons": reasons}


def _json(args: Any, listing: Any, reach: Any, impact: Any, req: Any, decision: dict, findings: list) -> dict:
    from fieldsafe.cli.fleet import _listing_json
    from fieldsafe.fleetfindings import cohort_json

    return {
        "product": args.product,
        "version": args.version,
        "binary": str(args.binary),
        "needs_release": str(impact.needed.version),
        "requirement": req.text,
        "groups": list(reach_groups(args)),
        "product_default": args.product_default,
        "listing": _listing_json(listing),
        "reached": reach.total,
        "impact": {
            "runs": impact.runs,
            "combined_ota": impact.count("combined_ota"),
            "healed": impact.count("healer"),
            "stuck": impact.count("stuck"),
            "deferred": impact.count("deferred"),
            "unknown": impact.count("unknown"),
            "other_platform": impact.count("other_platform"),
            "safe_mode": impact.safe_mode,
            "os_bytes": impact.os_bytes,
            "os_bytes_cellular": impact.os_bytes_cellular,
            "os_bytes_wifi": impact.os_bytes_wifi,
            "cohorts": [cohort_json(c) for c in impact.cohorts],
        },
        "decision": "refuse" if decision["refuse"] else ("dry-run" if args.dry_run else "release"),
        "reasons": decision["reasons"],
        "findings": [f.to_json() for f in findings],
    }


def reach_groups(args: Any) -> tuple[str, ...]:
    from fieldsafe.fleettarget import parse_groups

    return parse_groups(args.groups)


def _print(args: Any, listing: Any, reach: Any, impact: Any, req: Any, decision: dict, findings: list) -> None:
    from fieldsafe import fleet

    target = f"groups {', '.join(reach_groups(args))}" if args.groups else "the product default"
    print(f"{Path(args.binary).name}: {req.text}")
    print(f"release v{args.version} of {args.product} to {target} reaches {reach.total:,} device(s):")
    print(
        f"  {'Device OS':<12} {'devices':>8}  {'what happens':<30} {'reboots':>7} {'OS bytes each':>14} {'total':>10}"
    )
    for c in impact.cohorts:
        print(
            f"  {(c.release or 'unknown'):<12} {c.count:>8,}  {fleet.CONSEQUENCE_LABELS[c.consequence]:<30} "
            f"{c.reboots_each:>7} {fleet.human_bytes(c.os_bytes_each):>14} {fleet.human_bytes(c.os_bytes):>10}"
        )
    print(
        f"  Device OS bytes: {fleet.human_bytes(impact.os_bytes)} ({fleet.human_bytes(impact.os_bytes_cellular)} over "
        f"cellular, {fleet.human_bytes(impact.os_bytes_wifi)} over Wi-Fi); Safe Mode: {impact.safe_mode:,} device(s)"
    )
    for f in findings:
        print(f"{f.severity.label}: {f.message} [{f.code}]")
        for fix in f.fixes:
            print(f"  fix: {fix.title}")
    if decision["refuse"]:
        print(f"{PROG}: refusing to release v{args.version}:", file=sys.stderr)
        for reason in decision["reasons"]:
            print(f"  - {reason}", file=sys.stderr)
    elif args.dry_run:
        print(f"{PROG}: dry run: v{args.version} would be released (nothing changed)", file=sys.stderr)


def _upload_and_release(args: Any, data: bytes, path: Path, groups: tuple[str, ...]) -> dict[str, Any]:
    """Upload (unless that version is already there) and release, as the API does: ``{ok, message, uploaded}``."""
    from fieldsafe import cloud

    client = cloud.ParticleCloud(cloud.resolve_config(args.api_url))
    uploaded = False
    try:
        existing = {f.get("version") for f in client.product_firmware(args.product)}
        if args.version not in existing:
            client.upload_product_firmware(
                args.product, version=args.version, binary=data, filename=path.name, title=args.title or path.name
            )
            uploaded = True
        client.release_product_firmware(
            args.product,
            version=args.version,
            product_default=args.product_default,
            groups=list(groups),
            intelligent=args.intelligent,
        )
    except cloud.CloudError as exc:
        return {"ok": False, "uploaded": uploaded, "message": str(exc)}
    where = ", ".join(groups) if groups else "the product default"
    return {"ok": True, "uploaded": uploaded, "message": f"released v{args.version} to {where}"}
