"""``fieldsafe fleet PRODUCT [--groups a,b] [--json]``: a product's Device OS histogram, its floor, and what the
project's pin means for it.

Wiring only: the listing is ``fieldsafe.fleetlisting`` (cache first when fresh, ``--refresh`` to list again,
``--offline`` for the last listing whatever its age), the numbers are ``fieldsafe.fleet`` and the words
``fieldsafe.fleetfindings``. Exit status: 0 ok, 1 error findings or the product cannot be listed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BAR_WIDTH = 32


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fleet",
        help="a product's Device OS histogram, its floor and what the project's pin means for it",
        description="Show which Device OS a product's devices run (all of them, or some groups), the fleet floor "
        "(the newest release every device already runs) and what the project's pin would do to them.",
    )
    p.add_argument("product", help="product id or slug")
    add_fleet_arguments(p)
    p.add_argument("--project", metavar="DIR", default=".", help="project whose pin to judge (default: .)")
    p.add_argument("--target", metavar="RELEASE", help="judge this Device OS release instead of the project's pin")
    p.add_argument("--platform", metavar="P", help="platform of the build (default: the product's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def add_fleet_arguments(p: argparse.ArgumentParser) -> None:
    """Flags every fleet-aware command shares (fleet, release)."""
    p.add_argument("--groups", metavar="A,B", help="only devices a release to these groups would reach")
    p.add_argument("--refresh", action="store_true", help="list the fleet again even if the saved listing is fresh")
    p.add_argument("--offline", action="store_true", help="use the last saved listing, whatever its age")
    p.add_argument("--api-url", metavar="URL", help="Particle API base URL (default: PARTICLE_API_URL, particle-cli)")
    p.add_argument(
        "--allow-healed-updates",
        action="store_true",
        help="accept builds that send devices through Safe Mode and the healer (as fieldsafe.allowHealedUpdates)",
    )


def _err(message: str, status: int = 1) -> int:
    print(f"fieldsafe fleet: {message}", file=sys.stderr)
    return status


def load_listing(args: argparse.Namespace, product: str, prog: str) -> Any:
    """The listing (or an exit status int), progress on stderr when it is a terminal."""
    from fieldsafe import cloud, fleetlisting

    try:
        config = cloud.resolve_config(args.api_url)
    except cloud.ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    source = fleetlisting.FleetSource(config)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{prog}: listing {product}: page {done:,}/{total:,}", end="", file=sys.stderr, flush=True)

    try:
        listing = source.get(product, refresh=args.refresh, offline=args.offline, progress=progress)
    except LookupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except cloud.CloudError as exc:
        hint = f"; {exc.hint}" if getattr(exc, "hint", "") else ""
        print(f"{prog}: cannot list product {product}: {exc}{hint}", file=sys.stderr)
        return 1
    finally:
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr)
    return listing


def listing_findings(listing: Any, ctx: Any) -> list[Any]:
    """FS506 (incomplete) / FS507 (from the cache, with its age) for a listing (the engine's wording)."""
    from fieldsafe.fleetcheck import listing_findings as engine

    return engine(listing, ctx)


def _pin(args: argparse.Namespace, platform_id: int) -> tuple[Any, str | None] | int:
    """(release row or None, where it came from) from --target or the project's pin; or an exit status."""
    from fieldsafe.targets import TargetError, resolve_target

    root = Path(args.project)
    if args.target is None and not (root / ".vscode" / "settings.json").is_file():
        return None, None
    try:
        target = resolve_target(root, platform=args.platform or platform_id, target=args.target)
    except TargetError as exc:
        if args.target is None and "no Device OS release" in str(exc):
            return None, None
        return _err(str(exc), 2)
    return target.release, ("--target" if args.target else "the project's pin")


def run(args: argparse.Namespace) -> int:
    from fieldsafe import fleet, fleetfindings, fleettarget, platforms

    groups = fleettarget.parse_groups(args.groups)
    listing = load_listing(args, args.product, "fieldsafe fleet")
    if isinstance(listing, int):
        return listing
    platform_id = listing.platform_id or listing.histogram.main_platform()
    if args.platform:
        try:
            platform_id = platforms.get(args.platform).id
        except KeyError as exc:
            return _err(str(exc.args[0]), 2)
    if platform_id is None:
        return _err(f"product {args.product} has no devices and no platform", 1)
    pin = _pin(args, platform_id)
    if isinstance(pin, int):
        return pin
    release, pin_source = pin
    ctx = fleetfindings.FleetContext(product=args.product, groups=groups)
    targeted = fleet.target_devices(listing.histogram, listing.releases, groups)
    allow = args.allow_healed_updates or _project_allows(args)
    findings = listing_findings(listing, ctx)
    impact = None
    if release is not None:
        findings += fleetfindings.impact_findings(targeted, release, platform_id, ctx, allow_healed=allow)
        impact = fleet.evaluate(targeted, release, platform_id, allow_healed=allow) if targeted.total else None
    elif targeted.total == 0:
        findings.append(fleetfindings.no_devices(ctx, listing.product_groups))
    rows = fleet.histogram_rows(targeted, platform_id, impact)
    low = fleet.floor(targeted, platform_id)
    if args.json:
        print(json.dumps(_json(listing, targeted, platform_id, rows, low, release, pin_source, findings), indent=2))
    else:
        _print_text(listing, targeted, platform_id, rows, low, release, pin_source, findings, groups)
    return 1 if any(f.severity.label == "error" for f in findings) else 0


def _project_allows(args: argparse.Namespace) -> bool:
    from fieldsafe import fleettarget

    try:
        target = fleettarget.read(Path(args.project))
    except fleettarget.FleetTargetError:
        return False
    return bool(target and target.allow_healed)


def _listing_json(listing: Any) -> dict[str, Any]:
    return {
        "listed": listing.listed,
        "expected": listing.expected,
        "complete": listing.complete,
        "missing": listing.missing_text() or None,
        "source": listing.source,
        "age_seconds": listing.age_seconds,
        "requests": listing.requests,
        "seconds": round(listing.seconds, 3),
    }


def _json(
    listing: Any,
    targeted: Any,
    platform_id: int,
    rows: list[Any],
    low: Any,
    release: Any,
    pin_source: str | None,
    findings: list[Any],
) -> dict[str, Any]:
    return {
        "product": listing.product,
        "product_id": listing.product_id,
        "platform_id": platform_id,
        "listing": _listing_json(listing),
        "devices_in_product": listing.histogram.total,
        "product_versions": {release or "unknown": n for release, n in listing.histogram.versions()},
        "devices": targeted.total,
        "floor": str(low.version) if low else None,
        "pin": str(release.version) if release else None,
        "pin_source": pin_source,
        "histogram": [r.to_json() for r in rows],
        "findings": [f.to_json() for f in findings],
    }


def _print_text(
    listing: Any,
    targeted: Any,
    platform_id: int,
    rows: list[Any],
    low: Any,
    release: Any,
    pin_source: str | None,
    findings: list[Any],
    groups: tuple[str, ...],
) -> None:
    from fieldsafe import fleet, platforms
    from fieldsafe.compat import age_phrase

    plat = platforms.find(platform_id)
    where = f"groups {', '.join(groups)}" if groups else "product default"
    age = f", listed {age_phrase(listing.age_seconds)} ago" if listing.age_seconds is not None else ", listed now"
    print(
        f"{listing.slug or listing.product} ({plat.display_name if plat else platform_id}): "
        f"{listing.histogram.total:,} devices{age}"
    )
    print(f"a release to the {where} reaches {targeted.total:,} of them; fleet floor {low.version if low else '-'}")
    print()
    width = max([len(r.release or "unknown") for r in rows] + [9])
    top = max((r.count for r in rows), default=1)
    for r in rows:
        marks = " ".join(m for m, on in (("<- pin", r.is_pin), ("<- floor", r.is_floor)) if on)
        what = ", ".join(f"{fleet.CONSEQUENCE_LABELS[c]} {n:,}" for c, n in r.consequences if c != fleet.RUNS)
        bar = fleet.text_bar(r.count / top, BAR_WIDTH).ljust(BAR_WIDTH)
        line = f"  {(r.release or 'unknown').ljust(width)} {r.count:>8,} {r.share:6.1%} {bar} {marks}"
        print((line + (f"  [{what}]" if what else "")).rstrip())
    print()
    if release is not None:
        print(f"{pin_source}: Device OS {release.version}")
    for f in findings:
        print(f"{f.severity.label}: {f.message} [{f.code}]")
        for fix in f.fixes:
            print(f"  fix: {fix.title}")


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """``--groups`` and ``--allow-healed-updates`` for check/compile (``--target product:SLUG`` is their --target)."""
    p.add_argument("--groups", metavar="A,B", help="with --target product:SLUG: the groups a release would go to")
    p.add_argument(
        "--allow-healed-updates",
        action="store_true",
        help="the fleet may be updated through Safe Mode and the healer (as fieldsafe.allowHealedUpdates)",
    )


def split_fleet_target(args: argparse.Namespace, settings: Any) -> Any:
    """The fleet target from ``--target product:SLUG --groups`` (which then leaves ``args.target`` to the pin),
    else the project's ``fieldsafe.targetProduct`` with ``--allow-healed-updates`` applied; raises FleetTargetError."""
    from dataclasses import replace

    from fieldsafe import fleettarget

    allow = bool(getattr(args, "allow_healed_updates", False))
    override = fleettarget.from_flags(args.target, getattr(args, "groups", None), allow)
    if override is not None:
        args.target = None
        return override
    current = getattr(settings, "fleet", None)
    if current is not None and allow:
        return replace(current, allow_healed=True)
    return None


def say_fleets(prog: str, report: Any) -> None:
    """One stderr line per fleet target checked (``trackers: 1,204 devices, floor 2.3.1``)."""
    for checked in getattr(report, "fleets", ()):
        print(f"{prog}: target fleet {checked.describe()}", file=sys.stderr)
