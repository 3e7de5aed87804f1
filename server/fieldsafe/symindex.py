"""The Device OS symbol index and platform macros: what release R on platform P declares and defines.

Why a module of its own: the API check asks "does R on P declare X?" for every name user code
writes (not only the ~800 documented ones), and "what does ``#if HAL_PLATFORM_FILESYSTEM`` see on
P at R?" for every condition; the emulator's header generator asks the same. The answers come from
the real application build of every final release 0.4.0-6.2.0 on every platform (``API-DATA.md``,
"Symbol index per release" and "Platform macros"), read once through ``fieldsafe.symbols`` (the
module that loads the packed tables for the API check and the emulator's header generator alike).

Availability is a bit set over (release index, platform index): one Python int per name, so unions
(overloads, base classes, ``spark::``/``particle::`` lookups) and intersections (an object that exists
only where its class does) are single operations. Releases after 6.2.0 are not in the index;
``coverage`` says so and callers fall back to the documented tables there.

This module adds the questions the API check asks: visibility through ``spark::``/``particle::``
using-directives (``particle`` only from 0.6.1), members through base classes, global objects through
their ``type=`` class, and ``#if`` values of platform macros. Pure: no editor or network imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from fieldsafe.versions import DeviceOSVersion

# Platform order of the index's platform lists (API-DATA.md); bit p of a release's group is platform p.
_PLATFORMS = ("photon", "p1", "electron", "argon", "boron", "xenon", "bsom", "b5som", "tracker", "trackerm",
              "esomx", "p2", "msom")  # fmt: skip
# Releases each platform was built at for the symbol index (API-DATA.md, "Coverage").
_COVERAGE = {
    "photon": (("0.4.0", "3.3.1"),), "p1": (("0.4.0", "3.3.1"),), "electron": (("0.4.5", "3.3.1"),),
    "argon": (("0.9.0", "0.9.0"), ("1.1.0", "6.2.0")), "boron": (("0.9.0", "0.9.0"), ("1.1.0", "6.2.0")),
    "xenon": (("0.9.0", "0.9.0"), ("1.1.0", "1.5.2")), "bsom": (("1.1.0", "6.2.0"),),
    "b5som": (("1.5.0", "6.2.0"),), "tracker": (("2.0.0", "6.2.0"),), "esomx": (("4.0.0", "6.2.0"),),
    "trackerm": (("5.0.0", "6.2.0"),), "p2": (("5.0.0", "6.2.0"),), "msom": (("5.5.0", "6.2.0"),),
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One row of the index: a (name, kind, scope, arity) over a release range and platform set."""

    name: str
    kind: str
    arity: str
    mask: int
    header: str
    note: str
    scope: str = ""  # only when it is not the name's own prefix ("-" = global); see the packer

    def note_value(self, key: str) -> str | None:
        """``type`` -> ``spark::Logger`` for a note ``type=spark::Logger`` (None when absent)."""
        for part in self.note.split(";"):
            if part.startswith(key + "="):
                return part[len(key) + 1 :]
        return None


@dataclass(frozen=True)
class _Index:
    releases: tuple[DeviceOSVersion, ...]
    platforms: tuple[str, ...]  # index platform names, in bit order
    built: int  # bits of (release, platform) pairs that were built
    rows: dict[str, tuple[Row, ...]]
    members: dict[str, frozenset[str]]  # qualified class -> member names

    @property
    def width(self) -> int:
        return len(self.platforms)


@cache
def _index() -> _Index:
    """Bit sets for every row of the index, read through ``fieldsafe.symbols`` (the one loader of the data)."""
    from fieldsafe import symbols

    rows_in = symbols.symbols()
    distinct = {id(v): v for sym in rows_in for v in (sym.first, sym.last)}  # parsed once and shared
    for group in symbols._macro_rows().values():  # same data, same package
        distinct.update((id(v), v) for _, _, first, last, _ in group for v in (first, last))
    releases = tuple(sorted({v.base for v in distinct.values()}))
    at_base = {v: i for i, v in enumerate(releases)}
    by_id = {k: at_base[v.base] for k, v in distinct.items()}
    width = len(_PLATFORMS)
    built = 0
    for p, name in enumerate(_PLATFORMS):
        for lo, hi in _COVERAGE[name]:
            for r in range(at_base[DeviceOSVersion.parse(lo)], at_base[DeviceOSVersion.parse(hi)] + 1):
                built |= 1 << (r * width + p)
    every = (1 << width) - 1
    bit = {n: 1 << i for i, n in enumerate(_PLATFORMS)}
    rows: dict[str, list[Row]] = {}
    members: dict[str, set[str]] = {}
    for sym in rows_in:
        if sym.first.build:
            continue  # the special 5.4.0+ledger tag is kept out of the ranges (its differences are notes)
        pmask = every if sym.platforms is None else sum(bit[p] for p in sym.platforms if p in bit)
        lo_i, hi_i = by_id[id(sym.first)], by_id[id(sym.last)]
        mask = _range_mask(lo_i, hi_i, width) & _repeat(pmask, width, len(releases)) & built
        implied = sym.name.rsplit("::", 1)[0] if "::" in sym.name else ""
        scope = "" if sym.scope == implied else (sym.scope or "-")
        rows.setdefault(sym.name, []).append(Row(sym.name, sym.kind, sym.arity, mask, sym.header, sym.note, scope))
        if "::" in sym.name and sym.kind in ("method", "field", "enumerator", "typedef", "enum", "class", "struct",
                                              "constant"):  # fmt: skip
            owner, _, member = sym.name.rpartition("::")
            members.setdefault(owner, set()).add(member)
    return _Index(releases, _PLATFORMS, built, {k: tuple(v) for k, v in rows.items()},
                  {k: frozenset(v) for k, v in members.items()})  # fmt: skip


def _range_mask(lo: int, hi: int, width: int) -> int:
    return ((1 << ((hi + 1) * width)) - 1) ^ ((1 << (lo * width)) - 1)


@lru_cache(maxsize=256)
def _repeat(pmask: int, width: int, count: int) -> int:
    out = 0
    for r in range(count):
        out |= pmask << (r * width)
    return out


# --------------------------------------------------------------------------------------------------
# Releases and platforms
# --------------------------------------------------------------------------------------------------


def releases() -> tuple[DeviceOSVersion, ...]:
    """The final releases the index covers, in order (0.4.0 ... 6.2.0)."""
    return _index().releases


def last_release() -> DeviceOSVersion:
    """The newest release in the index (6.2.0): later releases are answered by the documented tables."""
    return _index().releases[-1]


@lru_cache(maxsize=1024)
def release_index(version: DeviceOSVersion) -> int | None:
    """Index of the processed release whose headers ``version`` has: the highest final <= its base.

    5.8.1 and 6.1.2 have no tag of their own in the source repository, so they read as 5.8.0 and
    6.1.1 (patch releases that did not change headers); None above 6.2.0 or below 0.4.0.
    """
    import bisect

    base = version.base
    rels = _index().releases
    if base > rels[-1] or base < rels[0]:
        return None
    return bisect.bisect_right(rels, base) - 1


@cache
def _platform_bit(platform_id: int) -> int | None:
    from fieldsafe import platforms

    p = platforms.find(platform_id)
    if p is None or p.name not in _index().platforms:
        return None
    return _index().platforms.index(p.name)


@lru_cache(maxsize=4096)
def covers(version: DeviceOSVersion, platform_id: int | None) -> bool:
    """Was (release, platform) built for the index? False beyond 6.2.0 and for unindexed platforms."""
    r = release_index(version)
    if r is None:
        return False
    if platform_id is None:
        return True
    p = _platform_bit(platform_id)
    return p is not None and bool(_index().built >> (r * _index().width + p) & 1)


# --------------------------------------------------------------------------------------------------
# Availability bit sets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """Where a name is declared: a bit set over (release, platform), with readers for messages."""

    mask: int
    rows: tuple[Row, ...] = ()

    def declared(self, version: DeviceOSVersion, platform_id: int | None) -> bool | None:
        """Declared at ``version`` on the platform (any platform when None)? None outside the index."""
        r = release_index(version)
        if r is None:
            return None
        idx = _index()
        if platform_id is None:
            return bool((self.mask >> (r * idx.width)) & ((1 << idx.width) - 1))
        p = _platform_bit(platform_id)
        if p is None:
            return None
        return bool(self.mask >> (r * idx.width + p) & 1)

    def releases_on(self, platform_id: int | None) -> list[DeviceOSVersion]:
        """The releases that declare it on the platform (on any platform when None), in order."""
        idx = _index()
        p = None if platform_id is None else _platform_bit(platform_id)
        if platform_id is not None and p is None:
            return []
        full = (1 << idx.width) - 1
        out = []
        for r, rel in enumerate(idx.releases):
            row = (self.mask >> (r * idx.width)) & full
            if (row >> p & 1) if p is not None else row:
                out.append(rel)
        return out

    def platforms_at(self, version: DeviceOSVersion) -> list[str]:
        """Index platform names that declare it at ``version``."""
        r = release_index(version)
        if r is None:
            return []
        idx = _index()
        return [n for p, n in enumerate(idx.platforms) if self.mask >> (r * idx.width + p) & 1]

    def platforms_ever(self) -> list[str]:
        """Index platform names that declare it at some release."""
        idx = _index()
        return [n for p, n in enumerate(idx.platforms) if self.mask & _repeat(1 << p, idx.width, len(idx.releases))]

    def __bool__(self) -> bool:
        return bool(self.mask)


def built_on(platform_id: int | None) -> list[DeviceOSVersion]:
    """The releases the index has for a platform (all when None)."""
    return Presence(_index().built).releases_on(platform_id)


def rows(name: str) -> tuple[Row, ...]:
    """The index rows of one fully qualified name (``CloudClass::publishVitals``, ``spark::WiFi``)."""
    return _index().rows.get(name, ())


def _mask(rows_: Iterable[Row], kinds: Iterable[str] | None = None) -> int:
    wanted = set(kinds) if kinds is not None else None
    out = 0
    for r in rows_:
        if (wanted is None or r.kind in wanted) and "include-guard" not in r.note:
            out |= r.mask
    return out


@cache
def _using(namespace: str) -> int:
    """Where ``using namespace <namespace>;`` is in effect at global scope (spark: always; particle: 0.6.1+)."""
    return _mask(r for r in rows(namespace) if r.kind == "using-directive" and r.scope in ("", "-"))


_GLOBAL_NAMESPACES = ("spark", "particle")


def visible(name: str) -> list[tuple[str, int]]:
    """(qualified name, where it is visible unqualified) for a plain name written in user code."""
    out = []
    if rows(name):
        out.append((name, _index().built))
    for ns in _GLOBAL_NAMESPACES:
        q = f"{ns}::{name}"
        if rows(q):
            out.append((q, _using(ns)))
    return out


_TYPE_KINDS = ("class", "struct", "union", "typedef", "enum")
_VALUE_KINDS = ("variable", "macro-object", "macro-function", "constant", "function", "enumerator")


def plain(name: str) -> Presence | None:
    """Where a plain name (type, function, constant, macro, global) is visible; None if never."""
    found = visible(name)
    if not found:
        return None
    mask = 0
    rs: list[Row] = []
    for q, where in found:
        own = rows(q)
        mask |= _mask(own) & where
        rs.extend(own)
    return Presence(mask, tuple(rs)) if rs else None


@lru_cache(maxsize=4096)
def _class_member(cls: str, member: str, depth: int = 0) -> int:
    """Where class ``cls`` (qualified) has ``member``, directly or through its bases."""
    mask = _mask(rows(f"{cls}::{member}"))
    if depth > 6:
        return mask
    ns = cls.rsplit("::", 1)[0] + "::" if "::" in cls else ""
    for r in rows(cls):
        bases = r.note_value("bases")
        if not bases:
            continue
        for base in bases.split(","):
            base = base.strip().split("<", 1)[0]
            for q in dict.fromkeys((f"{ns}{base}", base, f"spark::{base}", f"particle::{base}")):
                if rows(q):
                    mask |= _class_member(q, member, depth + 1) & r.mask
                    break
    return mask


def member(cls: str, name: str) -> Presence | None:
    """Where ``cls::name`` is usable, with ``cls`` as user code writes it (``SystemSleepConfiguration``).

    ``A::B::C`` where ``B`` is an unscoped enum of ``A`` is found as ``A::C`` (how the index spells it).
    """
    parts = cls.split("::")
    found = visible(parts[0])
    if not found:
        return None
    mask = 0
    rs: list[Row] = []
    for q, where in found:
        owner = "::".join([q, *parts[1:]])
        m = _class_member(owner, name)
        if not m and len(parts) > 1:
            m = _class_member("::".join([q, *parts[1:-1]]), name)
        if m:
            mask |= m & where & _mask(rows(q))
            rs.extend(rows(f"{owner}::{name}"))
    return Presence(mask, tuple(rs)) if mask else None


def object_member(obj: str, name: str) -> Presence | None:
    """Where ``obj.name`` compiles for a Device OS global object (``Particle``, ``WiFi``, ``BLE``, ``Serial1``)."""
    mask = 0
    rs: list[Row] = []
    for q, where in visible(obj):
        for r in rows(q):
            t = r.note_value("type")
            if t is None or r.kind not in ("variable", "macro-object", "macro-function"):
                continue
            m = _class_member(t, name)
            if m:
                mask |= m & r.mask & where
                rs.extend(rows(f"{t}::{name}"))
    return Presence(mask, tuple(rs)) if mask else None


def object_type(obj: str) -> str | None:
    """The qualified class of a global object at its newest release (``spark::WiFiClass`` for ``WiFi``)."""
    best: Row | None = None
    for q, _ in visible(obj):
        for r in rows(q):
            if r.note_value("type") and (best is None or r.mask.bit_length() > best.mask.bit_length()):
                best = r
    return best.note_value("type") if best else None


def key_presence(key: str) -> Presence | None:
    """Where a lint key (``Particle.publishVitals``, ``Variant::toInt``, ``os_mutex_t``) compiles; None if
    the index does not know it (documented-only APIs, 6.3.0 items, POSIX file functions)."""
    return _key_presence(key)


@lru_cache(maxsize=8192)
def _key_presence(key: str) -> Presence | None:
    if "." in key:
        obj, _, name = key.partition(".")
        if "::" in name:
            return None
        return object_member(obj, name)
    if "::" in key:
        cls, _, name = key.rpartition("::")
        return member(cls, name)
    return plain(key)


def is_index_name(name: str) -> bool:
    """Is ``name`` (unqualified) a top-level name of the index (directly or in spark::/particle::)?"""
    return bool(visible(name))


@cache
def top_level_names() -> frozenset[str]:
    """Unqualified names user code can write without a scope: globals and ``spark::``/``particle::`` members."""
    out = set()
    for name, rs in _index().rows.items():
        if all("include-guard" in r.note for r in rs) or any(r.kind == "using-directive" for r in rs):
            continue
        if "::" not in name:
            out.add(name)
        else:
            ns, _, rest = name.partition("::")
            if ns in _GLOBAL_NAMESPACES and "::" not in rest:
                out.add(rest)
    return frozenset(out)


def class_members(cls: str) -> frozenset[str]:
    """Member names recorded for a qualified class (without bases)."""
    return _index().members.get(cls, frozenset())


# --------------------------------------------------------------------------------------------------
# Platform macros
# --------------------------------------------------------------------------------------------------

UNDEFINED = "undefined"


@cache
def _macros() -> dict[str, dict[str, tuple[tuple[int, int, str], ...]]]:
    """macro -> platform name -> ((from index, to index, value), ...), from ``fieldsafe.symbols``."""
    from fieldsafe import symbols

    at = {v: i for i, v in enumerate(_index().releases)}
    ids: dict[int, int] = {}

    def index_of(v: DeviceOSVersion) -> int:
        i = ids.get(id(v))
        if i is None:
            i = ids[id(v)] = at[v.base]
        return i

    out: dict[str, dict[str, list[tuple[int, int, str]]]] = {}
    for platform, group in symbols._macro_rows().items():
        for macro, value, first, last, _note in group:
            out.setdefault(macro, {}).setdefault(platform, []).append((index_of(first), index_of(last), value))
    return {m: {p: tuple(v) for p, v in d.items()} for m, d in out.items()}


def is_platform_macro(name: str) -> bool:
    """Is ``name`` one of the platform macros the table evaluates (HAL_PLATFORM_*, Wiring_*, PLATFORM_* ...)?"""
    return name in _macros()


@lru_cache(maxsize=16384)
def platform_macro(name: str, platform_id: int | None, version: DeviceOSVersion) -> str | None:
    """What ``#if`` sees for a platform macro in application code: an integer as text, ``"undefined"``,
    ``"nonnumeric"``/``"function-like"``, or None when unknown (unknown platform, release not built).

    Releases after 6.2.0 read the 6.2.0 value (the newest the table has), which callers must say.
    """
    table = _macros().get(name)
    if table is None or platform_id is None:
        return None
    from fieldsafe import platforms

    p = platforms.find(platform_id)
    if p is None or p.name not in table:
        return None
    r = release_index(version)
    if r is None:
        if version.base <= last_release():
            return None
        r = len(_index().releases) - 1
    for lo, hi, value in table[p.name]:
        if lo <= r <= hi:
            return value
    return None
