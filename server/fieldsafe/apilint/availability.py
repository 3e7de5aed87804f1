"""Which availability a rule checks: the symbol index where it knows the name, the documented tables elsewhere.

Why: the documented tables (``apidata``) give the release the documentation names, per-platform notes
and releases after 6.2.0; the symbol index (``symindex``) records what every release's headers really
declare on every platform. Compiling is what the index answers, so for releases it covers the index
decides "will this compile on R/P"; the documentation keeps the wording and the runtime caveats
(``runtime_note``: declared, but documented as working only later or elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise

from fieldsafe import apidata, symindex
from fieldsafe.apidata import Availability, PlatformFacts, PlatformRule
from fieldsafe.versions import DeviceOSVersion


@lru_cache(maxsize=16384)
def effective(api: str, platform_id: int | None) -> Availability | None:
    """The availability of ``api`` on the platform (any platform when None) that the rules check.

    From the symbol index when it knows the name: ``since`` is the first release that declares it on
    the platform, ``absent_in`` the releases in between that lack it (parallel release lines, 1.0.x),
    ``removed_from`` the first release after the last that has it, and a platform rule when the
    platform never declares it. Otherwise the documented row.
    """
    docs = apidata.availability(api)
    presence = symindex.key_presence(api)
    if presence is None:
        return docs
    return _from_index(api, docs, presence, platform_id)


def _from_index(
    api: str, docs: Availability | None, presence: symindex.Presence, platform_id: int | None
) -> Availability | None:
    rels = symindex.releases()
    usable = _usable(platform_id)  # (index, release) pairs: built for the platform and shipped for it
    bits = _bits(presence.mask, platform_id)
    declared_i = [i for i, _ in usable if bits >> i & 1]
    base = docs or Availability(api=api, kind=_kind(presence), since=DeviceOSVersion(0, 4, 0), source="symbol index")
    if not declared_i:
        ever = presence.platforms_ever()
        if not ever:
            return docs
        rule = _platform_rule(docs, platform_id, ever)
        return replace(base, since=presence.releases_on(None)[0], lines=(), absent_in=frozenset(), removed_from=None,
                       platform_rules=(rule,), first_final=None)  # fmt: skip
    lo, hi = declared_i[0], declared_i[-1]
    have = set(declared_i)
    absent = frozenset(r for i, r in usable if lo < i < hi and i not in have)
    later = [r for i, r in usable if i > hi]
    lines = _release_lines([r for _, r in usable], {rels[i] for i in declared_i})
    since = lines[-1][1] if lines else rels[lo]
    return replace(base, since=since, lines=lines, absent_in=absent, removed_from=later[0] if later else None,
                   platform_rules=(), first_final=None, evidence=_evidence(presence, base),
                   baseline=base.baseline and since == usable[0][1] and not absent and not later)  # fmt: skip


@lru_cache(maxsize=64)
def _usable(platform_id: int | None) -> tuple[tuple[int, DeviceOSVersion], ...]:
    real = _real_releases(platform_id)
    built = set(symindex.built_on(platform_id))
    return tuple((i, r) for i, r in enumerate(symindex.releases()) if r in real and r in built)


def _bits(mask: int, platform_id: int | None) -> int:
    """Release bits (bit i = declared at release i) for one platform, or for any platform when None."""
    return _bits_cached(mask, platform_id)


@lru_cache(maxsize=8192)
def _bits_cached(mask: int, platform_id: int | None) -> int:
    width = len(symindex._index().platforms)
    p = None if platform_id is None else symindex._platform_bit(platform_id)
    full = (1 << width) - 1
    out = 0
    for i in range(len(symindex.releases())):
        row = (mask >> (i * width)) & full
        if (row >> p & 1) if p is not None else row:
            out |= 1 << i
    return out


def _release_lines(built: list[DeviceOSVersion], have: set[DeviceOSVersion]) -> tuple[tuple[int, DeviceOSVersion], ...]:
    """(major, first release) per release line when the name arrived on a later line after a gap that
    starts a new major version (Ledger: 5.8.0 on 5.x, 6.1.0 on 6.x; Watchdog: 4.1.0 on 4.x LTS, 5.3.0 on
    5.x). Empty when it is one run, or the gap is inside one line (that is ``absent_in``)."""
    runs: list[list[DeviceOSVersion]] = []
    prev_in = False
    for r in built:
        if r in have:
            if not prev_in:
                runs.append([])
            runs[-1].append(r)
        prev_in = r in have
    if len(runs) < 2 or any(b[0].major == a[-1].major for a, b in pairwise(runs)):
        return ()
    return tuple((run[0].major, run[0]) for run in runs)


@lru_cache(maxsize=64)
def _real_releases(platform_id: int | None) -> frozenset[DeviceOSVersion]:
    """Final releases Particle shipped for the platform (the release catalog). The index also holds
    builds that were never released for a platform (Gen 2 at the Gen 3-only 0.9.0): they do not count."""
    from fieldsafe.versions import catalog

    return frozenset(r.version.base for r in catalog().releases(platform_id, include_prereleases=False))


def _kind(presence: symindex.Presence) -> str:
    kinds = {r.kind for r in presence.rows}
    for kind, label in (("class", "class"), ("struct", "class"), ("method", "method"), ("function", "function"),
                        ("typedef", "type"), ("enum", "enum"), ("enumerator", "constant"), ("constant", "constant")):  # fmt: skip
        if kind in kinds:
            return label
    return "macro" if any(k.startswith("macro") for k in kinds) else "constant"


def _evidence(presence: symindex.Presence, base: Availability) -> str:
    header = next((r.header for r in presence.rows if r.header), "")
    return base.evidence or (f"symbol index: {header}" if header else "symbol index")


def _platform_rule(docs: Availability | None, platform_id: int | None, ever: list[str]) -> PlatformRule:
    """The rule that excludes a platform the index never sees the name on; docs wording when it agrees."""
    names = ", ".join(_display(n) for n in ever)
    allowed = frozenset(ever)

    def predicate(facts: PlatformFacts) -> bool:
        return facts.name in allowed

    if docs is not None and platform_id is not None:
        rule = docs.platform_problem(platform_id)
        if rule is not None and rule.kind == "only":
            if rule.label == "Wi-Fi devices" and _scan_only_wifi(platform_id):
                return PlatformRule("not", "scan-only Wi-Fi (HAL_PLATFORM_WIFI_SCAN_ONLY)",
                                    f"not declared where HAL_PLATFORM_WIFI_SCAN_ONLY is 1; declared on {names}",
                                    lambda facts: not predicate(facts))  # fmt: skip
            return rule
    return PlatformRule("only", names, f"declared only on {', '.join(ever)} (symbol index)", predicate)


def _scan_only_wifi(platform_id: int) -> bool:
    return symindex.platform_macro("HAL_PLATFORM_WIFI_SCAN_ONLY", platform_id, symindex.last_release()) == "1"


def _display(name: str) -> str:
    from fieldsafe import platforms

    try:
        return platforms.get(name).display_name
    except Exception:
        return name


def declared(api: str, target: DeviceOSVersion, platform_id: int | None) -> bool | None:
    """Does the target's build declare ``api``? None when the index cannot say (unknown name, after 6.2.0)."""
    presence = symindex.key_presence(api)
    if presence is None:
        return None
    return presence.declared(target, platform_id)


@dataclass(frozen=True)
class RuntimeNote:
    """Declared (it compiles) but documented as working only later, or only on other hardware."""

    severity: str  # "warning" when the documentation says it is not usable there, else "info"
    message: str
    since: DeviceOSVersion | None


def runtime_note(api: str, target: DeviceOSVersion, platform_id: int | None) -> RuntimeNote | None:
    """The documentation's caveat for an API the target declares, or None."""
    docs = apidata.availability(api)
    if docs is None or declared(api, target, platform_id) is not True:
        return None
    note = docs.note.lower()
    if docs.source == "docs" and docs.since > target.base and "declared in headers since" in note:
        usable = "usable from" in note
        msg = (f"`{api}` is declared in Device OS {target}, so it compiles, but Device OS documents it "
               f"{'as usable only' if usable else 'only'} from {docs.since}: on {target} "
               f"{'the system rejects it at run time (not supported)' if usable else 'it may not work'}")  # fmt: skip
        return RuntimeNote("warning" if usable else "info", msg, docs.since)
    if platform_id is not None:
        rule = docs.platform_problem(platform_id)
        facts = apidata.platform_facts(platform_id)
        # only a restriction the documentation states for this API (not one implied for a whole object,
        # "WiFi." -> Wi-Fi devices, which the scan-only Wi-Fi of the Tracker contradicts)
        if (
            rule is not None
            and facts is not None
            and rule.clause.lower() in docs.note.lower()
            and not (
                rule.label == "Wi-Fi devices"
                and symindex.platform_macro("HAL_PLATFORM_WIFI", platform_id, target) == "1"
            )
        ):  # a scan-only Wi-Fi radio (Tracker) is still a Wi-Fi radio: what it declares there works
            msg = (f"`{api}` is declared on {facts.display_name}, so it compiles, but Device OS documents it "
                   f"for {rule.label} only: check that it works on this hardware")  # fmt: skip
            return RuntimeNote("info", msg, None)
    return None
