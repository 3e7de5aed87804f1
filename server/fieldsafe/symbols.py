"""The Device OS symbol index: every name ``Particle.h`` makes visible, per final release and platform.

Why: the documented API tables know ~800 names; real code also uses system typedefs, enums,
``SYSTEM_ERROR_*``, the threading API, logging macros, ``particle::``/``spark::`` members... The
index (``data/device-os-data/device-os-symbols.tsv.xz``, built from the real application build of
every final release 0.4.0-6.2.0 on every platform, see ``API-DATA.md``) answers "does release R on
platform P declare X?" for all of them, like Android's ``api-versions.xml``. Two companion tables
come with it: the platform macro values application code sees (``platform-macros.tsv.xz``) and the
standard headers ``Particle.h`` pulls in (``device-os-std-includes.tsv.xz``).

This module is pure (no I/O beyond reading the packed package data once). It is the ONE loader of
those tables: the API check and the emulator's header generator both read them through here.

Releases the index does not cover are mapped onto one it does (:func:`indexed_release`):
prereleases to the first final release at or after their base version, releases after 6.2.0 to
6.2.0 (callers add the documented post-6.2.0 APIs themselves), and a release a platform was not
built at to the nearest release that platform was built at.
"""

from __future__ import annotations

import csv
import io
import lzma
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fieldsafe.versions import DeviceOSVersion

__all__ = [
    "INDEX_FIRST",
    "INDEX_LAST",
    "StdInclude",
    "Symbol",
    "built_releases",
    "by_name",
    "explain_missing",
    "first_release",
    "indexed_release",
    "platform_macros",
    "std_includes",
    "symbols",
    "symbols_at",
]

INDEX_FIRST = DeviceOSVersion(0, 4, 0)
INDEX_LAST = DeviceOSVersion(6, 2, 0)
# Platform order of the index's platform lists (API-DATA.md).
INDEX_PLATFORMS = (
    "photon", "p1", "electron", "argon", "boron", "xenon", "bsom", "b5som", "tracker", "trackerm", "esomx", "p2",
    "msom",
)  # fmt: skip


def _read_packed(name: str) -> tuple[dict[str, str], ...]:
    """Rows of a packed (xz) TSV in ``data/device-os-data``, keyed by its header line."""
    ref = resources.files("fieldsafe").joinpath("data", "device-os-data", name)
    text = lzma.decompress(ref.read_bytes()).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    return tuple({k: (v or "") for k, v in row.items()} for row in reader)


@cache
def _version(text: str) -> DeviceOSVersion:
    """Release strings repeat (70 distinct in 20k rows): parse each once (versions are immutable)."""
    return DeviceOSVersion.parse(text)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One row of the index: a name of one kind/scope/arity over a release range on some platforms."""

    name: str  # fully qualified: ``CloudClass::publishVitals``, ``particle::Ledger``, ``SYSTEM_ERROR_NONE``
    kind: str  # function, method, field, class, struct, union, enum, enumerator, typedef, namespace, ...
    scope: str  # enclosing class or namespace, '' for global
    arity: str  # ``min-max`` (``*`` = variadic) for functions, methods and function-like macros
    first: DeviceOSVersion
    last: DeviceOSVersion
    platforms: frozenset[str] | None  # None: every platform built at each release of the range
    header: str  # Device OS path of the declaration (``<command-line>`` for -D flags)
    note: str

    @property
    def short(self) -> str:
        """The name without its scope (``publishVitals`` for ``CloudClass::publishVitals``)."""
        return self.name[len(self.scope) + 2 :] if self.scope else self.name

    def notes(self) -> dict[str, str]:
        """The ``;``-separated note as a dict (``bases=A,B`` -> ``{"bases": "A,B"}``, flags map to '')."""
        out: dict[str, str] = {}
        for part in self.note.split(";"):
            part = part.strip()
            if not part:
                continue
            key, _, value = part.partition("=")
            out.setdefault(key, value)
        return out

    def has_note(self, flag: str) -> bool:
        return flag in (p.strip().partition("=")[0] for p in self.note.split(";"))

    def on(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    def present(self, release: DeviceOSVersion, platform: str) -> bool:
        """Declared at this *indexed* release on this platform (see :func:`indexed_release` for others)."""
        return self.first <= release <= self.last and self.on(platform)


@dataclass(frozen=True, slots=True)
class StdInclude:
    """A standard header ``Particle.h`` pulls in (``via``: direct, direct-vendor or transitive)."""

    header: str
    via: str
    included_by: str


@cache
def symbols() -> tuple[Symbol, ...]:
    """Every row of ``device-os-symbols.tsv`` (cached)."""
    out: list[Symbol] = []
    for row in _read_packed("device-os-symbols.tsv.xz"):
        plats = row["platforms"]
        out.append(
            Symbol(
                name=row["name"],
                kind=row["kind"],
                scope=row["scope"],
                arity=row["arity"],
                first=_version(row["from_release"]),
                last=_version(row["to_release"]),
                platforms=None if plats == "all" else frozenset(plats.split(",")),
                header=row["header"],
                note=row["note"],
            )
        )
    return tuple(out)


@cache
def by_name() -> dict[str, tuple[Symbol, ...]]:
    """Rows grouped by fully qualified name."""
    groups: dict[str, list[Symbol]] = defaultdict(list)
    for sym in symbols():
        groups[sym.name].append(sym)
    return {k: tuple(v) for k, v in groups.items()}


@cache
def _macro_rows() -> dict[str, tuple[tuple[str, str, DeviceOSVersion, DeviceOSVersion, str], ...]]:
    groups: dict[str, list[tuple[str, str, DeviceOSVersion, DeviceOSVersion, str]]] = defaultdict(list)
    for row in _read_packed("platform-macros.tsv.xz"):
        if row["from_release"] == "5.4.0+ledger":
            continue  # special tag, kept out of the ranges (API-DATA.md)
        first, last = _version(row["from_release"]), _version(row["to_release"])
        groups[row["platform"]].append((row["macro"], row["value"], first, last, row["note"]))
    return {k: tuple(v) for k, v in groups.items()}


@cache
def built_releases(platform: str) -> tuple[DeviceOSVersion, ...]:
    """Final releases the tables were built for on ``platform`` (from the platform-macro coverage)."""
    from fieldsafe.versions import catalog

    ranges = [(first, last) for macro, _v, first, last, _n in _macro_rows().get(platform, ()) if macro == "PLATFORM_ID"]
    finals = sorted({r.version for r in catalog().releases(include_prereleases=False) if not r.version.build})
    finals = [v for v in finals if INDEX_FIRST <= v <= INDEX_LAST]
    return tuple(v for v in finals if any(first <= v <= last for first, last in ranges))


def indexed_release(release: str | DeviceOSVersion, platform: str) -> DeviceOSVersion | None:
    """The indexed final release whose declarations stand for ``release`` on ``platform``.

    Final releases the platform was built at map to themselves; a prerelease maps to the first
    built final at or after its base (1.2.0-rc.1 -> 1.2.1: there is no final 1.2.0); a release
    after 6.2.0 maps to the newest built release; a release the platform was not built at maps to
    the nearest built release below it (else the first one). None when the platform has no data.
    """
    version = DeviceOSVersion.parse(release)
    built = built_releases(platform)
    if not built:
        return None
    base = version.base
    if base > built[-1]:
        return built[-1]
    if version.is_prerelease:
        later = [v for v in built if v >= base]
        return later[0] if later else built[-1]
    if base in built:
        return base
    below = [v for v in built if v <= base]
    return below[-1] if below else built[0]


@cache
def symbols_at(release: DeviceOSVersion, platform: str) -> tuple[Symbol, ...]:
    """Rows declared at an *indexed* release on a platform (use :func:`indexed_release` first)."""
    return tuple(s for s in symbols() if s.present(release, platform))


@cache
def platform_macros(release: DeviceOSVersion, platform: str) -> dict[str, tuple[str, str]]:
    """``macro -> (value, note)`` that ``#if`` sees at an indexed release (``undefined`` rows included)."""
    out: dict[str, tuple[str, str]] = {}
    for macro, value, first, last, note in _macro_rows().get(platform, ()):
        if first <= release <= last:
            out[macro] = (value, note)
    return out


@cache
def std_includes(release: DeviceOSVersion, platform: str) -> tuple[StdInclude, ...]:
    """Standard headers ``Particle.h`` pulls in at an indexed release on a platform."""
    out: list[StdInclude] = []
    for row in _read_packed("device-os-std-includes.tsv.xz"):
        first, last = _version(row["from_release"]), _version(row["to_release"])
        plats = row["platforms"]
        if first <= release <= last and (plats == "all" or platform in plats.split(",")):
            out.append(StdInclude(row["std_header"], row["via"], row["included_by"]))
    return tuple(out)


def _candidates(name: str, scope: str | None) -> Iterable[str]:
    """Qualified spellings of a name as user code writes it: X, spark::X, particle::X (or Scope::X)."""
    if scope:
        yield f"{scope}::{name}"
        for ns in ("spark::", "particle::"):
            if not scope.startswith(ns):
                yield f"{ns}{scope}::{name}"
        return
    yield name
    yield f"spark::{name}"
    yield f"particle::{name}"


def first_release(name: str, platform: str, scope: str | None = None) -> DeviceOSVersion | None:
    """The first indexed release at which ``name`` (looked up like user code does) exists on ``platform``."""
    index = by_name()
    firsts = [s.first for cand in _candidates(name, scope) for s in index.get(cand, ()) if s.on(platform)]
    if not firsts:
        return None
    built = built_releases(platform)
    dated = [min((v for v in built if v >= f), default=f) for f in firsts]
    return min(dated)


def explain_missing(name: str, release: str | DeviceOSVersion, platform: str, scope: str | None = None) -> str | None:
    """Why ``name`` is missing at ``release`` on ``platform``, in the API check's terms, or None if unknown.

    "'publishVitals' is declared from Device OS 1.2.1 on (this build targets 0.7.0)", or "is declared
    on other platforms only (argon, boron, ...)", or "was removed after 3.3.1". None when the index
    does not know the name at all or when it *is* declared there (then the error has another cause).
    """
    index = by_name()
    rows = [s for cand in _candidates(name, scope) for s in index.get(cand, ())]
    if not rows:
        return None
    version = DeviceOSVersion.parse(release)
    at = indexed_release(version, platform)
    if at is not None and any(s.present(at, platform) for s in rows):
        return None
    label = f"{scope}::{name}" if scope else name
    mine = [s for s in rows if s.on(platform)]
    if not mine:
        where = sorted({p for s in rows for p in (s.platforms or ())}, key=_platform_order)
        return f"'{label}' is not declared on {platform} at any release; it is declared on {', '.join(where)}"
    later = [s.first for s in mine if at is None or s.first > at]
    if later:
        since = min(later)
        built = built_releases(platform)
        since = min((v for v in built if v >= since), default=since)
        return f"'{label}' is declared from Device OS {since} on for {platform} (this build targets {version})"
    last = max(s.last for s in mine)
    return f"'{label}' was removed from Device OS after {last} on {platform} (this build targets {version})"


def _platform_order(name: str) -> int:
    return INDEX_PLATFORMS.index(name) if name in INDEX_PLATFORMS else len(INDEX_PLATFORMS)
