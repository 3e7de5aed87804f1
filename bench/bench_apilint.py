"""Lint speed against the goals, for the scanner engine and its peer, the tree-sitter engine, measured
in the same run and printed as ratios (to the goal, and tree-sitter / scan).

Goals: re-check after a one-line edit of a 3,000-line file < 20 ms; a 100,000-line project < 1 s.

Measured: a 3,000-line dense file (first lint; unchanged re-check; re-check after a one-line edit;
re-check after an edit that declares a Device OS-typed variable, which changes what every chunk
resolves to, i.e. the incremental cache's worst case) and a 50-file, 100,000-line project, cold
(all caches cleared; the chunk memo is also cleared per file because the synthetic files share code
that a real project would not). Runs in about ten seconds. Usage: python bench/bench_apilint.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fieldsafe import apilint

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "apilint-corpus"
EDIT_GOAL_MS = 20.0
PROJECT_GOAL_MS = 1000.0
ENGINES = ("scan", "treesitter")


def synthetic_file(lines: int) -> str:
    """Realistic-looking source: the corpus sketches concatenated with renamed setup/loop until long enough."""
    parts: list[str] = []
    total = 0
    i = 0
    sources = [p.read_text() for p in sorted(CORPUS.iterdir()) if p.suffix in (".ino", ".cpp")]
    while total < lines:
        src = sources[i % len(sources)].replace("setup()", f"setup{i}()").replace("loop()", f"loop{i}()")
        parts.append(src)
        total += src.count("\n")
        i += 1
    return "".join(parts)


def timed(fn: Callable[[], object], repeat: int = 7) -> float:
    """Median wall time of ``fn`` in ms."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


class Editor:
    """Produces a new edited version of ``text`` on every call (so the whole-text cache never hits)."""

    def __init__(self, text: str, engine: str, typed: bool = False) -> None:
        self.text, self.engine, self.typed, self.count = text, engine, typed, 0

    def __call__(self) -> None:
        self.count += 1
        if self.typed:  # a new Device OS-typed variable: every chunk's context changes
            changed = f"SystemSleepConfiguration cfg{self.count};\n" + self.text
        else:
            edit = f"void setup0() {{ int edit{self.count} = 0; }}\nvoid x0()"
            changed = self.text.replace("void setup0()", edit, 1)
        apilint.lint_source(changed, "big.cpp", "1.0.0", 13, engine=self.engine)


def verdict(ms: float, goal: float) -> str:
    return f"{ms / goal:.2f}x goal ({'MET' if ms < goal else 'NOT MET'})"


def bench_file() -> None:
    text = synthetic_file(3000)
    print(f"3,000-line file ({text.count(chr(10))} lines, {len(text) // 1024} KiB), target 1.0.0 on boron; "
          f"goal: re-check after a one-line edit < {EDIT_GOAL_MS:.0f} ms")  # fmt: skip
    rows: dict[str, dict[str, float]] = {}
    for engine in ENGINES:
        apilint.clear_caches()
        apilint.lint_source("void f(){}", "warm.cpp", "1.0.0", 13, engine=engine)  # load tables once
        t0 = time.perf_counter()
        apilint.lint_source(text, "big.cpp", "1.0.0", 13, engine=engine)
        first = (time.perf_counter() - t0) * 1000
        rows[engine] = {
            "first lint": first,
            "unchanged": timed(lambda engine=engine: apilint.lint_source(text, "big.cpp", "1.0.0", 13, engine=engine)),
            "one-line edit": timed(Editor(text, engine)),
            "typed-variable edit": timed(Editor(text, engine, typed=True)),
        }
    for what in rows["scan"]:
        scan, peer = rows["scan"][what], rows["treesitter"][what]
        goal = f"   {verdict(scan, EDIT_GOAL_MS)}" if "edit" in what else ""
        print(
            f"  {what:>20}: scan {scan:7.2f} ms   tree-sitter {peer:7.2f} ms   tree-sitter/scan {peer / scan:5.2f}x{goal}"
        )


def bench_project() -> None:
    files = [synthetic_file(2000) + f"\n// file {k}\n" for k in range(50)]
    total_lines = sum(f.count("\n") for f in files)
    print(f"project: {len(files)} files, {total_lines} lines, cold; goal < {PROJECT_GOAL_MS:.0f} ms")
    proj: dict[str, float] = {}
    for engine in ENGINES:
        apilint.clear_caches()
        t0 = time.perf_counter()
        names = apilint.project_defined_names(files)
        found = 0
        for k, f in enumerate(files):
            apilint.clear_chunk_memos()
            found += len(apilint.lint_source(f, f"src/f{k}.cpp", "1.0.0", 13, project_names=names, engine=engine))
        proj[engine] = (time.perf_counter() - t0) * 1000
        goal = f"   {verdict(proj[engine], PROJECT_GOAL_MS)}" if engine == "scan" else ""
        print(f"  {engine:>20}: {proj[engine]:7.0f} ms  ({found} findings){goal}")
    print(f"  {'tree-sitter/scan':>20}: {proj['treesitter'] / proj['scan']:.2f}x")


def main() -> int:
    t0 = time.perf_counter()
    bench_file()
    bench_project()
    print(f"(bench ran in {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
