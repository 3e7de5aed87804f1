"""Lint speed: a 3,000-line file (first lint, cached re-check, re-check after a one-line edit) and a
100,000-line project, for the scanner engine and the tree-sitter engine measured in the same run.

Goals: re-check after a one-line edit of a 3,000-line file < 20 ms; 100,000-line project < 1 s.
Usage: python bench/bench_apilint.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from fieldsafe import apilint

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "apilint-corpus"


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


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> int:
    text = synthetic_file(3000)
    n_lines = text.count("\n")
    apilint.lint_source("void f(){}", "warm.cpp", "1.0.0", 13)  # load tables once
    apilint.lint_source("void f(){}", "warm.cpp", "1.0.0", 13, engine="treesitter")
    print(f"3,000-line file ({n_lines} lines, {len(text) // 1024} KiB), target 1.0.0 on boron")
    results: dict[str, float] = {}
    for engine in ("scan", "treesitter"):
        counter = [0]

        def edited(engine: str = engine) -> None:
            counter[0] += 1
            changed = text.replace("void setup0()", f"void setup0() {{ int edit{counter[0]} = 0; }}\nvoid x0()", 1)
            apilint.lint_source(changed, "big.cpp", "1.0.0", 13, engine=engine)

        apilint.lint_source(text, "big.cpp", "1.0.0", 13, engine=engine)
        cached = timed(lambda engine=engine: apilint.lint_source(text, "big.cpp", "1.0.0", 13, engine=engine))
        after_edit = timed(edited)
        results[engine] = after_edit
        print(f"  {engine:>10}: re-check after one-line edit {after_edit:7.1f} ms   unchanged (cache) {cached:6.3f} ms")
    print(f"  goal < 20 ms: scan {'MET' if results['scan'] < 20 else 'NOT MET'}; "
          f"tree-sitter/scan = {results['treesitter'] / results['scan']:.2f}x")  # fmt: skip

    files = [synthetic_file(2000).replace("Particle", "Particle", 1) + f"\n// file {k}\n" for k in range(50)]
    total_lines = sum(f.count("\n") for f in files)
    print(f"project: {len(files)} files, {total_lines} lines")
    proj: dict[str, float] = {}
    for engine in ("scan", "treesitter"):
        apilint._CACHE.clear()
        t0 = time.perf_counter()
        names = apilint.project_defined_names(files)
        found = 0
        for k, f in enumerate(files):
            found += len(apilint.lint_source(f, f"src/f{k}.cpp", "1.0.0", 13, project_names=names, engine=engine))
        proj[engine] = (time.perf_counter() - t0) * 1000
        print(f"  {engine:>10}: {proj[engine]:7.0f} ms  ({found} findings)")
    print(f"  goal < 1000 ms: scan {'MET' if proj['scan'] < 1000 else 'NOT MET'}; "
          f"tree-sitter/scan = {proj['treesitter'] / proj['scan']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
