"""Device OS API availability: which release first has an API, on which release lines and platforms.

Why a module of its own: the lint (``apilint``), the language server and the emulator's stub-header
generator all ask the same questions ("does 5.4.0 have ``Ledger``?", "is ``BLE`` on a Photon?",
"which ``SYSTEM_VERSION_*`` macro stands for 1.2.1?") and must get the same answers. The answers
come from the bundled tables in ``data/device-os-data/`` (see ``API-DATA.md`` there), parsed once,
lazily, on first use.

Availability is not always one number. Device OS has parallel release lines, so a few APIs arrived
on two lines at different points (``Ledger``: 5.8.0 on 5.x, 6.1.0 on 6.x, absent in 6.0.0; the
hardware ``Watchdog``: 4.1.0 on 4.x LTS, absent in 5.0.0-5.2.0), Gen 3 APIs are missing from the
Gen 2-only 1.0.0/1.0.1, and a few APIs were removed with Gen 2 in 4.0.0. All of that is read from
the ``platforms_note`` column and from ``headers_absent_in_finals`` in ``api-crosscheck.tsv``.

Versions are compared by their base (``X.Y.Z``): the data's ``since`` is the base version of the
first tag that has the API, so a prerelease of X counts as X (API-DATA.md, "Prereleases").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

from fieldsafe._data import read_tsv
from fieldsafe.versions import DeviceOSVersion

_DATA = "device-os-data/"
_BASELINE_SINCE = DeviceOSVersion(0, 4, 0)
_VERSION_RE = r"(\d+\.\d+\.\d+)"


# --------------------------------------------------------------------------------------------------
# Platform restrictions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformFacts:
    """The few platform facts the notes talk about (kept here so the rules can be tested without a catalog)."""

    id: int
    name: str
    display_name: str
    generation: int
    mcu: str
    cellular: bool
    wifi: bool

    @property
    def ble(self) -> bool:
        """Gen 3 and later all have a BLE radio; Gen 1/2 have none."""
        return self.generation >= 3


@cache
def platform_facts(platform_id: int) -> PlatformFacts | None:
    """Facts for a platform id, from ``fieldsafe.platforms`` (None for unknown ids)."""
    from fieldsafe import platforms

    p = platforms.find(platform_id)
    if p is None:
        return None
    return PlatformFacts(p.id, p.name, p.display_name, p.generation, p.mcu, p.cellular, p.wifi)


# Each group is a phrase used in the notes and the predicate that says whether a platform belongs.
# Ordered: the first phrase found in a clause wins, so longer phrases come first.
_GROUPS: tuple[tuple[str, str, Callable[[PlatformFacts], bool]], ...] = (
    ("electron 2g/3g and e310", "Electron", lambda p: p.id == 10),
    ("boron 2g/3g and boron lte", "Boron", lambda p: p.id == 13),
    ("tracker som", "Tracker SoM", lambda p: p.id == 26),
    ("gen 2 cellular", "Gen 2 cellular (Electron/E-Series)", lambda p: p.generation == 2 and p.cellular),
    ("photon/p1", "Photon/P1", lambda p: p.id in (6, 8)),
    ("p1", "P1", lambda p: p.id == 8),
    ("photon, p1, electron, e-series", "Gen 2", lambda p: p.generation == 2),
    ("gen 2", "Gen 2", lambda p: p.generation == 2),
    ("gen 3 (nrf52840) and rtl872x", "Gen 3 and RTL872x", lambda p: p.mcu in ("nrf52840", "rtl872x")),
    ("gen 3 and gen 4", "Gen 3 and Gen 4", lambda p: p.mcu in ("nrf52840", "rtl872x")),
    ("gen 3", "Gen 3 (nRF52840)", lambda p: p.mcu == "nrf52840"),
    ("nrf52", "nRF52840", lambda p: p.mcu == "nrf52840"),
    ("rtl872x", "RTL872x (P2, Photon 2, M-SoM)", lambda p: p.mcu == "rtl872x"),
    ("p2, photon 2, m-som", "P2, Photon 2, M-SoM", lambda p: p.mcu == "rtl872x"),
    ("p2/photon 2", "P2/Photon 2", lambda p: p.id == 32),
    ("argon", "Argon", lambda p: p.id == 12),
    ("ble devices", "BLE devices", lambda p: p.ble),
    ("devices with pmic/fuel gauge", "devices with a PMIC/fuel gauge", lambda p: p.cellular),
    ("cellular devices", "cellular devices", lambda p: p.cellular),
    ("wi-fi devices", "Wi-Fi devices", lambda p: p.wifi),
)


def _group(text: str) -> tuple[str, Callable[[PlatformFacts], bool]] | None:
    """The platform group a clause names; text outside parentheses wins ("BLE devices only (Gen 3, ...)")."""
    low = text.lower()
    for candidate in (re.sub(r"\([^)]*\)", " ", low), low):
        for phrase, label, pred in _GROUPS:
            if re.search(r"(?<![\w/])" + re.escape(phrase) + r"(?![\w/])", candidate):
                return label, pred
    return None


@dataclass(frozen=True)
class PlatformRule:
    """One platform clause of a note: ``only`` (the API exists only there), ``not`` (never there) or
    ``from`` (there it arrives later, at ``since``)."""

    kind: str
    label: str
    clause: str
    predicate: Callable[[PlatformFacts], bool] = field(compare=False, repr=False)
    since: DeviceOSVersion | None = None


def _parse_platform_rules(note: str) -> tuple[PlatformRule, ...]:
    """Rules from the ``;``-separated note clauses. Unrecognised clauses restrict nothing (conservative)."""
    rules: list[PlatformRule] = []
    for raw in note.split(";"):
        clause = raw.strip()
        low = clause.lower()
        if not clause or " line from " in low or low.startswith("absent in") or "slave mode" in low:
            continue
        # "LESC on nRF52 from 3.1.0, RTL872x from 5.1.0", "P2/Photon 2 from 5.4.0", "Gen 3 from 2.0.0"
        parts = re.split(r"(?<=\.\d),\s*", clause)  # "nRF52 from 3.1.0, RTL872x from 5.1.0"
        froms = [m.groups() for p in parts if (m := re.fullmatch(r"(.*?)\s+from\s+" + _VERSION_RE, p.strip()))]
        if froms and "line" not in low and "only" not in low:
            for who, ver in froms:
                grp = _group(who)
                if grp:
                    rules.append(PlatformRule("from", grp[0], clause, grp[1], DeviceOSVersion.parse(ver)))
            continue
        if low.startswith("not ") or " not on " in low or " not " in f" {low}":
            m = re.search(r"\bnot (?:on )?(.*)$", low)
            grp = _group(m.group(1)) if m else None
            if grp and not m.group(1).startswith("in "):  # "not in 1.0.0/1.0.1" is a version rule
                rules.append(PlatformRule("not", grp[0], clause, grp[1]))
            continue
        if re.search(r"\bonly\b", low) or low.startswith(("devices with pmic", "rtl872x devices")):
            grp = _group(low)
            if grp:
                rules.append(PlatformRule("only", grp[0], clause, grp[1]))
    return tuple(rules)


# --------------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    """When and where one API (a lint key such as ``Particle.publishVitals``) exists.

    ``since`` is the table's first release (for two-line APIs it follows the documentation, i.e. the
    later line); ``lines`` maps a major line to the release where the API arrived on that line;
    ``absent_in`` lists final releases after ``since`` that lack it; ``removed_from`` is set when the
    API is gone from that release on. Use ``available_in`` rather than comparing ``since`` yourself.
    """

    api: str
    kind: str
    since: DeviceOSVersion
    note: str = ""
    source: str = ""
    evidence: str = ""
    baseline: bool = False
    overload: bool = False
    lines: tuple[tuple[int, DeviceOSVersion], ...] = ()
    absent_in: frozenset[DeviceOSVersion] = frozenset()
    removed_from: DeviceOSVersion | None = None
    first_final: DeviceOSVersion | None = None
    platform_rules: tuple[PlatformRule, ...] = ()

    @property
    def platforms_note(self) -> str:
        """The raw ``platforms_note`` text, for messages and hovers."""
        return self.note

    @property
    def system_event(self) -> bool:
        """True for ``System.on()`` event names, which must only be matched as ``System.on`` arguments."""
        return "system event for System.on()" in self.note

    def _line_start(self, major: int) -> DeviceOSVersion | None:
        for line_major, start in self.lines:
            if line_major == major:
                return start
        return None

    def available_in(self, version: DeviceOSVersion, platform_id: int | None = None) -> bool:
        """Does release ``version`` (any prerelease of X.Y.Z counts as X.Y.Z) declare this API?

        With ``platform_id``, a later per-platform arrival ("P2/Photon 2 from 5.4.0") is applied too;
        whether the platform has the API at all is ``allowed_on``'s question, not this one's.
        """
        base = version.base
        if self.removed_from is not None and base >= self.removed_from:
            return False
        if base in self.absent_in:
            return False
        start = self.since_for_platform(platform_id)
        line_start = self._line_start(base.major)
        if line_start is None:
            return base >= start
        # on a listed line the line's own start counts; a later per-platform arrival still applies
        return base >= (line_start if start == self.since else max(line_start, start))

    def since_for_platform(self, platform_id: int | None) -> DeviceOSVersion:
        """``since``, or the later release a ``from`` clause names for this platform."""
        facts = platform_facts(platform_id) if platform_id is not None else None
        if facts is None:
            return self.since
        later = [r.since for r in self.platform_rules if r.kind == "from" and r.since and r.predicate(facts)]
        return max([self.since, *later])

    def first_release_for_line(self, version: DeviceOSVersion) -> DeviceOSVersion | None:
        """The release on ``version``'s major line from which the API is available.

        Returns the line's own start for multi-line APIs, ``since`` when it falls in that line,
        ``X.0.0`` when the API predates the line, and None when the line never gets it (by our data).
        """
        major = version.base.major
        line_start = self._line_start(major)
        if line_start is not None:
            return line_start
        if self.removed_from is not None and major >= self.removed_from.major:
            return None
        if self.lines and major < min(m for m, _ in self.lines):
            return None
        if self.since.major == major:
            return self.since
        if self.since.major < major:
            return DeviceOSVersion(major, 0, 0)
        return None

    def earliest(self) -> DeviceOSVersion:
        """The lowest release that has the API on any line (5.8.0 for ``Ledger``)."""
        return min([self.since, *(s for _, s in self.lines)])

    def allowed_on(self, platform_id: int | None) -> bool:
        """False when a note says the platform lacks the API (BLE on Gen 2, cellular-only on Wi-Fi ...)."""
        return self.platform_problem(platform_id) is None

    def platform_problem(self, platform_id: int | None) -> PlatformRule | None:
        """The rule that excludes ``platform_id``, or None (unknown platforms are never excluded)."""
        facts = platform_facts(platform_id) if platform_id is not None else None
        if facts is None:
            return None
        for rule in self.platform_rules:
            if rule.kind == "only" and not rule.predicate(facts):
                return rule
            if rule.kind == "not" and rule.predicate(facts):
                return rule
        return None


# Objects that only exist on some radios: a Wi-Fi-only device has no ``Cellular`` object, Gen 2 has no
# ``BLE``. The notes state this only for some rows, so it is implied for every member.
_IMPLIED: tuple[tuple[str, str], ...] = (
    ("Cellular.", "cellular devices only"),
    ("CellularSignal", "cellular devices only"),
    ("Tether.", "cellular devices only"),
    ("WiFi.", "Wi-Fi devices only"),
    ("WiFiSignal", "Wi-Fi devices only"),
    ("WiFiCredentials", "Wi-Fi devices only"),
    ("BLE.", "BLE devices only"),
    ("Ble", "BLE devices only"),
    ("NFC.", "Gen 3 only (NFC)"),
)


def _implied_rules(api: str, rules: tuple[PlatformRule, ...]) -> tuple[PlatformRule, ...]:
    for prefix, clause in _IMPLIED:
        if api.startswith(prefix) and not any(r.kind == "only" for r in rules):
            return (*rules, *_parse_platform_rules(clause))
    return rules


def _versions_in(text: str) -> list[DeviceOSVersion]:
    return [DeviceOSVersion.parse(v) for v in re.findall(_VERSION_RE, text)]


def _parse_lines(note: str) -> tuple[tuple[int, DeviceOSVersion], ...]:
    found = re.findall(r"(\d+)\.x (?:LTS )?line from " + _VERSION_RE, note)
    return tuple(sorted((int(major), DeviceOSVersion.parse(v)) for major, v in found))


def _parse_absent(note: str, crosscheck: str) -> frozenset[DeviceOSVersion]:
    """Absent finals from the note ("absent in 5.0.0-5.2.0", "not in 1.0.0/1.0.1") and the crosscheck list.

    A crosscheck list ending in ``...`` for an API the v6.2.0 headers lack means "removed from the
    first listed release on".
    """
    absent: set[DeviceOSVersion] = set()
    for m in re.finditer(r"absent in ([\d., -]+?)(?:\)|;|$)", note):
        text = m.group(1)
        rng = re.fullmatch(r"\s*" + _VERSION_RE + r"\s*-\s*" + _VERSION_RE + r"\s*", text)
        if rng:
            absent.update(_expand_range(DeviceOSVersion.parse(rng.group(1)), DeviceOSVersion.parse(rng.group(2))))
        else:
            absent.update(_versions_in(text))
    for m in re.finditer(r"not in ([\d./]+)", note):
        absent.update(_versions_in(m.group(1)))
    absent.update(_versions_in(crosscheck))
    return frozenset(absent)


def _expand_range(lo: DeviceOSVersion, hi: DeviceOSVersion) -> set[DeviceOSVersion]:
    """Final releases from ``lo`` to ``hi`` inclusive, per the release catalog (plus the two ends)."""
    from fieldsafe.versions import catalog

    out = {lo, hi}
    for rel in catalog().releases(include_prereleases=False):
        if lo <= rel.version.base <= hi:
            out.add(rel.version.base)
    return out


def _first_final(note: str) -> DeviceOSVersion | None:
    m = re.search(r"first final release containing it: " + _VERSION_RE, note)
    return DeviceOSVersion.parse(m.group(1)) if m else None


@dataclass(frozen=True)
class _Cross:
    absent: str
    in_620: str


def _row_to_availability(row: Mapping[str, str], cross: _Cross | None, overload: bool) -> Availability:
    note = row.get("platforms_note", "")
    absent = _parse_absent(note, cross.absent if cross else "")
    removed = None
    if cross and cross.absent.endswith("...") and cross.in_620 == "no":
        removed = min(_versions_in(cross.absent))
    return Availability(
        api=row["api"],
        kind=row["kind"],
        since=DeviceOSVersion.parse(row["since"]),
        note=note,
        source=row.get("source", ""),
        evidence=row.get("evidence", ""),
        overload=overload,
        lines=_parse_lines(note),
        absent_in=absent,
        removed_from=removed,
        first_final=_first_final(note),
        platform_rules=_implied_rules(row["api"], _parse_platform_rules(note)),
    )


@dataclass(frozen=True)
class _Tables:
    apis: dict[str, Availability]
    overloads: dict[str, tuple[Availability, ...]]


@cache
def _tables() -> _Tables:
    """Parse the three API tables once (about 10 ms); every lookup after that is a dict access."""
    cross: dict[tuple[str, str], _Cross] = {}
    for row in read_tsv(_DATA + "api-crosscheck.tsv"):
        cross[(row["api"], row["kind"])] = _Cross(row["headers_absent_in_finals"], row["in_v6.2.0"])
    apis: dict[str, Availability] = {}
    for row in read_tsv(_DATA + "api-since.tsv"):
        apis[row["api"]] = _row_to_availability(row, cross.get((row["api"], row["kind"])), overload=False)
    for row in read_tsv(_DATA + "api-baseline.tsv"):
        c = cross.get((row["api"], row["kind"]))
        removed = None
        if c and c.absent.endswith("...") and c.in_620 == "no":
            removed = min(_versions_in(c.absent))
        apis.setdefault(
            row["api"],
            Availability(
                api=row["api"],
                kind=row["kind"],
                since=_BASELINE_SINCE,
                note="",
                source="baseline",
                evidence=row.get("docs_heading", ""),
                baseline=True,
                removed_from=removed,
                platform_rules=_implied_rules(row["api"], ()),
            ),
        )
    overloads: dict[str, list[Availability]] = {}
    for row in read_tsv(_DATA + "api-overloads.tsv"):
        overloads.setdefault(row["api"], []).append(_row_to_availability(row, None, overload=True))
    return _Tables(apis, {k: tuple(v) for k, v in overloads.items()})


def availability(api: str) -> Availability | None:
    """Availability of one lint key (``Particle.publishVitals``, ``Variant::toInt``, ``WITH_ACK``), or None.

    Baseline APIs (documented, no version) come back with ``baseline=True`` and ``since`` 0.4.0.
    """
    return _tables().apis.get(api)


def overloads(api: str) -> tuple[Availability, ...]:
    """Later argument forms of ``api`` (``Particle.publishVitals`` with a chrono duration, 1.5.0 ...)."""
    return _tables().overloads.get(api, ())


def all_apis() -> Mapping[str, Availability]:
    """Every known API keyed by lint key (read-only view; the stub-header generator iterates it)."""
    return _tables().apis


# --------------------------------------------------------------------------------------------------
# SYSTEM_VERSION macros
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MacroInfo:
    """One ``SYSTEM_VERSION_*`` macro: the release it names, its value and from which tag headers define it."""

    name: str
    version: DeviceOSVersion | None
    value: int | None
    first_defined: DeviceOSVersion | None
    release_type: str
    stable: bool  # still in the v6.2.0 header (v090, v111, v202 were only in their own release's header)

    def defined_in(self, target: DeviceOSVersion) -> bool:
        """Is the macro defined by ``target``'s ``system_version.h``?"""
        if self.first_defined is None or target < self.first_defined:
            return False
        if self.stable or self.version is None:
            return True
        return target.base == self.version.base


def _parse_tag(tag: str) -> DeviceOSVersion | None:
    tag = tag.strip()
    m = re.fullmatch(r"v?(\d+\.\d+\.\d+)(?:\.\d+)?(-.*)?", tag)
    if not m:
        return None
    return DeviceOSVersion.try_parse(m.group(1) + (m.group(2) or ""))


@cache
def macros() -> Mapping[str, MacroInfo]:
    """All ``SYSTEM_VERSION_*`` macros by name (parsed once)."""
    out: dict[str, MacroInfo] = {}
    for row in read_tsv(_DATA + "system-version-macros.tsv"):
        num = row.get("numeric_value", "")
        out[row["macro"]] = MacroInfo(
            name=row["macro"],
            version=DeviceOSVersion.try_parse(row["device_os_version"]),
            value=int(num, 16) if re.fullmatch(r"0x[0-9A-Fa-f]+", num or "") else None,
            first_defined=_parse_tag(row["first_tag_defined"]),
            release_type=row["release_type"],
            stable=row.get("in_v6.2.0_header") == "yes",
        )
    return out


def macro_version(name: str) -> DeviceOSVersion | None:
    """The release a ``SYSTEM_VERSION_vXYZ`` (or prerelease) macro stands for; None when unknown."""
    info = macros().get(name)
    return info.version if info else None


def system_version_value(version: DeviceOSVersion) -> int:
    """The numeric ``SYSTEM_VERSION`` that ``version``'s headers define (``0xMMmmppXX``).

    From 1.2.0 finals end in 0xFF and alpha/beta/rc n in 0x00+n/0x40+n/0x80+n; before that finals end
    in 0x00 and rc n in n (API-DATA.md, "SYSTEM_VERSION macros").
    """
    for info in macros().values():
        if info.release_type == "final" and info.version == version and info.value is not None:
            return info.value
    head = (version.major << 24) | (version.minor << 16) | (version.patch << 8)
    new_scheme = version.base >= DeviceOSVersion(1, 2, 0)
    pre = version.prerelease
    if not pre or not isinstance(pre[0], str) or pre[0] not in ("alpha", "beta", "rc"):
        return head | (0xFF if new_scheme else 0)
    n = pre[1] if len(pre) > 1 and isinstance(pre[1], int) else 0
    if not new_scheme:
        return head | (n & 0xFF)
    return head | (({"alpha": 0x00, "beta": 0x40, "rc": 0x80}[pre[0]] + n) & 0xFF)


def default_macro_value(major: int, minor: int, patch: int, low: int = 0xFF) -> int:
    """What ``SYSTEM_VERSION_DEFAULT(x,y,z)`` (low 0xFF) and ``_ALPHA/_BETA/_RC`` expand to."""
    return (major << 24) | (minor << 16) | (patch << 8) | (low & 0xFF)


FUNCTION_MACROS_FROM = DeviceOSVersion(1, 2, 0, ("beta", 1))
"""``SYSTEM_VERSION_DEFAULT``/``_ALPHA``/``_BETA``/``_RC`` exist from v1.2.0-beta.1 (a preprocessor error before)."""


def stable_final_macro(version: DeviceOSVersion) -> MacroInfo | None:
    """The ``SYSTEM_VERSION_vXYZ`` macro for exactly ``version`` if it is a final one still in today's header."""
    for info in macros().values():
        if info.release_type == "final" and info.stable and info.version == version.base and info.value:
            return info
    return None


@cache
def _stable_finals() -> tuple[MacroInfo, ...]:
    """Stable final-release macros in release order (sorted once: every guard fix asks)."""
    return tuple(sorted(
        (i for i in macros().values() if i.release_type == "final" and i.stable and i.version and i.value),
        key=lambda i: i.version,  # type: ignore[arg-type,return-value]
    ))  # fmt: skip


def guard_macro_for(api: Availability) -> MacroInfo | None:
    """The lowest stable final-release macro whose release has ``api`` (v121 for an API since 1.2.0).

    None when no such macro exists (6.3.0 APIs: the tables stop at v6.2.0) or when the API is on more
    than one line, where one ``>=`` cannot express the availability.
    """
    if api.lines or api.absent_in or api.removed_from:
        return None
    for info in _stable_finals():
        assert info.version is not None
        if info.version >= api.since and api.available_in(info.version):
            return info
    return None
