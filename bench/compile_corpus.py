"""The emulator's compiler on the real-code corpus (tests/fixtures/realcode/): false compile errors and recall.

For every project and each platform it lists (format in tests/fixtures/realcode/README.md) the
project is compiled by :func:`fieldsafe.emulator.compiler.compile_sources` twice:

- at its minimum (the platform's lowest final release at or above ``minimum``): the code is valid
  there, so a failed compile is a FALSE COMPILE ERROR;
- at the platform's highest final release below that, when there is one and the project labels a
  finding there (``[[below]]``): the compile must fail because the release lacks an API: an error
  naming the labelled API, or an error the compiler explains with a ``note: fieldsafe:`` (a name
  that release does not declare; gcc often stops at an earlier missing name than the labelled use).
  A build that succeeds, or fails for another reason only, is a MISS.

It prints the counts, the compile time, and each false error / miss with gcc's first error line.
Run it against another checkout (``PYTHONPATH=/other/server python bench/compile_corpus.py``) to
measure "before" and "after" on the same corpus.

Usage: python bench/compile_corpus.py [--project NAME] [--quiet] [--platforms-per-project N]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realcode_corpus import CORPUS, Label, Project, projects, releases_around

_SUFFIXES = (".cpp", ".cc", ".cxx", ".c", ".ino", ".h", ".hpp", ".hh", ".properties")


def project_files(project: Project) -> dict[str, bytes]:
    """The files a compile uploads: sources, headers and properties; library examples left out."""
    out: dict[str, bytes] = {}
    for path in sorted(project.root.rglob("*")):
        rel = path.relative_to(project.root).as_posix()
        if not path.is_file() or rel == "corpus.toml" or not rel.endswith(_SUFFIXES):
            continue
        if rel.startswith("lib/") and "/examples/" in rel:
            continue
        out[rel] = path.read_bytes()
    return out


def api_token(label: Label) -> str:
    """What a compile error about the labelled API says: its last identifier (``Network.prefer`` -> ``prefer``)."""
    if "literal" in label.api:
        return "literal operator"
    return re.split(r"[.:]+", label.api)[-1]


def first_error(log: str) -> str:
    for line in log.splitlines():
        if ": error: " in line or ": fatal error: " in line:
            return line.strip()
    return log.strip().splitlines()[-1] if log.strip() else "(empty log)"


@dataclass
class Tally:
    """Compile results over the corpus."""

    clean_ok: int = 0
    false_errors: list[str] = field(default_factory=list)
    caught: int = 0
    misses: list[str] = field(default_factory=list)
    compiles: int = 0
    seconds: float = 0.0

    @property
    def clean_total(self) -> int:
        return self.clean_ok + len(self.false_errors)

    @property
    def below_total(self) -> int:
        return self.caught + len(self.misses)


def run(only: str | None = None, per_project: int | None = None, cache: Path | None = None) -> Tally:
    """Compile every (project, platform) at its minimum and just below it."""
    from fieldsafe import platforms
    from fieldsafe.emulator.compiler import compile_sources

    tally = Tally()
    cache = cache or Path(tempfile.mkdtemp(prefix="fieldsafe-corpus-headers-"))
    started = time.perf_counter()
    for project in projects(CORPUS):
        if only and only not in project.name:
            continue
        files = project_files(project)
        for platform in project.platforms[: per_project or None]:
            pid = platforms.get(platform).id
            at, below = releases_around(platform, project.minimum_on.get(platform, project.minimum))
            result = compile_sources(files, pid, at, cache_root=cache)
            tally.compiles += 1
            if result.ok:
                tally.clean_ok += 1
            else:
                tally.false_errors.append(f"{project.name} @{at} {platform}: {first_error(result.log)}")
            wanted = [b for b in project.below if not b.platforms or platform in b.platforms]
            if below is None or not wanted:
                continue
            result = compile_sources(files, pid, below, cache_root=cache)
            tally.compiles += 1
            errors = [ln for ln in result.log.splitlines() if ": error: " in ln]
            explained = "note: fieldsafe:" in result.log
            for label in wanted:
                token = api_token(label)
                if not result.ok and (explained or any(token in ln for ln in errors)):
                    tally.caught += 1
                else:
                    why = "compiled" if result.ok else first_error(result.log)
                    tally.misses.append(f"{project.name} @{below} {platform}: {label.api} not reported ({why})")
    tally.seconds = time.perf_counter() - started
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", help="only projects whose folder name contains this")
    parser.add_argument("--platforms-per-project", type=int, help="compile only the first N listed platforms")
    parser.add_argument("--quiet", action="store_true", help="figures only")
    args = parser.parse_args()
    t = run(args.project, args.platforms_per_project)
    from fieldsafe.emulator import compiler

    print(f"corpus: {CORPUS}, compiler {compiler.COMPILER}, {t.compiles} compiles in {t.seconds:.1f} s "
          f"({t.seconds / max(t.compiles, 1):.2f} s each)")  # fmt: skip
    print(f"at the minimum: {t.clean_ok}/{t.clean_total} compile, {len(t.false_errors)} false compile errors")
    print(
        f"below the minimum: {t.caught}/{t.below_total} labelled APIs rejected by the compiler, {len(t.misses)} missed"
    )
    if not args.quiet:
        for item in t.false_errors:
            print(f"    false error: {item}")
        for item in t.misses:
            print(f"    missed:      {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
