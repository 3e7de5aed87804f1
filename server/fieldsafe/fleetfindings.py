"""Fleet findings (FS5xx): what a pin or a binary means for the targeted devices of a product, as findings.

Why separate from ``fieldsafe.fleet``: that module computes (histogram, floor, impact, options); this one
words the result once for every face (CLI, CI, language server), with stable codes documented in
``docs/findings-fleet.md``. Pure: no network, no editor types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fieldsafe import platforms
from fieldsafe.findings import Finding, Fix, Related, Severity, Span
from fieldsafe.fleet import (
    COMBINED_OTA,
    CONSEQUENCE_LABELS,
    DEFERRED,
    HEALER,
    OTHER_PLATFORM,
    RUNS,
    STALE_AFTER_DAYS,
    STUCK,
    UNKNOWN,
    Cohort,
    Histogram,
    Impact,
    PinOption,
    evaluate,
    floor,
    human_bytes,
    pin_options,
)
from fieldsafe.versions import Release, catalog

FLEET_IMPACT = "FS501"  # the build needs a newer Device OS than some targeted devices run
FLEET_RUNS_EVERYWHERE = "FS502"  # the build runs as is on every targeted device
FLEET_UNCERTAIN = "FS503"  # targeted devices not heard from for long enough that their version is uncertain
FLEET_MIXED_PLATFORMS = "FS504"  # targeted devices of another platform than the build's
FLEET_TARGET_WINDOW = "FS505"  # the code needs a newer release than the fleet floor
FLEET_LISTING_INCOMPLETE = "FS506"  # the listing is partial: what is missing is said
FLEET_LISTING_CACHED = "FS507"  # the listing is the last one saved (offline), with its age
FLEET_NO_DEVICES = "FS508"  # the target reaches no device (empty product, unknown groups)
FLEET_TARGET_UNREADABLE = "FS509"  # the product cannot be listed (not found, forbidden, offline with no cache)

RULE_LABELS = {
    "gen2_cap": "Gen 2 cap",
    "updates_disabled": "updates disabled",
    "healer_off": "healer off",
    "developer_electron": "Electron outside a product",
}


@dataclass(frozen=True)
class FleetContext:
    """What the findings need to say where they point and what the target is."""

    product: str  # slug or id as the user wrote it
    groups: tuple[str, ...] = ()
    pin_span: Span | None = None  # where the pin (particle.firmwareVersion) is
    product_span: Span | None = None  # where fieldsafe.targetProduct is
    source: str = "pin"  # "pin" | "binary"
    binary: str | None = None  # file name when source == "binary"

    @property
    def target_label(self) -> str:
        groups = f" (groups {', '.join(self.groups)})" if self.groups else ""
        return f"product {self.product}{groups}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _rule(rule: str) -> str:
    return RULE_LABELS.get(rule, rule.replace("_", " ") or "no update path")


def _build_phrase(impact: Impact, ctx: FleetContext) -> str:
    if ctx.source == "binary":
        return f"{ctx.binary or 'This binary'} needs Device OS {impact.needed.version}"
    return f"Pin {impact.needed.version}"


def impact_sentence(impact: Impact) -> str:
    """Counts per consequence with bytes and reboots, e.g. ``1,150 run it as is; 54 boot in Safe Mode ...``."""
    parts = []
    if impact.runs:
        parts.append(f"{impact.runs:,} run it as is")
    combined = impact.by_consequence(COMBINED_OTA)
    if combined:
        parts.append(f"{sum(c.count for c in combined):,} take a combined OTA, no Safe Mode ({_cost(combined)})")
    healed = impact.by_consequence(HEALER)
    if healed:
        reboots = sorted({c.reboots_each for c in healed})
        span = f"{reboots[0]}" if len(reboots) == 1 else f"{reboots[0]}-{reboots[-1]}"
        parts.append(
            f"{sum(c.count for c in healed):,} boot in Safe Mode and are healed ({span} reboots, {_cost(healed)})"
        )
    deferred = impact.by_consequence(DEFERRED)
    if deferred:
        then = sorted({CONSEQUENCE_LABELS.get(c.eventual, c.eventual) for c in deferred})
        parts.append(
            f"{sum(c.count for c in deferred):,} have updates disabled and keep their current app until they enable "
            f"them (then: {', '.join(then)})"
        )
    stuck = impact.stuck_rules()
    if stuck:
        why = ", ".join(f"{_rule(r)}: {n:,}" for r, n in sorted(stuck.items()))
        parts.append(f"{sum(stuck.values()):,} would be stuck in Safe Mode, not running the app ({why})")
    unknown = impact.count(UNKNOWN)
    if unknown:
        parts.append(f"{unknown:,} report no Device OS fieldsafe knows")
    other = impact.count(OTHER_PLATFORM)
    if other:
        parts.append(f"{other:,} are another platform and reject the binary")
    return "; ".join(parts) or "no devices"


def _cost(cohorts: Sequence[Cohort]) -> str:
    each = sorted({c.os_bytes_each for c in cohorts})
    total = sum(c.os_bytes for c in cohorts)
    cellular = sum(c.os_bytes_cellular for c in cohorts)
    low, high = human_bytes(each[0]), human_bytes(each[-1])
    per = f"~{low} each" if low == high else f"~{low}-{high} each"
    radio = f"; {human_bytes(cellular)} over cellular, {human_bytes(total - cellular)} over Wi-Fi" if total else ""
    return f"{per}, {human_bytes(total)} in total{radio}"


def _severity(impact: Impact) -> Severity:
    worst = impact.worst
    if worst in (STUCK, OTHER_PLATFORM):
        return Severity.ERROR
    if worst == HEALER:
        return Severity.WARNING if impact.allow_healed else Severity.ERROR
    if worst == DEFERRED:
        return Severity.ERROR if impact.blocks_ci else Severity.WARNING
    if worst in (COMBINED_OTA, UNKNOWN):
        return Severity.WARNING
    return Severity.HINT


def _cohort_related(c: Cohort, ctx: FleetContext) -> Related:
    version = c.release or "no reported Device OS"
    label = CONSEQUENCE_LABELS[c.consequence]
    detail = ""
    if c.consequence in (COMBINED_OTA, HEALER):
        detail = f": {c.reboots_each} reboot(s), ~{human_bytes(c.os_bytes_each)} each"
    elif c.consequence == STUCK:
        detail = f" ({_rule(c.rule)})"
    elif c.consequence == DEFERRED:
        detail = f" (then: {CONSEQUENCE_LABELS.get(c.eventual, c.eventual)})"
    stale = f"; {c.stale:,} not heard from for {STALE_AFTER_DAYS}+ days" if c.stale else ""
    return Related(f"{_plural(c.count, 'device')} on {version}: {label}{detail}{stale}", ctx.product_span)


def _impact_facts(impact: Impact, ctx: FleetContext, low: Release | None) -> dict[str, Any]:
    return {
        "product": ctx.product,
        "groups": list(ctx.groups),
        "source": ctx.source,
        "needs_release": str(impact.needed.version),
        "needs_module": impact.needed.module_version,
        "platform_id": impact.platform_id,
        "floor": str(low.version) if low else None,
        "devices": impact.total,
        "runs": impact.runs,
        "combined_ota": impact.count(COMBINED_OTA),
        "healed": impact.count(HEALER),
        "stuck": impact.count(STUCK),
        "deferred": impact.count(DEFERRED),
        "stuck_rules": impact.stuck_rules(),
        "unknown": impact.count(UNKNOWN),
        "other_platform": impact.count(OTHER_PLATFORM),
        "uncertain": impact.stale,
        "safe_mode": impact.safe_mode,
        "os_bytes": impact.os_bytes,
        "os_bytes_cellular": impact.os_bytes_cellular,
        "os_bytes_wifi": impact.os_bytes_wifi,
        "allow_healed": impact.allow_healed,
        "blocks_ci": impact.blocks_ci,
        "cohorts": [cohort_json(c) for c in impact.cohorts],
    }


def cohort_json(c: Cohort) -> dict[str, Any]:
    return {
        "release": c.release,
        "platform_id": c.platform_id,
        "consequence": c.consequence,
        "rule": c.rule,
        "devices": c.count,
        "cellular": c.cellular,
        "uncertain": c.stale,
        "os_bytes_each": c.os_bytes_each,
        "os_bytes": c.os_bytes,
        "reboots_each": c.reboots_each,
        "downtime_seconds": round(c.downtime_seconds, 1),
    }


def option_fix(option: PinOption) -> Fix:
    imp = option.impact
    return Fix(
        "retarget",
        option.title,
        {
            "release": str(option.release.version),
            "role": option.role,
            "runs": imp.runs,
            "moved": imp.moved,
            "bytes": imp.os_bytes,
            "devices": imp.total,
        },
    )


def impact_findings(
    hist: Histogram,
    needed: Release,
    platform_id: int,
    ctx: FleetContext,
    *,
    app_bytes: int = 0,
    allow_healed: bool = False,
    code_floor: Release | None = None,
) -> list[Finding]:
    """FS501 (or FS502 when it runs everywhere), FS503 uncertain devices, FS504 mixed platforms."""
    if hist.total == 0:
        return [no_devices(ctx)]
    impact = evaluate(hist, needed, platform_id, app_bytes=app_bytes, allow_healed=allow_healed)
    low = floor(hist, platform_id)
    facts = _impact_facts(impact, ctx, low)
    sentence = impact_sentence(impact)
    out: list[Finding] = []
    if impact.runs == impact.total:
        out.append(
            Finding(
                FLEET_RUNS_EVERYWHERE,
                Severity.HINT,
                f"{_build_phrase(impact, ctx)}: runs as is on all {impact.total:,} devices of {ctx.target_label}"
                + (f" (fleet floor {low.version})" if low else ""),
                span=ctx.pin_span,
                facts=facts,
            )
        )
    else:
        options = pin_options(
            hist, needed, platform_id, app_bytes=app_bytes, code_floor=code_floor, allow_healed=allow_healed
        )
        floor_text = f"; the fleet floor is {low.version}" if low else ""
        out.append(
            Finding(
                FLEET_IMPACT,
                _severity(impact),
                f"{_build_phrase(impact, ctx)} (module {impact.needed.module_version}) on {ctx.target_label}, "
                f"{impact.total:,} devices: {sentence}{floor_text}.",
                span=ctx.pin_span,
                facts=facts,
                fixes=tuple(option_fix(o) for o in options),
                related=tuple(_cohort_related(c, ctx) for c in impact.cohorts if c.consequence != RUNS),
            )
        )
    if impact.stale:
        out.append(uncertain(impact, ctx))
    if impact.count(OTHER_PLATFORM):
        out.append(mixed_platforms(hist, impact, ctx))
    return out


def uncertain(impact: Impact, ctx: FleetContext) -> Finding:
    versions = sorted({c.release or "unknown" for c in impact.cohorts if c.stale})
    return Finding(
        FLEET_UNCERTAIN,
        Severity.INFO,
        f"{_plural(impact.stale, 'device')} of {ctx.target_label} {'has' if impact.stale == 1 else 'have'} not "
        f"been heard from for "
        f"{STALE_AFTER_DAYS}+ days: the Device OS they last reported ({', '.join(versions[:5])}) may no longer be "
        "what they run, so their part of the prediction is uncertain.",
        span=ctx.product_span,
        facts={"product": ctx.product, "uncertain": impact.stale, "stale_after_days": STALE_AFTER_DAYS},
    )


def mixed_platforms(hist: Histogram, impact: Impact, ctx: FleetContext) -> Finding:
    counts = hist.platforms()
    others = {p: n for p, n in counts.items() if p != impact.platform_id}
    names = ", ".join(f"{n:,} {_platform_name(p)}" for p, n in sorted(others.items()))
    return Finding(
        FLEET_MIXED_PLATFORMS,
        Severity.ERROR,
        f"{ctx.target_label} has devices of another platform than this build's {_platform_name(impact.platform_id)} "
        f"({names}): they reject the binary. Target one platform per product, or narrow the groups.",
        span=ctx.product_span,
        facts={"product": ctx.product, "platforms": {str(p): n for p, n in counts.items()}},
    )


def _platform_name(pid: int) -> str:
    found = platforms.find(pid)
    return found.display_name if found else f"platform {pid}"


def no_devices(ctx: FleetContext, known_groups: Sequence[str] = ()) -> Finding:
    hint = ""
    if ctx.groups and known_groups:
        hint = f"; the product's groups are {', '.join(known_groups)}"
    return Finding(
        FLEET_NO_DEVICES,
        Severity.WARNING,
        f"{ctx.target_label} reaches no device (the listing is empty or no device is in those groups){hint}: "
        "the fleet check has nothing to check.",
        span=ctx.product_span,
        facts={"product": ctx.product, "groups": list(ctx.groups)},
    )


def listing_incomplete(ctx: FleetContext, *, listed: int, expected: int | None, missing: str) -> Finding:
    of = f" of {expected:,}" if expected is not None else ""
    return Finding(
        FLEET_LISTING_INCOMPLETE,
        Severity.WARNING,
        f"The listing of {ctx.target_label} is incomplete: {listed:,}{of} devices were listed ({missing}); "
        "the figures below cover only the listed devices. Refresh the fleet listing.",
        span=ctx.product_span,
        facts={"product": ctx.product, "listed": listed, "expected": expected, "missing": missing},
        fixes=(Fix("refresh-fleet", "Refresh the fleet listing", {"product": ctx.product}),),
    )


def listing_cached(ctx: FleetContext, age_text: str, age_seconds: float, reason: str) -> Finding:
    return Finding(
        FLEET_LISTING_CACHED,
        Severity.INFO,
        f"{ctx.target_label}: using the last saved fleet listing, {age_text} old ({reason}).",
        span=ctx.product_span,
        facts={"product": ctx.product, "age_seconds": age_seconds},
        fixes=(Fix("refresh-fleet", "Refresh the fleet listing", {"product": ctx.product}),),
    )


def target_unreadable(ctx: FleetContext, reason: str) -> Finding:
    return Finding(
        FLEET_TARGET_UNREADABLE,
        Severity.ERROR,
        f"{ctx.target_label} cannot be checked: {reason}",
        span=ctx.product_span,
        facts={"product": ctx.product, "reason": reason},
    )


@dataclass(frozen=True)
class CodeFloor:
    """The code's own Device OS floor (from the API check): the release it needs and the API that forces it."""

    release: Release
    api: str
    span: Span | None = None
    guard_macro: str | None = None  # e.g. SYSTEM_VERSION_v310, when the API check knows the guard


def target_window(
    hist: Histogram,
    code: CodeFloor,
    platform_id: int,
    ctx: FleetContext,
    *,
    app_bytes: int = 0,
    allow_healed: bool = False,
) -> Finding | None:
    """FS505 when the code needs a newer release than the fleet floor: the window [code floor, fleet floor] is empty.

    Names the API that forces it and the devices building for the code's floor would move, with both fixes:
    guard the API (so the code builds for the floor) or accept the update and its cost.
    """
    low = floor(hist, platform_id)
    if low is None or code.release.module_version <= low.module_version:
        return None
    impact = evaluate(hist, code.release, platform_id, app_bytes=app_bytes, allow_healed=allow_healed)
    guard_params: dict[str, Any] = {"release": str(code.release.version), "api": code.api, "floor": str(low.version)}
    if code.guard_macro:
        guard_params["macro"] = code.guard_macro
    fixes = (
        Fix("guard", f"Guard `{code.api}` so the code builds for {low.version} (the fleet floor)", guard_params),
        Fix(
            "retarget",
            f"Retarget to {code.release.version} and accept the update ({impact.moved:,} devices, "
            f"~{human_bytes(impact.os_bytes)})",
            {"release": str(code.release.version), "role": "code_floor", "bytes": impact.os_bytes},
        ),
    )
    related = [Related(f"`{code.api}` needs Device OS {code.release.version}", code.span)]
    related += [_cohort_related(c, ctx) for c in impact.cohorts if c.consequence != RUNS]
    return Finding(
        FLEET_TARGET_WINDOW,
        Severity.WARNING if not impact.blocks_ci else Severity.ERROR,
        f"`{code.api}` needs Device OS {code.release.version}, newer than the fleet floor {low.version} of "
        f"{ctx.target_label}: no pin both builds this code and runs as is on every device. Building for "
        f"{code.release.version}: {impact_sentence(impact)}. Guard the API to build for {low.version}, or accept "
        "the update.",
        span=ctx.pin_span,
        facts={
            "product": ctx.product,
            "api": code.api,
            "code_floor": str(code.release.version),
            "floor": str(low.version),
            "moved": impact.moved,
            "os_bytes": impact.os_bytes,
            "safe_mode": impact.safe_mode,
        },
        fixes=fixes,
        related=tuple(related),
    )


def needed_for_binary(dependency_version: int, platform_id: int) -> Release | None:
    """The lowest release that satisfies a binary's system-part dependency (what the device checks)."""
    return catalog().min_release_for_dependency(dependency_version, platform_id)
