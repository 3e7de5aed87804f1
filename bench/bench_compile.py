"""Whole-process ``fieldsafe compile`` against ``particle compile`` (npm particle-cli), same emulator, same project.

Both tools talk to one local Particle Cloud emulator started by this script, compile the example project
for the same platform and release, and save the binary. The emulator's own compile time is the same for
both, so the ratio measures what each tool adds: start-up, target validation, upload, download.

Run: ``python bench/bench_compile.py [--rounds N]``. Needs ``npm ci`` in ``tools/npm`` and g++.
Goal (issue 3): fieldsafe takes at most half the CLI's time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTICLE = REPO / "tools" / "npm" / "node_modules" / ".bin" / "particle"
TOKEN = "bench-token-0123456789abcdef"


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one command takes; fails loudly if it does not succeed (a benchmark of an error is worthless)."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{result.stdout}\n{result.stderr}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per tool (default 5)")
    parser.add_argument("--platform", default="electron")
    parser.add_argument("--target", default="0.5.3")
    args = parser.parse_args()
    if not PARTICLE.exists():
        print(f"particle-cli not installed at {PARTICLE}: run `npm ci` in tools/npm", file=sys.stderr)
        return 2
    from fieldsafe.emulator.server import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="fieldsafe-bench-") as tmp_text, EmulatorServer(None, [TOKEN]) as emu:
        tmp = Path(tmp_text)
        project = tmp / "field-tracker"
        shutil.copytree(REPO / "examples" / "field-tracker", project)
        home = tmp / "home"
        (home / ".particle").mkdir(parents=True)
        config = {"apiUrl": emu.url, "access_token": TOKEN, "username": "bench@fieldsafe.invalid"}
        (home / ".particle" / "particle.config.json").write_text(json.dumps(config))
        # both tools read the same particle-cli profile; nothing else differs
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "PARTICLE_DISABLE_UPDATE": "1",
            "XDG_CACHE_HOME": str(tmp / "cache"),
        }
        fieldsafe_cmd = [
            sys.executable,
            "-m",
            "fieldsafe",
            "compile",
            str(project),
            "--platform",
            args.platform,
            "--target",
            args.target,
            "--save-to",
            str(tmp / "fs.bin"),
        ]
        particle_cmd = [
            str(PARTICLE),
            "compile",
            args.platform,
            str(project),
            "--target",
            args.target,
            "--saveTo",
            str(tmp / "pc.bin"),
        ]
        timed(fieldsafe_cmd, env, tmp)  # warm both (header cache, OS file cache)
        timed(particle_cmd, env, tmp)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(timed(fieldsafe_cmd, env, tmp))
            theirs.append(timed(particle_cmd, env, tmp))
        compiles = len(emu.seen("/v1/binaries", "POST"))
    fs_median, pc_median = statistics.median(ours), statistics.median(theirs)
    print(
        f"project: examples/field-tracker, {args.platform} @ {args.target}, {args.rounds} rounds, {compiles} compiles"
    )
    print(f"fieldsafe compile : median {fs_median * 1000:7.0f} ms  (min {min(ours) * 1000:.0f})")
    print(f"particle compile  : median {pc_median * 1000:7.0f} ms  (min {min(theirs) * 1000:.0f})")
    ratio = fs_median / pc_median
    verdict = "meets" if ratio <= 0.5 else "misses"
    print(f"ratio fieldsafe/particle-cli: {ratio:.2f} ({verdict} the goal of <= 0.50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
