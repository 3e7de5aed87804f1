"""Device OS releases: parsing, ordering, and the release <-> system module version table.

Why a table and never a formula: Particle's system module numbering is irregular (2.3.1 is 2302,
4.0.2 is 4006, 5.9.0 is 5901, 6.3.0 is 6302, 6.3.2 is 6303; 0.8.0-rc.13 and rc.14 are both 312).
Arithmetic on the semver string is right often enough to hide the bug, so every mapping here goes
through the bundled ``system-versions.tsv`` (see ``data/PROVENANCE.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, total_ordering

from fieldsafe._data import read_tsv

_VERSION_RE = re.compile(
    r"^\s*[vV]?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\s*$",
    re.ASCII,  # "２.３.１" (fullwidth) or Arabic-Indic digits are not a version: \d would accept them
)


def _pre_key(ident: str | int) -> tuple[int, int, str]:
    """Semver rule: numeric identifiers sort before alphanumeric ones; numbers numerically."""
    if isinstance(ident, int):
        return (0, ident, "")
    return (1, 0, ident)


@total_ordering
@dataclass(frozen=True)
class DeviceOSVersion:
    """A Device OS release number such as ``0.8.0-rc.14``, ``1.4.5-b5som.1`` or ``5.4.0+ledger``.

    Ordered by semver precedence (a prerelease sorts before its final release); build metadata
    does not change precedence but is kept, so ``5.4.0+ledger`` sorts right after ``5.4.0``.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str | int, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | DeviceOSVersion) -> DeviceOSVersion:
        """Parse every form Particle uses (a leading ``v`` is accepted); ValueError says what was expected."""
        if isinstance(text, DeviceOSVersion):
            return text
        match = _VERSION_RE.match(str(text))
        if not match:
            raise ValueError(
                f"{text!r} is not a Device OS version: expected MAJOR.MINOR.PATCH such as 2.3.1, "
                "optionally with a prerelease (-rc.2) or build (+ledger) suffix"
            )
        pre: tuple[str | int, ...] = ()
        if match["pre"]:
            pre = tuple(int(p) if p.isdigit() else p for p in match["pre"].split("."))
        build = tuple(match["build"].split(".")) if match["build"] else ()
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]), pre, build)

    @classmethod
    def try_parse(cls, text: str | None) -> DeviceOSVersion | None:
        """Like :meth:`parse` but returns None for text that is not a version (e.g. ``0.6.0-buildpack`` is fine)."""
        if text is None:
            return None
        try:
            return cls.parse(text)
        except ValueError:
            return None

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def base(self) -> DeviceOSVersion:
        """The X.Y.Z release this version belongs to (prerelease and build dropped)."""
        return DeviceOSVersion(self.major, self.minor, self.patch)

    @property
    def lts(self) -> bool:
        """True on the long-term-support lines: even majors from 2 on (2.x, 4.x, 6.x)."""
        return self.major >= 2 and self.major % 2 == 0

    @property
    def line(self) -> str:
        """The release line, e.g. ``"4.x"``."""
        return f"{self.major}.x"

    def _key(self) -> tuple:
        pre = (1,) if not self.prerelease else (0, *(_pre_key(p) for p in self.prerelease))
        return (self.major, self.minor, self.patch, pre, self.build)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, DeviceOSVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


@dataclass(frozen=True)
class Release:
    """One row of the release table: a Device OS release and its system module version."""

    version: DeviceOSVersion
    module_version: int
    bootloader_version: int | None
    platform_ids: frozenset[int]
    platforms_inferred: bool = False
    source: str = ""
    note: str = ""

    @property
    def is_prerelease(self) -> bool:
        return self.version.is_prerelease

    @property
    def lts(self) -> bool:
        return self.version.lts

    def __str__(self) -> str:
        return str(self.version)


@dataclass
class Catalog:
    """All known Device OS releases, sorted ascending, with lookups in both directions."""

    rows: list[Release] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows.sort(key=lambda r: r.version)
        self._by_version = {r.version: r for r in self.rows}
        self._by_base_text = {str(r.version): r for r in self.rows}

    def releases(self, platform_id: int | None = None, include_prereleases: bool = True) -> list[Release]:
        """Releases ascending, optionally only those available for a platform and/or only final ones."""
        return [
            r
            for r in self.rows
            if (platform_id is None or platform_id in r.platform_ids) and (include_prereleases or not r.is_prerelease)
        ]

    def release(self, version: str | DeviceOSVersion) -> Release | None:
        """The table row for a release, or None when the table does not know it (or the text is not a version)."""
        parsed = version if isinstance(version, DeviceOSVersion) else DeviceOSVersion.try_parse(version)
        return self._by_version.get(parsed) if parsed else None

    def module_version(self, version: str | DeviceOSVersion) -> int | None:
        """System module version of a release, from the table only."""
        row = self.release(version)
        return row.module_version if row else None

    def releases_for_module(self, module_version: int, platform_id: int | None = None) -> list[Release]:
        """Every release with exactly this module version: final releases first, then prereleases.

        A module version may belong to several releases (4 = 0.4.4-rc.1..rc.6; 312 = 0.8.0-rc.13 and -rc.14),
        so callers get all candidates and show the first (the preferred one).
        """
        hits = [r for r in self.releases(platform_id) if r.module_version == module_version]
        if not hits and platform_id is not None:
            hits = [r for r in self.rows if r.module_version == module_version]
        return sorted(hits, key=lambda r: (r.is_prerelease, r.version))

    def min_release_for_dependency(self, module_version: int, platform_id: int) -> Release | None:
        """The lowest release on a platform whose system module satisfies a dependency (``>=``), GA preferred."""
        candidates = [r for r in self.releases(platform_id) if r.module_version >= module_version]
        if not candidates:
            return None
        lowest = min(r.module_version for r in candidates)
        same = [r for r in candidates if r.module_version == lowest]
        return sorted(same, key=lambda r: (r.is_prerelease, r.version))[0]

    def latest(self, platform_id: int, lts_only: bool = False, include_prereleases: bool = False) -> Release | None:
        """The newest release for a platform (final releases only unless asked)."""
        rows = [r for r in self.releases(platform_id, include_prereleases) if not lts_only or r.lts]
        return rows[-1] if rows else None

    def nearest(self, version: str | DeviceOSVersion, platform_id: int | None, count: int = 3) -> list[Release]:
        """Known releases closest to a requested one (for "did you mean" messages)."""
        target = DeviceOSVersion.try_parse(str(version))
        rows = self.releases(platform_id, include_prereleases=False) or self.releases(platform_id)
        if target is None:
            return rows[-count:]
        below = [r for r in rows if r.version <= target][-count:]
        above = [r for r in rows if r.version > target][:count]
        ranked = sorted(below + above, key=lambda r: _distance(r.version, target))
        return sorted(ranked[:count], key=lambda r: r.version)

    def resolve(self, spec: str, platform_id: int) -> Release:
        """Resolve a pin: an exact release, ``latest``, ``latest-lts``, ``default``, ``^5.3.0``, ``~5.3.0``, ``4.x``.

        Raises LookupError whose message lists nearby valid releases for the platform.
        """
        text = spec.strip()
        word = text.lower()
        if word in ("latest", "latest-lts", "default"):
            row = self.latest(platform_id, lts_only=word != "latest")
            if row is None and word == "default":
                row = self.latest(platform_id)
            if row is None:
                raise LookupError(f"no {word} Device OS release is known for platform {platform_id}")
            return row
        exact = DeviceOSVersion.try_parse(text)
        if exact is not None:
            row = self.release(exact)
            if row is None:
                raise LookupError(f"Device OS {text} is not a known release; nearest: {self._near(text, None)}")
            if platform_id not in row.platform_ids:
                raise LookupError(
                    f"Device OS {row.version} is not available for this platform; "
                    f"nearest for it: {self._near(text, platform_id)}"
                )
            return row
        matching = [r for r in self.releases(platform_id, include_prereleases=False) if _in_range(r.version, text)]
        if not matching:
            raise LookupError(f"no Device OS release for this platform matches {text!r}")
        return matching[-1]

    def _near(self, text: str, platform_id: int | None) -> str:
        return ", ".join(str(r.version) for r in self.nearest(text, platform_id)) or "none"


def _distance(a: DeviceOSVersion, b: DeviceOSVersion) -> tuple[int, int, int]:
    return (abs(a.major - b.major), abs(a.minor - b.minor), abs(a.patch - b.patch))


_RANGE_RE = re.compile(
    r"^(?P<op>[\^~]|>=|<=|>|<|=)?\s*v?(?P<body>\d+(?:\.(?:\d+|[xX*]))?(?:\.(?:\d+|[xX*]))?)$", re.ASCII
)


def _in_range(version: DeviceOSVersion, spec: str) -> bool:
    """Minimal npm-style range check (``^``, ``~``, comparison operators, ``x`` wildcards) for pins."""
    match = _RANGE_RE.match(spec.strip())
    if not match:
        raise LookupError(
            f"{spec!r} is not a Device OS version or range; use e.g. 2.3.1, latest, latest-lts, ^5.3.0 or 4.x"
        )
    op = match["op"] or ""
    parts = [p for p in match["body"].split(".")]
    nums = [int(p) for p in parts if p.isdigit()]
    wild = len(nums) < 3
    lower = DeviceOSVersion(*(nums + [0] * (3 - len(nums))))
    if op in (">=", ">", "<=", "<"):
        return {">=": version >= lower, ">": version > lower, "<=": version <= lower, "<": version < lower}[op]
    if op == "^":
        if lower.major:
            return lower <= version and version.major == lower.major
        return lower <= version and version.major == 0 and version.minor == lower.minor
    if op == "~" or wild:
        if len(nums) == 1:
            return version.major == nums[0]
        return lower <= version and (version.major, version.minor) == (lower.major, lower.minor)
    return version == lower


def _split_platform_names(text: str) -> tuple[list[str], bool]:
    """``"Boron;P2 (others not checked)"`` -> (["Boron", "P2"], True)."""
    inferred = "others not checked" in text
    cleaned = re.sub(r"\(.*?\)", "", text)
    return [p.strip() for p in cleaned.split(";") if p.strip()], inferred


def _platform_ids_for_names(names: Iterable[str]) -> frozenset[int]:
    from fieldsafe import platforms  # local import: platforms imports this module

    ids = set()
    for name in names:
        platform = platforms.find(name)
        if platform is None:
            raise ValueError(f"system-versions.tsv names an unknown platform {name!r}")
        ids.add(platform.id)
    return frozenset(ids)


def _load_rows() -> list[Release]:
    """Read the table; fill platform sets the table leaves empty or partial (marked as inferred)."""
    raw = []
    for row in read_tsv("system-versions.tsv"):
        names, partial = _split_platform_names(row["platforms"])
        raw.append((DeviceOSVersion.parse(row["release_version"]), row, names, partial))
    raw.sort(key=lambda item: item[0])
    listed = [(v, _platform_ids_for_names(n)) for v, _, n, p in raw if n and not p]
    releases = []
    for version, row, names, partial in raw:
        ids = _platform_ids_for_names(names) if names else frozenset()
        inferred = partial or not names
        if inferred:
            ids = ids | _neighbour_platforms(version, listed, final_only=partial)
        releases.append(
            Release(
                version=version,
                module_version=int(row["system_module_version"]),
                bootloader_version=int(row["bootloader_module_version"]) if row["bootloader_module_version"] else None,
                platform_ids=ids,
                platforms_inferred=inferred,
                source=row["source"],
                note=row["note"],
            )
        )
    return releases


def _neighbour_platforms(
    version: DeviceOSVersion, listed: list[tuple[DeviceOSVersion, frozenset[int]]], final_only: bool
) -> frozenset[int]:
    """Platforms of the nearest earlier fully listed release (or the nearest later one for the oldest rows).

    Why: rows added from release tags or device-restore images name no (or one) platform, but each release
    uses one module number across its platforms; the neighbouring full row is the best evidence of which.
    """
    earlier = [ids for v, ids in listed if v < version and (not final_only or not v.is_prerelease)]
    if earlier:
        return earlier[-1]
    later = [ids for v, ids in listed if v > version]
    return later[0] if later else frozenset()


@cache
def catalog() -> Catalog:
    """The bundled release catalog, loaded once."""
    return Catalog(_load_rows())


def describe_module_version(module_version: int, platform_id: int | None = None) -> str:
    """Human text for a system module version: ``"2302 (Device OS 2.3.1)"``; unknown numbers say so."""
    hits = catalog().releases_for_module(module_version, platform_id)
    if not hits:
        return f"{module_version} (not in the Device OS release table)"
    names = " or ".join(str(r.version) for r in hits[:3])
    more = f" or {len(hits) - 3} more" if len(hits) > 3 else ""
    return f"{module_version} (Device OS {names}{more})"


def format_release(module_version: int, platform_id: int | None = None) -> str:
    """Preferred release text for a module version (``"2.3.1"``) or ``"module N"`` when unknown."""
    hits = catalog().releases_for_module(module_version, platform_id)
    return str(hits[0].version) if hits else f"module {module_version}"
