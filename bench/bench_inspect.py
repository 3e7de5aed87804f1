"""Benchmark: fieldsafe's module parser and ``fieldsafe inspect`` against Particle's own tools.

(a) in-process: parse + CRC verify of the same fixture files, looped, by ``fieldsafe.modules`` and by
    binary-version-reader's ``HalModuleParser`` (node) — both on in-memory buffers and from files.
    fieldsafe also computes the SHA-256, which binary-version-reader does not.
(b) whole process: ``fieldsafe inspect FILE`` vs ``particle binary inspect FILE`` (one process per
    file, as a user or script would call them; particle-cli with HOME set to a temp dir).

Goals: (a) at least as fast as binary-version-reader; (b) at least 3x faster than the particle CLI.
Prints the measured numbers and ratios; no pass/fail. Run: ``python bench/bench_inspect.py``
(options: --seconds for the in-process loop length, --rounds for whole-process repetitions).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = ROOT / "tests" / "fixtures" / "particle-binaries"
NODE_MODULES = ROOT / "tools" / "npm" / "node_modules"
BVR = NODE_MODULES / "binary-version-reader"
PARTICLE = NODE_MODULES / ".bin" / "particle"

# Loops parseBuffer (in memory) and parseFile over the files for about SECONDS each; prints JSON.
NODE_LOOP_JS = r"""
const fs = require('fs');
const { HalModuleParser } = require(process.env.BVR_PATH);
const seconds = Number(process.env.BENCH_SECONDS);
const files = process.argv.slice(2);
const buffers = files.map(f => fs.readFileSync(f));
async function loop(one) {
  let rounds = 0;
  const t0 = process.hrtime.bigint();
  const limit = t0 + BigInt(Math.round(seconds * 1e9));
  do {
    for (let i = 0; i < files.length; i++) {
      try { await one(i); } catch (e) { /* rejected files count as handled, as in fieldsafe */ }
    }
    rounds++;
  } while (process.hrtime.bigint() < limit);
  return { rounds, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}
(async () => {
  const parser = new HalModuleParser();
  await loop(i => parser.parseBuffer({ fileBuffer: buffers[i] }));  // warm-up (JIT)
  const buffer = await loop(i => parser.parseBuffer({ fileBuffer: buffers[i] }));
  const file = await loop(i => parser.parseFile(files[i]));
  process.stdout.write(JSON.stringify({ buffer, file }));
})();
"""


def _python_loop(files: list[Path], seconds: float) -> dict[str, dict[str, float]]:
    from fieldsafe.modules import ModuleParseError, parse_file, parse_module

    buffers = [p.read_bytes() for p in files]

    def loop(one: object) -> dict[str, float]:
        rounds = 0
        t0 = time.perf_counter()
        while True:
            for i in range(len(files)):
                with contextlib.suppress(ModuleParseError):  # rejected files count as handled
                    one(i)  # type: ignore[operator]
            rounds += 1
            if time.perf_counter() - t0 >= seconds:
                break
        return {"rounds": rounds, "seconds": time.perf_counter() - t0}

    loop(lambda i: parse_module(buffers[i]))  # warm-up (caches, platform table)
    return {
        "buffer": loop(lambda i: parse_module(buffers[i])),
        "file": loop(lambda i: parse_file(files[i])),
    }


def _node_loop(files: list[Path], seconds: float) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "loop.js"
        script.write_text(NODE_LOOP_JS, encoding="utf-8")
        env = {**os.environ, "BVR_PATH": str(BVR), "BENCH_SECONDS": str(seconds)}
        proc = subprocess.run(
            ["node", str(script), *map(str, files)], capture_output=True, text=True, env=env, check=True
        )
    return json.loads(proc.stdout)


def _per_file_ms(result: dict[str, float], nfiles: int) -> float:
    return result["seconds"] / (result["rounds"] * nfiles) * 1000


def _fieldsafe_command() -> list[str]:
    """The installed console script next to this interpreter (no pyenv shim), else ``python -m``."""
    script = Path(sys.executable).with_name("fieldsafe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fieldsafe"]


def _time_processes(commands: list[list[str]], env: dict[str, str], rounds: int) -> float:
    """Median over rounds of the wall time to run every command once, in seconds."""
    totals = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for cmd in commands:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        totals.append(time.perf_counter() - t0)
    return statistics.median(totals)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="in-process loop length per mode (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="whole-process repetitions (median; default 3)")
    opts = ap.parse_args()

    if not shutil.which("node") or not BVR.is_dir() or not PARTICLE.exists():
        print("needs node and tools/npm/node_modules (cd tools/npm && npm ci)", file=sys.stderr)
        return 2
    files = sorted(BIN_DIR.glob("*.bin"))
    total_bytes = sum(p.stat().st_size for p in files)
    print(f"{len(files)} fixture files, {total_bytes / 1e6:.2f} MB per round")

    print("\n(a) in-process parse + CRC verify (ms per file, lower is better)")
    ours = _python_loop(files, opts.seconds)
    theirs = _node_loop(files, opts.seconds)
    for mode in ("buffer", "file"):
        a = _per_file_ms(ours[mode], len(files))
        b = _per_file_ms(theirs[mode], len(files))
        print(
            f"  {mode:6}  fieldsafe {a:.4f} ms ({ours[mode]['rounds']} rounds)  "
            f"binary-version-reader {b:.4f} ms ({theirs[mode]['rounds']} rounds)  "
            f"ratio {b / a:.2f}x faster"
        )

    print("\n(b) whole process, one process per file (seconds for all files, median)")
    valid = [p for p in files if p.name not in {"emptybin.bin", "RC2_bootloader.bin"}]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        fs_cmds = [[*_fieldsafe_command(), "inspect", str(p)] for p in valid]
        pc_cmds = [[str(PARTICLE), "binary", "inspect", str(p)] for p in valid]
        t_fs = _time_processes(fs_cmds, env, opts.rounds)
        t_pc = _time_processes(pc_cmds, env, opts.rounds)
        t_batch = _time_processes([[*_fieldsafe_command(), "inspect", *map(str, valid)]], env, opts.rounds)
    n = len(valid)
    print(f"  fieldsafe inspect       {t_fs:.2f} s  ({t_fs / n * 1000:.0f} ms per call)")
    print(f"  particle binary inspect {t_pc:.2f} s  ({t_pc / n * 1000:.0f} ms per call)")
    print(f"  ratio {t_pc / t_fs:.2f}x faster (goal >= 3x)")
    print(f"  bonus: fieldsafe inspect with all {n} files in one process: {t_batch * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
