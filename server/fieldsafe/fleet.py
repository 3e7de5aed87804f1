"""A product's fleet as a Device OS histogram, and what a build means for it (pure: no network, no editor).

Why a histogram: a product may have 100,000 devices, but what decides each device's fate when a build
reaches it is a handful of facts (platform, Device OS, development flag, update gating, radio, groups,
lock). Devices that share those facts share their fate, so the listing is aggregated once into
buckets of identical facts and every question ("what does pin 4.0.2 do to the fleet?", "what is the
floor?", "which devices would this release reach?") is answered on the buckets, in milliseconds.

The healer/upgrade rules are not here: each bucket asks ``fieldsafe.delivery.plan_flash`` (which asks
``fieldsafe.policy.decide``) once, so the fleet prediction and the emulator's field simulator read the
same table. Which devices a release reaches is ``fieldsafe.releases`` (the documented precedence).
Findings (FS5xx) are built by ``fieldsafe.fleetfindings`` from the :class:`Impact` computed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from fieldsafe.versions import DeviceOSVersion, Release, catalog

STALE_AFTER_DAYS = 30  # not heard from for this long: the reported Device OS may no longer be true
SCHEMA = 2  # the histogram's JSON layout (the on-disk cache refuses other versions)

# consequence of a build reaching a device, worst last (the order severity and colours follow)
RUNS = "runs"
COMBINED_OTA = "combined_ota"
HEALER = "healer"
DEFERRED = (
    "deferred"  # updates disabled: the device refuses the OTA and keeps its app (``Cohort.eventual`` says what then)
)
UNKNOWN = "unknown"  # the device reports no Device OS (or one the release table does not know)
STUCK = "stuck"
OTHER_PLATFORM = "other_platform"
CONSEQUENCES = (RUNS, COMBINED_OTA, HEALER, DEFERRED, UNKNOWN, STUCK, OTHER_PLATFORM)
CONSEQUENCE_LABELS = {
    RUNS: "runs as is",
    COMBINED_OTA: "combined OTA (no Safe Mode)",
    HEALER: "Safe Mode, healed",
    DEFERRED: "deferred (updates disabled, keeps its app)",
    UNKNOWN: "Device OS unknown",
    STUCK: "stuck in Safe Mode",
    OTHER_PLATFORM: "another platform",
}


# ------------------------------------------------------------------------------------------- devices


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """The facts that decide what a build does to a device; devices with equal keys share their fate."""

    platform_id: int
    release: str | None  # system_firmware_version as reported (None: never reported)
    development: bool = False
    updates_enabled: bool = True
    updates_forced: bool = False
    cellular: bool | None = None
    stale: bool = False  # not heard from for STALE_AFTER_DAYS before the listing (or never)
    groups: tuple[str, ...] = ()
    locked: int | None = None  # desired_firmware_version: the product firmware it is locked to
    firmware: int | None = None  # firmware_version: the product firmware it reports running
    healer: bool | None = None  # per-device healer override (emulator state); None follows the policy table
    quarantined: bool = False  # quarantined or denied: not yet a member of the fleet, gets no firmware

    def as_json(self) -> list[Any]:
        return [
            self.platform_id,
            self.release,
            self.development,
            self.updates_enabled,
            self.updates_forced,
            self.cellular,
            self.stale,
            list(self.groups),
            self.locked,
            self.firmware,
            self.healer,
            self.quarantined,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> DeviceKey:
        pid, release, dev, enabled, forced, cellular, stale, groups, locked, firmware, healer, quarantined = row
        return cls(
            int(pid),
            release,
            bool(dev),
            bool(enabled),
            bool(forced),
            cellular,
            bool(stale),
            tuple(groups),
            locked,
            firmware,
            healer,
            bool(quarantined),
        )


def parse_time(value: Any) -> float | None:
    """An ISO 8601 time from the API (``2021-05-11T17:56:03.585Z``) as a POSIX timestamp, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class StaleCutoff:
    """ "Not heard from since": one cutoff per listing, compared as text when the API's own format allows.

    Why: folding 100,000 devices must not parse 100,000 timestamps; ``2026-11-01T10:00:00.000Z`` style
    UTC strings order like the times they name, so they are compared with the cutoff's text directly,
    and anything else is parsed.
    """

    __slots__ = ("seconds", "text")

    def __init__(self, listed_at: float, stale_after_days: float = STALE_AFTER_DAYS) -> None:
        self.seconds = listed_at - stale_after_days * 86400
        when = dt.datetime.fromtimestamp(self.seconds, tz=dt.UTC)
        self.text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    def stale(self, value: Any) -> bool:
        if isinstance(value, str) and len(value) == 24 and value[-1] == "Z" and value[19] == ".":
            return value < self.text
        heard = parse_time(value)
        return heard is None or heard < self.seconds


def key_tuple(raw: Mapping[str, Any], cutoff: StaleCutoff) -> tuple[Any, ...]:
    """The :class:`DeviceKey` fields of one product-device object, as a plain tuple (cheap to hash and count).

    The API's keys may be absent, not only null; types are checked so odd values cannot split buckets.
    """
    get = raw.get
    heard = get("last_heard") or get("last_handshake_at")
    groups = get("groups")
    release = get("system_firmware_version")
    cellular = get("cellular")
    healer = get("safe_mode_healer")
    platform_id = get("platform_id")
    return (
        platform_id if type(platform_id) is int else -1,
        release if type(release) is str and release else None,
        get("development") is True,
        get("firmware_updates_enabled") is not False,
        get("firmware_updates_forced") is True,
        cellular if type(cellular) is bool else None,
        cutoff.stale(heard),
        (tuple(sorted(str(g) for g in groups)) if groups else ()) if type(groups) is list else (),
        _int_or_none(get("desired_firmware_version")),
        _int_or_none(get("firmware_version")),
        healer if type(healer) is bool else None,
        get("quarantined") is True or get("denied") is True,
    )


def key_of(raw: Mapping[str, Any], *, listed_at: float, stale_after_days: float = STALE_AFTER_DAYS) -> DeviceKey:
    """One product-device object of the Cloud API as its :class:`DeviceKey`."""
    return DeviceKey(*key_tuple(raw, StaleCutoff(listed_at, stale_after_days)))


@dataclass
class Histogram:
    """Device counts per :class:`DeviceKey`: a whole listing in a few hundred entries."""

    buckets: dict[DeviceKey, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.buckets.values())

    def add(self, key: DeviceKey, count: int = 1) -> None:
        self.buckets[key] = self.buckets.get(key, 0) + count

    def select(self, keep: Callable[[DeviceKey], bool]) -> Histogram:
        """The devices whose key passes ``keep`` (evaluated once per bucket, not per device)."""
        return Histogram({k: n for k, n in self.buckets.items() if keep(k)})

    def in_groups(self, groups: Iterable[str] | None) -> Histogram:
        """Devices in any of ``groups`` (all devices when None or empty), as the API's ``groups`` filter."""
        wanted = set(groups or ())
        if not wanted:
            return self
        return self.select(lambda k: bool(wanted.intersection(k.groups)))

    def platforms(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for key, n in self.buckets.items():
            counts[key.platform_id] = counts.get(key.platform_id, 0) + n
        return counts

    def main_platform(self) -> int | None:
        """The platform most devices are (a product has one; the rest are "mixed platforms")."""
        counts = self.platforms()
        return max(counts, key=lambda p: (counts[p], -p)) if counts else None

    def groups(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, n in self.buckets.items():
            for g in key.groups:
                counts[g] = counts.get(g, 0) + n
        return dict(sorted(counts.items()))

    def versions(self, platform_id: int | None = None) -> list[tuple[str | None, int]]:
        """Device OS versions with their device counts, oldest first (unknown last)."""
        counts: dict[str | None, int] = {}
        for key, n in self.buckets.items():
            if platform_id is None or key.platform_id == platform_id:
                counts[key.release] = counts.get(key.release, 0) + n
        return sorted(counts.items(), key=lambda item: _version_order(item[0]))

    def stale_count(self) -> int:
        return sum(n for k, n in self.buckets.items() if k.stale)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "buckets": [[k.as_json(), n] for k, n in self.buckets.items()]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Histogram:
        """Raises ValueError for another schema or a malformed body (the cache then re-lists)."""
        if data.get("schema") != SCHEMA or not isinstance(data.get("buckets"), list):
            raise ValueError(f"fleet histogram schema {data.get('schema')!r}, expected {SCHEMA}")
        try:
            return cls({DeviceKey.from_json(row): int(n) for row, n in data["buckets"]})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed fleet histogram: {exc}") from None


def aggregate(
    devices: Iterable[Mapping[str, Any]], *, listed_at: float, stale_after_days: float = STALE_AFTER_DAYS
) -> Histogram:
    """Aggregate device objects once (the listing folds page by page with :class:`Tally` instead)."""
    tally = Tally(StaleCutoff(listed_at, stale_after_days))
    tally.add_devices(devices)
    return tally.histogram()


class Tally:
    """Counts devices per key tuple while a listing arrives; :meth:`histogram` makes the DeviceKeys once."""

    def __init__(self, cutoff: StaleCutoff) -> None:
        self.cutoff = cutoff
        self.counts: dict[tuple[Any, ...], int] = {}

    def add_devices(self, devices: Iterable[Mapping[str, Any]]) -> None:
        counts, cutoff = self.counts, self.cutoff
        for raw in devices:
            key = key_tuple(raw, cutoff)
            counts[key] = counts.get(key, 0) + 1

    def histogram(self) -> Histogram:
        return Histogram({DeviceKey(*k): n for k, n in self.counts.items()})


def _version_order(text: str | None) -> tuple[int, DeviceOSVersion | str]:
    parsed = DeviceOSVersion.try_parse(text) if text else None
    if parsed is None:
        return (1, text or "")
    return (0, parsed)


@lru_cache(maxsize=2048)
def known_release(text: str | None, platform_id: int) -> Release | None:
    """The release table row of a reported version, when the table knows it for the platform."""
    row = catalog().release(text) if text else None
    return row if row is not None and platform_id in row.platform_ids else None


# ------------------------------------------------------------------------------------------- reach


def _targeting(key: DeviceKey) -> Any:
    from fieldsafe.releases import DeviceTargeting

    return DeviceTargeting(
        development=key.development,
        desired_firmware_version=key.locked,
        groups=key.groups,
        firmware_version=key.firmware,
        quarantined=key.quarantined,
    )


def reached(
    hist: Histogram,
    releases: Any,
    version: int,
    *,
    product_default: bool,
    groups: Iterable[str],
) -> Histogram:
    """The devices a ``PUT .../firmware/release`` of ``version`` would update (``fieldsafe.releases.reach``).

    The precedence is applied once per bucket: every device of a bucket shares development flag, lock,
    groups and running firmware, which is all the precedence reads.
    """
    from fieldsafe.releases import reach

    keys = list(hist.buckets)
    result = reach(
        [_targeting(k) for k in keys], releases, version, product_default=product_default, groups=tuple(groups)
    )
    return Histogram({keys[i]: hist.buckets[keys[i]] for i in result.indexes})


def next_version(hist: Histogram, releases: Any) -> int:
    """A product firmware version no device runs and nothing has released yet (for "if it were released")."""
    seen = {k.firmware for k in hist.buckets if k.firmware is not None}
    seen |= {k.locked for k in hist.buckets if k.locked is not None}
    seen |= set(releases.versions())
    return max(seen, default=0) + 1


def target_devices(hist: Histogram, releases: Any, groups: Iterable[str] = ()) -> Histogram:
    """The devices a build would reach if released to ``groups`` (or as the product default when none).

    This is the fleet target of ``check``/``compile``/the editor: the build has no version yet, so it is
    judged as the next release to those groups, by the same precedence (development devices never,
    locked devices keep their lock, group releases beat the default).
    """
    wanted = tuple(groups)
    return reached(hist, releases, next_version(hist, releases), product_default=not wanted, groups=wanted)


# ------------------------------------------------------------------------------------------- floor


def floor(hist: Histogram, platform_id: int) -> Release | None:
    """The fleet floor: the newest release every device of ``platform_id`` already runs (their oldest).

    Devices that report no (or an unknown) Device OS do not lower it; they are counted as unknown.
    """
    rows = [known_release(k.release, platform_id) for k in hist.buckets if k.platform_id == platform_id]
    known = [r for r in rows if r is not None]
    return min(known, key=lambda r: (r.module_version, r.version)) if known else None


# ---------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Cohort:
    """Devices of one Device OS version that share one consequence (one row of the impact table)."""

    release: str | None
    platform_id: int
    consequence: str  # one of CONSEQUENCES
    rule: str  # the policy row that decided it ("combined_ota", "gen2_cap", ...), "" for runs/unknown
    count: int
    cellular: int  # of count, devices with a cellular radio
    stale: int  # of count, devices not heard from for long enough that their version is uncertain
    os_bytes_each: int  # Device OS bytes the path sends each device (app excluded)
    app_bytes_each: int
    reboots_each: int
    downtime_seconds: float  # summed over the cohort (cellular and Wi-Fi transfer at different speeds)
    reason: str = ""
    certainty: str = ""
    eventual: str = ""  # DEFERRED only: the consequence once the device enables updates again

    @property
    def os_bytes(self) -> int:
        return self.os_bytes_each * self.count

    @property
    def os_bytes_cellular(self) -> int:
        return self.os_bytes_each * self.cellular


@dataclass(frozen=True)
class Impact:
    """What one build (a pinned release or a binary's dependency) does to a set of devices."""

    needed: Release
    platform_id: int
    cohorts: tuple[Cohort, ...]
    allow_healed: bool = False

    @property
    def total(self) -> int:
        return sum(c.count for c in self.cohorts)

    def count(self, *consequences: str) -> int:
        return sum(c.count for c in self.cohorts if c.consequence in consequences)

    @property
    def runs(self) -> int:
        return self.count(RUNS)

    @property
    def moved(self) -> int:
        """Devices whose Device OS the build changes (combined OTA or healer)."""
        return self.count(COMBINED_OTA, HEALER)

    @property
    def safe_mode(self) -> int:
        """Devices that boot into Safe Mode: healed ones and stuck ones."""
        return self.count(HEALER, STUCK)

    @property
    def stale(self) -> int:
        return sum(c.stale for c in self.cohorts)

    @property
    def os_bytes(self) -> int:
        return sum(c.os_bytes for c in self.cohorts)

    @property
    def os_bytes_cellular(self) -> int:
        return sum(c.os_bytes_cellular for c in self.cohorts)

    @property
    def os_bytes_wifi(self) -> int:
        return self.os_bytes - self.os_bytes_cellular

    @property
    def worst(self) -> str:
        present = {c.consequence for c in self.cohorts if c.count}
        return max(present, key=CONSEQUENCES.index) if present else RUNS

    @property
    def blocks_ci(self) -> bool:
        """CI fails (exit 1) when any reached device goes to Safe Mode, unless healed updates are allowed.

        A deferred device (updates disabled) counts by what happens once it enables updates: it is a Safe Mode
        boot waiting to happen, not a device that is fine.
        """
        deferred = self.by_consequence(DEFERRED)
        if self.count(STUCK, OTHER_PLATFORM) or any(c.eventual == STUCK for c in deferred):
            return True
        healed = self.count(HEALER) + sum(c.count for c in deferred if c.eventual == HEALER)
        return healed > 0 and not self.allow_healed

    def by_consequence(self, consequence: str) -> tuple[Cohort, ...]:
        return tuple(c for c in self.cohorts if c.consequence == consequence and c.count)

    def stuck_rules(self) -> dict[str, int]:
        rules: dict[str, int] = {}
        for c in self.by_consequence(STUCK):
            rules[c.rule] = rules.get(c.rule, 0) + c.count
        return rules


def evaluate(
    hist: Histogram,
    needed: Release | str,
    platform_id: int,
    *,
    app_bytes: int = 0,
    in_product: bool = True,
    allow_healed: bool = False,
) -> Impact:
    """What a build for ``platform_id`` that needs ``needed`` does to every device of ``hist``.

    ``plan_flash`` is asked once per distinct set of facts, so 100,000 devices cost a few hundred calls.
    """
    from fieldsafe import delivery, policy

    row = needed if isinstance(needed, Release) else catalog().release(needed)
    if row is None:
        raise LookupError(f"Device OS {needed} is not in fieldsafe's release table")
    plans: dict[tuple[Any, ...], Any] = {}
    cohorts: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, n in hist.buckets.items():
        consequence, plan = _fate(key, row, platform_id, app_bytes, in_product, plans, policy, delivery)
        eventual = _PATHS.get(str(plan.decision.eventual), STUCK) if consequence == DEFERRED else ""
        ident = (key.platform_id, key.release, consequence, plan.decision.rule if plan is not None else "", eventual)
        acc = cohorts.setdefault(ident, {"count": 0, "cellular": 0, "stale": 0, "downtime": 0.0, "plan": plan})
        acc["count"] += n
        acc["cellular"] += n if key.cellular else 0
        acc["stale"] += n if key.stale else 0
        if plan is not None:
            acc["downtime"] += n * float(plan.downtime_seconds or 0.0)  # None (stuck) counts as 0 here
    result = []
    for (pid, release, consequence, rule, eventual), acc in cohorts.items():
        plan = acc["plan"]
        os_each = plan.module_bytes if plan is not None else 0
        result.append(
            Cohort(
                release=release,
                platform_id=pid,
                consequence=consequence,
                rule=rule,
                count=acc["count"],
                cellular=acc["cellular"],
                stale=acc["stale"],
                os_bytes_each=os_each,
                app_bytes_each=app_bytes if consequence not in (OTHER_PLATFORM, DEFERRED) else 0,
                reboots_each=plan.reboots if plan is not None else 0,
                downtime_seconds=acc["downtime"],
                reason=plan.decision.reason if plan is not None else "",
                certainty=plan.decision.certainty if plan is not None else "",
                eventual=eventual,
            )
        )
    result.sort(key=lambda c: (_version_order(c.release), CONSEQUENCES.index(c.consequence), c.rule))
    return Impact(needed=row, platform_id=platform_id, cohorts=tuple(result), allow_healed=allow_healed)


# plans are pure functions of the facts and the need: kept across evaluations (floor, options, hover, views)
_PLANS: dict[tuple[Any, ...], Any] = {}
_PLANS_MAX = 4096
_PATHS = {
    "runs": RUNS,
    "combined_ota": COMBINED_OTA,
    "healer": HEALER,
    "deferred": DEFERRED,
    "stuck": STUCK,
    "unknown": UNKNOWN,
}  # a path fieldsafe does not know counts as stuck (fail safe)


def _fate(
    key: DeviceKey,
    needed: Release,
    platform_id: int,
    app_bytes: int,
    in_product: bool,
    plans: dict[tuple[Any, ...], Any],
    policy: Any,
    delivery: Any,
) -> tuple[str, Any]:
    """(consequence, delivery plan or None) for one bucket, memoised on the facts the policy reads."""
    if key.platform_id != platform_id:
        return OTHER_PLATFORM, None
    if known_release(key.release, platform_id) is None:
        return UNKNOWN, None
    memo = (key.release, key.development, key.updates_enabled, key.updates_forced, key.cellular, key.healer)
    plan = plans.get(memo)
    if plan is None:
        plan = _PLANS.get((memo, platform_id, needed.version, app_bytes, in_product))
    if plan is None:
        facts = policy.DeviceFacts(
            platform_id=platform_id,
            release=key.release,
            in_product=in_product,
            development=key.development,
            updates_enabled=key.updates_enabled,
            updates_forced=key.updates_forced,
            cellular=key.cellular,
            healer=key.healer,
        )
        plan = delivery.plan_flash(facts, str(needed.version), app_bytes=app_bytes)
        if len(_PLANS) > _PLANS_MAX:
            _PLANS.clear()
        _PLANS[(memo, platform_id, needed.version, app_bytes, in_product)] = plan
    plans[memo] = plan
    consequence = _PATHS.get(str(plan.decision.path), STUCK)
    if consequence == DEFERRED and plan.decision.eventual is policy.UpgradePath.RUNS:
        consequence = RUNS  # updates disabled, but the app runs as is whenever it arrives: nothing to fix
    return consequence, plan


# -------------------------------------------------------------------------------------------- fixes


@dataclass(frozen=True)
class PinOption:
    """A release to pin instead, with what it means for the same devices."""

    release: Release
    impact: Impact
    role: str  # "floor" | "intermediate"

    @property
    def title(self) -> str:
        """``Retarget to 2.3.1 (runs on all 1,204 devices)`` / ``Retarget to 4.0.2: runs as is on 1,150; ...``."""
        imp = self.impact
        version = self.release.version
        if imp.runs == imp.total:
            return f"Retarget to {version} (runs on all {imp.total:,} devices)"
        parts = [f"runs as is on {imp.runs:,}"]
        if imp.moved:
            parts.append(f"{imp.moved:,} update over the air, ~{human_bytes(imp.os_bytes)}")
        if imp.count(STUCK):
            parts.append(f"{imp.count(STUCK):,} stuck")
        unknown = imp.count(UNKNOWN, OTHER_PLATFORM)
        if unknown:
            parts.append(f"{unknown:,} unknown")
        return f"Retarget to {version}: " + "; ".join(parts)


def pin_options(
    hist: Histogram,
    pinned: Release,
    platform_id: int,
    *,
    app_bytes: int = 0,
    code_floor: Release | None = None,
    allow_healed: bool = False,
    limit: int = 2,
) -> list[PinOption]:
    """The fixes that matter: the floor (runs everywhere), and up to ``limit`` intermediate pins.

    Intermediate candidates are the releases the fleet itself runs between the floor and the pin (a
    release some devices already run costs them nothing); a candidate is kept when it runs as is on
    more devices than the pin, strands no more devices than the pin, and satisfies the code's own floor.
    They are ranked by devices that run as is, then by bytes sent, newer first on ties.
    """
    pinned_impact = evaluate(hist, pinned, platform_id, app_bytes=app_bytes, allow_healed=allow_healed)
    options: list[PinOption] = []
    low = floor(hist, platform_id)
    floor_fits = low is not None and (code_floor is None or code_floor.module_version <= low.module_version)
    if low is not None and floor_fits and low.module_version < pinned.module_version:
        impact = evaluate(hist, low, platform_id, app_bytes=app_bytes, allow_healed=allow_healed)
        options.append(PinOption(low, impact, "floor"))
    seen = {low.module_version if low else None, pinned.module_version}
    candidates = []
    for text, _ in hist.versions(platform_id):
        row = known_release(text, platform_id)
        if row is None or row.module_version in seen or not (low and low.module_version < row.module_version):
            continue
        if row.module_version >= pinned.module_version:
            continue
        if code_floor is not None and row.module_version < code_floor.module_version:
            continue
        seen.add(row.module_version)
        impact = evaluate(hist, row, platform_id, app_bytes=app_bytes, allow_healed=allow_healed)
        if impact.runs <= pinned_impact.runs or impact.count(STUCK) > pinned_impact.count(STUCK):
            continue
        candidates.append(PinOption(row, impact, "intermediate"))
    candidates.sort(key=lambda o: (-o.impact.runs, o.impact.os_bytes, -o.release.module_version))
    return options + candidates[:limit]


# -------------------------------------------------------------------------------------------- text


def human_bytes(n: int) -> str:
    """``373 KB``, ``18.4 MB``, ``1.2 GB`` (1000-based, like the docs' "384-656 KB")."""
    for unit, size in (("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    if n >= 1000:
        return f"{round(n / 1000):,} KB"
    return f"{n:,} bytes"


BAR_CHARS = " ▏▎▍▌▋▊▉█"


def text_bar(fraction: float, width: int = 30) -> str:
    """A bar of ``width`` cells (eighths for the partial cell) for text and markdown histograms."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (BAR_CHARS[part] if part else "")
    if fraction > 0 and not bar:
        bar = "▏"
    return bar


@dataclass(frozen=True)
class HistogramRow:
    """One Device OS version of the fleet, with its devices and (when a build is given) its consequences."""

    release: str | None
    count: int
    share: float  # of the devices shown
    consequences: tuple[tuple[str, int], ...]  # (consequence, devices), worst first
    is_pin: bool = False
    is_floor: bool = False

    @property
    def worst(self) -> str:
        return self.consequences[0][0] if self.consequences else RUNS

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "devices": self.count,
            "share": round(self.share, 6),
            "consequences": dict(self.consequences),
            "worst": self.worst,
            "pin": self.is_pin,
            "floor": self.is_floor,
        }


def histogram_rows(hist: Histogram, platform_id: int, impact: Impact | None = None) -> list[HistogramRow]:
    """The Device OS histogram the CLI, the hover and the fleet view draw (computed once, here)."""
    versions = hist.versions()
    total = sum(n for _, n in versions) or 1
    low = floor(hist, platform_id)
    per_release: dict[str | None, dict[str, int]] = {}
    if impact is not None:
        for c in impact.cohorts:
            slot = per_release.setdefault(c.release, {})
            slot[c.consequence] = slot.get(c.consequence, 0) + c.count
    rows = []
    for release, count in versions:
        found = per_release.get(release, {})
        ordered = tuple(sorted(found.items(), key=lambda kv: -CONSEQUENCES.index(kv[0])))
        parsed = DeviceOSVersion.try_parse(release) if release else None
        rows.append(
            HistogramRow(
                release=release,
                count=count,
                share=count / total,
                consequences=ordered,
                is_pin=impact is not None and parsed is not None and parsed == impact.needed.version,
                is_floor=low is not None and parsed is not None and parsed == low.version,
            )
        )
    return rows


def with_allow_healed(impact: Impact, allow: bool) -> Impact:
    """The same impact judged under another healed-updates policy (no re-evaluation)."""
    return replace(impact, allow_healed=allow)
