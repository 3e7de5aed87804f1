"""The code's own Device OS floor: the lowest release on which every unguarded API the project uses exists.

Why in the engine: ``fieldsafe check`` prints it, the editor shows it on the pin and in the retarget
quick-fix titles, and the fleet "target window" starts at it; one computation, pure (texts in, value out).

How: lint the project at the platform's releases in order and stop at the first one with no error that
a release can fix (FS201/FS202/FS204/FS205). Guards are honoured because each release's preprocessor is
evaluated as that release's would be. Each failing release's findings name the release that has the API
(``facts["since"]``), so the walk jumps straight there instead of trying every release in between.
An unguarded use the platform never has (FS203) means no release works: the floor is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from fieldsafe.findings import Finding, Severity
from fieldsafe.versions import DeviceOSVersion

FLOOR_CODES = frozenset({"FS201", "FS202", "FS204", "FS205"})


@dataclass(frozen=True)
class FloorUse:
    """One API use that decides the floor: where it is and which release it needs."""

    api: str
    file: str
    line: int
    column: int
    code: str
    needs: str | None  # the release that has it (facts["since"]), None when unknown
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def to_json(self) -> dict[str, object]:
        return {"api": self.api, "file": self.file, "line": self.line, "column": self.column, "code": self.code,
                "needs": self.needs}  # fmt: skip


@dataclass(frozen=True)
class CodeFloor:
    """The floor of a project's code on one platform."""

    platform_id: int
    platform: str  # display name
    release: DeviceOSVersion | None  # None: no release compiles it (see ``blocked_by``)
    forced_by: FloorUse | None  # the use that needs ``release`` (None: the platform's first release works)
    blocked_by: tuple[FloorUse, ...] = ()  # unguarded uses the platform never has
    first_release: DeviceOSVersion | None = None  # the platform's first release in the catalog
    broken_above: tuple[DeviceOSVersion, ...] = ()  # releases above the floor that lack a used API again

    def breaks_at(self, release: str | DeviceOSVersion) -> bool:
        """Would pinning ``release`` (below the floor, or a release above it that lacks a used API) break the code?"""
        version = DeviceOSVersion.parse(release) if isinstance(release, str) else release
        if self.release is None:
            return False
        return version.base < self.release.base or version.base in {r.base for r in self.broken_above}

    def describe(self) -> str:
        """One sentence: "Boron: 1.2.1 (`Particle.publishVitals` at src/app.ino:27 needs it)"."""
        if self.release is None:
            use = self.blocked_by[0] if self.blocked_by else None
            why = f": `{use.api}` at {use.where} is never available there" if use else ""
            return f"{self.platform}: no Device OS release compiles this code{why}"
        if self.forced_by is None:
            return f"{self.platform}: {self.release} (the platform's first release; nothing newer is needed)"
        u = self.forced_by
        gaps = f"; not {', '.join(map(str, self.broken_above))}" if self.broken_above else ""
        return f"{self.platform}: {self.release} (`{u.api}` at {u.where} needs it{gaps})"

    def retarget_note(self, release: str | DeviceOSVersion) -> str:
        """What a "Retarget to ``release``" title adds when that is below the floor ("" otherwise)."""
        if not self.breaks_at(release) or self.forced_by is None:
            return ""
        u = self.forced_by
        return f" — `{u.api}` at {u.where} needs {self.release}"

    def to_json(self) -> dict[str, object]:
        return {
            "platform_id": self.platform_id,
            "platform": self.platform,
            "release": str(self.release) if self.release else None,
            "forced_by": self.forced_by.to_json() if self.forced_by else None,
            "blocked_by": [u.to_json() for u in self.blocked_by],
            "broken_above": [str(r) for r in self.broken_above],
        }


def _use(f: Finding) -> FloorUse:
    span = f.span
    since = f.facts.get("since")
    return FloorUse(str(f.facts.get("api")), span.file or "" if span else "", span.line if span else 1,
                    span.column if span else 1, f.code, str(since) if since else None, f.message)  # fmt: skip


def _errors(
    texts: Mapping[str, str], release: DeviceOSVersion, platform_id: int, names: frozenset[str]
) -> list[Finding]:
    from fieldsafe.apilint.engine import lint_source

    out = []
    for rel, text in texts.items():
        for f in lint_source(text, rel, release, platform_id, project_names=names):
            if f.severity == Severity.ERROR and (f.code in FLOOR_CODES or f.code == "FS203"):
                out.append(f)
    return out


def _releases(platform_id: int) -> list[DeviceOSVersion]:
    from fieldsafe.versions import catalog

    return sorted({r.version for r in catalog().releases(platform_id, include_prereleases=False)})


def code_floor(texts: Mapping[str, str], platform: int | str) -> CodeFloor:
    """The floor of the code in ``texts`` (project-relative path -> source) on ``platform``."""
    from fieldsafe import platforms
    from fieldsafe.apilint.engine import project_defined_names

    p = platforms.get(platform)
    names = project_defined_names(texts.values())
    rels = _releases(p.id)
    first = rels[0] if rels else None
    last_failure: list[Finding] = []
    seen: list[Finding] = []
    i = 0
    while i < len(rels):
        release = rels[i]
        errors = _errors(texts, release, p.id, names)
        never = [f for f in errors if f.code == "FS203"]
        if never:
            return CodeFloor(p.id, p.display_name, None, None, tuple(_use(f) for f in never), first)
        if not errors:
            broken = _broken_above(texts, rels, release, p.id, names, seen)
            return CodeFloor(p.id, p.display_name, release, _forcing(last_failure, release), (), first, broken)
        last_failure = errors
        seen.extend(errors)
        i = _next_candidate(rels, i, errors, p.id)
    # nothing in the catalog compiles it (an API of a release newer than the catalog knows)
    use = _use(max(last_failure, key=_since_key)) if last_failure else None
    return CodeFloor(p.id, p.display_name, None, use, (), first)


def _since_key(f: Finding) -> DeviceOSVersion:
    return DeviceOSVersion.try_parse(str(f.facts.get("since") or "")) or DeviceOSVersion(0, 0, 0)


def _next_candidate(rels: list[DeviceOSVersion], i: int, errors: list[Finding], platform_id: int) -> int:
    """Skip to the first release every failing use could have, never backwards and never past a release
    where the code might compile: a use's bound is the earliest release with its API on any line (an API
    on two lines reports the later line's start as ``since``)."""
    want = max((_earliest(f, platform_id) for f in errors), default=rels[i])
    j = i + 1
    if want.base > rels[i].base:
        while j < len(rels) and rels[j].base < want.base:
            j += 1
    return j


def _earliest(f: Finding, platform_id: int) -> DeviceOSVersion:
    from fieldsafe.apilint import availability

    since = _since_key(f)
    a = availability.effective(str(f.facts.get("api")), platform_id)
    if a is None or f.code in ("FS204", "FS205"):
        return since
    return min(since, a.earliest())


def _broken_above(texts: Mapping[str, str], rels: list[DeviceOSVersion], floor: DeviceOSVersion, platform_id: int,
                  names: frozenset[str], seen: list[Finding]) -> tuple[DeviceOSVersion, ...]:  # fmt: skip
    """Releases above the floor where the code fails again: the gaps (other release lines, 1.0.x) and
    removals of the APIs that failed below the floor (the only uses whose availability is not a plain
    "from X on"), checked by linting just those releases."""
    from fieldsafe.apilint import availability

    suspects: set[DeviceOSVersion] = set()
    for f in seen:
        a = availability.effective(str(f.facts.get("api")), platform_id)
        if a is not None:
            suspects.update(r for r in rels if r.base > floor.base and not a.available_in(r, platform_id))
    return tuple(r for r in sorted(suspects) if _errors(texts, r, platform_id, names))


def _forcing(errors: list[Finding], floor: DeviceOSVersion) -> FloorUse | None:
    """Of the uses failing below the floor, the first (by file, line) that needs the floor itself, else
    the one with the latest need."""
    if not errors:
        return None
    exact = [f for f in errors if _since_key(f).base == floor.base]
    pool = exact or [max(errors, key=_since_key)]
    return _use(min(pool, key=lambda f: (f.span.file or "", f.span.line) if f.span else ("", 0)))


def project_floor(root: object, platform: int | str, *, files: list[str] | None = None) -> CodeFloor:
    """``code_floor`` of a project folder (its compile file selection, or ``files``)."""
    from pathlib import Path

    from fieldsafe.apilint.engine import source_files

    base = Path(str(root))
    rels = files if files is not None else source_files(base)
    texts = {rel: (base / rel).read_text(encoding="utf-8", errors="replace") for rel in rels}
    return cached_floor(tuple(sorted(texts.items())), platform)


@lru_cache(maxsize=64)
def cached_floor(items: tuple[tuple[str, str], ...], platform: int | str) -> CodeFloor:
    """``code_floor`` memoised by the exact texts (the editor asks again on every hover and code action)."""
    return code_floor(dict(items), platform)


def guard_uses(texts: Mapping[str, str], platform: int | str, release: str | DeviceOSVersion) -> list[Finding]:
    """The errors pinning ``release`` would cause: what a guard-and-retarget fix must wrap."""
    from fieldsafe import platforms
    from fieldsafe.apilint.engine import project_defined_names

    p = platforms.get(platform)
    version = DeviceOSVersion.parse(release) if isinstance(release, str) else release
    return [f for f in _errors(texts, version, p.id, project_defined_names(texts.values())) if f.code in FLOOR_CODES]
