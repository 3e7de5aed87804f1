"""The fleet target inside ``fieldsafe.checking``: ``kind="fleet"`` refs, their lookup and their verdict.

Why here and not in ``checking``: the device check and the fleet check share the engine's shape (refs,
lookups, one report, one CI policy), but the fleet side has its own listing (``fleetlisting``), numbers
(``fleet``) and words (``fleetfindings``). ``checking`` calls the three functions below; CLI check/compile
and the language server then show fleet findings with no code of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fieldsafe import fleetfindings
from fieldsafe.fleettarget import PRODUCT_KEY, FleetTarget

if TYPE_CHECKING:
    from fieldsafe.checking import Lookup, TargetRef, TargetReport
    from fieldsafe.cloud import ParticleCloud


def fleet_ref(target: FleetTarget) -> TargetRef:
    from fieldsafe.checking import TargetRef

    setting = PRODUCT_KEY if target.source == "settings" else f"--target product:{target.product}"
    return TargetRef("fleet", target.product, setting, target.groups, target.allow_healed)


def lookup_fleet(
    client: ParticleCloud,
    ref: TargetRef,
    *,
    offline: bool = False,
    refresh: bool = False,
    cancel: Any = None,
    progress: Any = None,
) -> Lookup:
    """The product's listing: the saved one when fresh (or ``offline``), else listed again; never raises."""
    from fieldsafe import cloud, fleetlisting
    from fieldsafe.checking import Lookup

    source = fleetlisting.FleetSource(client.config, cloud=client)
    try:
        listing = source.get(ref.name, offline=offline, refresh=refresh, cancel=cancel, progress=progress)
    except fleetlisting.ListingCancelled:
        return Lookup(None, None, cloud.CloudError(f"listing of product '{ref.name}' cancelled"))
    except LookupError as exc:
        return Lookup(None, None, cloud.Offline(str(exc), host=client.config.host))
    except cloud.CloudError as exc:
        return Lookup(None, None, exc)
    return lookup_from_listing(listing)


def needs_listing(client: ParticleCloud, product: str, *, offline: bool = False, refresh: bool = False) -> bool:
    """True when :func:`lookup_fleet` would list the product (no fresh complete saved listing): worth a progress."""
    from fieldsafe import fleetlisting

    if offline:
        return False
    source = fleetlisting.FleetSource(client.config, cloud=client)
    hit = source.cached(product)
    return refresh or hit is None or not hit.complete or (hit.age_seconds or 0) > source.max_age


def lookup_from_listing(listing: Any) -> Lookup:
    from fieldsafe.checking import Lookup

    return Lookup({"product": listing.product}, listing.age_seconds, None, listing)


@dataclass(frozen=True)
class CheckedFleet:
    """A fleet target whose listing was known, with what the pin means for it (for status, hover, JSON)."""

    ref: Any
    listing: Any
    targeted: Any  # fleet.Histogram of the devices a release to the groups would reach
    platform_id: int | None
    floor: str | None
    impact: Any  # fleet.Impact of the pin (None without a pin)

    def describe(self) -> str:
        """``trackers: 1,204 devices, floor 2.3.1`` (the status item's text)."""
        floor = f", floor {self.floor}" if self.floor else ""
        return f"{self.listing.slug or self.ref.name}: {self.targeted.total:,} devices{floor}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "fleet",
            "name": self.ref.name,
            "setting": self.ref.setting,
            "checked": True,
            "groups": list(self.ref.groups),
            "platform_id": self.platform_id,
            "devices": self.targeted.total,
            "devices_in_product": self.listing.histogram.total,
            "floor": self.floor,
            "complete": self.listing.complete,
            "age_seconds": self.listing.age_seconds,
            "source": "live" if self.listing.source == "cloud" else "cache",
            "reason": None,
        }


def listing_findings(listing: Any, ctx: fleetfindings.FleetContext) -> list[Any]:
    """FS506 (incomplete, what is missing) and FS507 (the saved listing, with its age, when the cloud failed)."""
    out = []
    if not listing.complete:
        out.append(
            fleetfindings.listing_incomplete(
                ctx, listed=listing.listed, expected=listing.expected, missing=listing.missing_text()
            )
        )
    if listing.source == "cache" and listing.cache_reason not in ("listed recently", ""):
        from fieldsafe.compat import age_phrase

        age = listing.age_seconds or 0.0
        out.append(fleetfindings.listing_cached(ctx, age_phrase(age), age, listing.cache_reason))
    return out


def evaluate_fleet(report: TargetReport, ref: TargetRef, lookup: Lookup, pin: str | None, platform: Any) -> None:
    """Add the fleet's findings (FS501-FS509) for the pin to ``report``; an unreadable fleet is FS509/FS404."""
    from fieldsafe import cloud, fleet, platforms
    from fieldsafe.checking import UncheckedTarget, target_unchecked
    from fieldsafe.versions import catalog

    ctx = fleetfindings.FleetContext(product=ref.name, groups=ref.groups)
    listing = lookup.listing
    if listing is None:
        reason = str(lookup.error) if lookup.error else "the listing failed"
        report.unchecked.append(UncheckedTarget(ref, reason))
        if isinstance(lookup.error, cloud.NotFound | cloud.Forbidden):
            report.findings.append(fleetfindings.target_unreadable(ctx, reason))
        else:
            report.findings.append(
                target_unchecked(
                    ref,
                    lookup.error,
                    fix="connect and check again (a listing saved by an earlier online run is used offline), "
                    "or run `fieldsafe fleet " + ref.name + "` once online",
                )
            )
        return
    found = platforms.find(platform) if platform not in (None, "") else None
    platform_id = found.id if found else (report.platform_id or listing.platform_id)
    targeted = fleet.target_devices(listing.histogram, listing.releases, ref.groups)
    low = fleet.floor(targeted, platform_id) if platform_id is not None else None
    row = catalog().release(pin) if pin else None
    impact = None
    report.findings.extend(listing_findings(listing, ctx))
    if targeted.total == 0:
        report.findings.append(fleetfindings.no_devices(ctx, listing.product_groups))
    elif row is not None and platform_id is not None:
        report.findings.extend(
            fleetfindings.impact_findings(targeted, row, platform_id, ctx, allow_healed=ref.allow_healed)
        )
        impact = fleet.evaluate(targeted, row, platform_id, allow_healed=ref.allow_healed)
    report.fleets.append(CheckedFleet(ref, listing, targeted, platform_id, str(low.version) if low else None, impact))


def window_findings(report: TargetReport, floor: Any) -> list[Any]:
    """FS505 for each checked fleet whose floor is below the code's own floor (``apilint.CodeFloor``).

    The code floor comes from the API check (the newest API the code uses unguarded); when the fleet floor
    is older, no pin both builds the code and runs as is everywhere: one finding names the API, the devices
    building for the code floor would move, and both fixes (guard it, or accept the update).
    """
    from fieldsafe.findings import Span
    from fieldsafe.versions import catalog

    release = getattr(floor, "release", None)
    use = getattr(floor, "forced_by", None)
    row = catalog().release(release) if release is not None else None
    if row is None or use is None:
        return []
    span = Span(use.file, use.line, use.column)
    code = fleetfindings.CodeFloor(row, use.api, span)
    out = []
    for checked in report.fleets:
        if checked.platform_id is None or not checked.targeted.total:
            continue
        ctx = fleetfindings.FleetContext(product=checked.ref.name, groups=checked.ref.groups)
        found = fleetfindings.target_window(
            checked.targeted, code, checked.platform_id, ctx, allow_healed=checked.ref.allow_healed
        )
        if found is not None:
            out.append(found)
    return out


def binary_findings(
    report: TargetReport, module: Any, binary: str = "the built binary", *, app_bytes: int = 0
) -> list[Any]:
    """After a compile: the fleet judged on the binary's real dependency, when it differs from the pin's release.

    Devices check the binary's number, not the pin; when the cloud built for another release than asked
    (a stale pin, a range), the fleet's consequences are those of the binary (FS501/FS502, source "binary").
    """
    from fieldsafe.compat import binary_requirement
    from fieldsafe.versions import catalog

    req = binary_requirement(module)
    row = catalog().release(req.min_release) if req.min_release else None
    out: list[Any] = []
    for checked in report.fleets:
        if row is None or checked.platform_id is None or not checked.targeted.total:
            continue
        if checked.impact is not None and checked.impact.needed.module_version == row.module_version:
            continue  # the pin's verdict already says it
        ctx = fleetfindings.FleetContext(
            product=checked.ref.name, groups=checked.ref.groups, source="binary", binary=binary
        )
        found = fleetfindings.impact_findings(
            checked.targeted, row, checked.platform_id, ctx, app_bytes=app_bytes, allow_healed=checked.ref.allow_healed,
        )  # fmt: skip
        out.extend(f for f in found if f.code in (fleetfindings.FLEET_IMPACT, fleetfindings.FLEET_RUNS_EVERYWHERE))
    return out
