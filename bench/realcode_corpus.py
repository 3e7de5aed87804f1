"""Precision and recall of the API check on the real-code corpus (tests/fixtures/realcode/).

Each project folder holds a ``corpus.toml`` (format in tests/fixtures/realcode/README.md): the
minimum Device OS release the code needs (from the tables), the platforms it is written for, and the
findings expected just below that minimum. For every listed platform the project is checked twice:

- at its minimum (the platform's lowest release at or above ``minimum``): the code is clean there, so
  every FS2xx error or warning is a false positive;
- at the highest release of the platform below that minimum: every labelled ``[[below]]`` finding
  must be reported (code, API, file and line); a missing one is a false negative. Other findings
  there are listed as "unlabelled" and not scored (below its minimum more of the code may be missing).

precision = tp / (tp + fp), recall = tp / (tp + fn).

Usage: python bench/realcode_corpus.py [--project NAME] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "realcode"


@dataclass(frozen=True)
class Label:
    """One finding expected below the minimum."""

    code: str
    api: str
    file: str
    line: int
    platforms: tuple[str, ...] = ()  # empty: every listed platform


@dataclass(frozen=True)
class Project:
    """A corpus project and its labels (``corpus.toml``)."""

    name: str
    root: Path
    minimum: str
    platforms: tuple[str, ...]
    minimum_on: dict[str, str]
    below: tuple[Label, ...]
    description: str = ""


def load(root: Path) -> Project:
    """Read ``root/corpus.toml``; a clear ValueError naming the file when a field is missing."""
    path = root / "corpus.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        below = tuple(
            Label(b["code"], b["api"], b["file"], int(b["line"]), tuple(b.get("platforms", ())))
            for b in data.get("below", ())
        )
        return Project(root.name, root, data["minimum"], tuple(data["platforms"]),
                       dict(data.get("minimum_on", {})), below, data.get("description", ""))  # fmt: skip
    except (KeyError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: bad or missing field {exc}") from exc


def projects(corpus: Path = CORPUS) -> list[Project]:
    """Every project folder of the corpus, in name order."""
    return [load(p) for p in sorted(corpus.iterdir()) if (p / "corpus.toml").is_file()]


def releases_around(platform: str, minimum: str) -> tuple[str, str | None]:
    """(the platform's lowest final release >= minimum, its highest final release below that or None)."""
    from fieldsafe import platforms
    from fieldsafe.versions import DeviceOSVersion, catalog

    pid = platforms.get(platform).id
    floor = DeviceOSVersion.parse(minimum)
    rels = [r.version for r in catalog().releases(pid, include_prereleases=False)]
    at = next((v for v in rels if v.base >= floor.base), None)
    if at is None:
        raise ValueError(f"{platform} has no release at or above {minimum}")
    lower = [v for v in rels if v.base < at.base]
    return str(at), (str(lower[-1]) if lower else None)


@dataclass
class Score:
    """Counts over the corpus, with the mismatches so a failing test can show them."""

    tp: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    checks: int = 0

    @property
    def fp(self) -> int:
        return len(self.false_positives)

    @property
    def fn(self) -> int:
        return len(self.false_negatives)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _findings(project: Project, target: str, platform: str) -> list[tuple[str, str, str, int, str]]:
    from fieldsafe import apilint
    from fieldsafe.findings import Severity

    out = []
    for f in apilint.lint_project(project.root, target, platform):
        if f.severity in (Severity.ERROR, Severity.WARNING) and f.span is not None:
            out.append((f.code, str(f.facts.get("api")), str(f.span.file), f.span.line, f.message))
    return out


def score(corpus: Path = CORPUS, only: str | None = None) -> Score:
    """Check every project at and below its minimum on each of its platforms."""
    result = Score()
    for project in projects(corpus):
        if only and only not in project.name:
            continue
        for platform in project.platforms:
            at, below = releases_around(platform, project.minimum_on.get(platform, project.minimum))
            result.checks += 1
            for code, api, path, line, msg in _findings(project, at, platform):
                result.false_positives.append(f"{project.name} @{at} {platform}: {path}:{line} {code} {api}: {msg}")
            if below is None:
                continue
            result.checks += 1
            found = _findings(project, below, platform)
            keys = {(c, a, p, ln) for c, a, p, ln, _ in found}
            wanted = [b for b in project.below if not b.platforms or platform in b.platforms]
            for b in wanted:
                if (b.code, b.api, b.file, b.line) in keys:
                    result.tp += 1
                else:
                    result.false_negatives.append(
                        f"{project.name} @{below} {platform}: {b.file}:{b.line} {b.code} {b.api} not reported"
                    )
            labelled = {(b.code, b.api, b.file, b.line) for b in wanted}
            for code, api, path, line, _msg in found:
                if (code, api, path, line) not in labelled:
                    result.unlabelled.append(f"{project.name} @{below} {platform}: {path}:{line} {code} {api}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", help="only projects whose folder name contains this")
    parser.add_argument("--quiet", action="store_true", help="figures only, no per-finding lines")
    parser.add_argument("--unlabelled", action="store_true", help="also list unscored findings below the minimum")
    args = parser.parse_args()
    t0 = time.perf_counter()
    s = score(only=args.project)
    ms = (time.perf_counter() - t0) * 1000
    n = len([p for p in projects() if not args.project or args.project in p.name])
    print(f"corpus: {n} projects in {CORPUS}, {s.checks} (project, platform, release) checks")
    print(f"precision {s.precision:.3f}  recall {s.recall:.3f}  (tp {s.tp}, fp {s.fp}, fn {s.fn}; "
          f"{len(s.unlabelled)} unlabelled below the minimum; {ms:.0f} ms)")  # fmt: skip
    if not args.quiet:
        for item in s.false_positives:
            print(f"    false positive: {item}")
        for item in s.false_negatives:
            print(f"    missed:         {item}")
        if args.unlabelled:
            for item in s.unlabelled:
                print(f"    unlabelled:     {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
