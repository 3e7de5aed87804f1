"""Precision and recall of the API lint over the labelled corpus in tests/fixtures/apilint-corpus/.

Each corpus file names its target (``// target: 1.4.4``) and platform (``// platform: boron``) in a
header comment and marks every expected finding on its line: ``// expect: FS201 Particle.publishVitals``
(several separated by ``;``). A finding counts as a true positive when code, line and API match.

Usage: python bench/apilint_corpus.py [--engine scan|treesitter|both]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "apilint-corpus"


@dataclass
class Score:
    """Counts over the corpus, plus the mismatches so a failing test can show them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def expectations(text: str) -> tuple[str, str | None, set[tuple[str, int, str]]]:
    """(target, platform or None, {(code, line, api)}) read from a corpus file's comments."""
    target = re.search(r"//\s*target:\s*(\S+)", text)
    if not target:
        raise ValueError("corpus file lacks a '// target: X.Y.Z' header")
    platform = re.search(r"//\s*platform:\s*(\S+)", text)
    expected: set[tuple[str, int, str]] = set()
    for lineno, line in enumerate(text.split("\n"), start=1):
        m = re.search(r"//\s*expect:\s*(.*)$", line)
        if m:
            for item in m.group(1).split(";"):
                code, api = item.strip().split(None, 1)
                expected.add((code, lineno, api))
    return target.group(1), platform.group(1) if platform else None, expected


def score(engine: str = "scan", corpus: Path = CORPUS) -> Score:
    """Lint every corpus file with ``engine`` and compare with its annotations."""
    from fieldsafe import apilint, platforms

    result = Score()
    for path in sorted(corpus.iterdir()):
        if path.suffix not in (".ino", ".cpp", ".c", ".h"):
            continue
        text = path.read_text(encoding="utf-8")
        target, platform, expected = expectations(text)
        pid = platforms.get(platform).id if platform else None
        found = {
            (f.code, f.span.line, str(f.facts.get("api")))
            for f in apilint.lint_source(text, path.name, target, pid, engine=engine)
            if f.span
        }
        result.tp += len(found & expected)
        result.false_positives += [f"{path.name}:{line}: {code} {api}" for code, line, api in sorted(found - expected)]
        result.false_negatives += [f"{path.name}:{line}: {code} {api}" for code, line, api in sorted(expected - found)]
    result.fp = len(result.false_positives)
    result.fn = len(result.false_negatives)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("scan", "treesitter", "both"), default="both")
    args = parser.parse_args()
    engines = ("scan", "treesitter") if args.engine == "both" else (args.engine,)
    files = sum(1 for p in CORPUS.iterdir() if p.suffix in (".ino", ".cpp", ".c", ".h"))
    print(f"corpus: {files} files in {CORPUS}")
    for engine in engines:
        t0 = time.perf_counter()
        s = score(engine)
        ms = (time.perf_counter() - t0) * 1000
        print(f"{engine:>10}: precision {s.precision:.3f}  recall {s.recall:.3f}  "
              f"(tp {s.tp}, fp {s.fp}, fn {s.fn}; {ms:.0f} ms incl. first-use setup)")  # fmt: skip
        for item in s.false_positives:
            print(f"    false positive: {item}")
        for item in s.false_negatives:
            print(f"    missed:         {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
