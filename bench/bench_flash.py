"""Whole-process ``fieldsafe flash --binary`` against ``particle flash``, and ``update-os``'s overhead.

Part 1: both tools flash the same app (it runs as is on the device: the guard lets it through) to the same
device of one emulator. The field simulator's clock is "instant", so the device's side costs nothing and the
ratio measures what each tool adds: start-up, device read, checks, upload. fieldsafe does more work than
particle-cli (a fresh device read, the dependency check, and it waits for the device to report the new app
hash; particle-cli returns once the cloud accepted the upload).
Goal (issue 10): fieldsafe takes at most half the CLI's time.

Part 2: ``fieldsafe update-os`` Electron 0.5.3 -> 2.3.1 with the simulator's clock running N simulated seconds
per real second. The floor is the simulated delivery time (the ledger's transfers and reboots, i.e. the
delivery timing model) divided by N; the overhead is wall time minus that floor.

Run: ``python bench/bench_flash.py [--rounds N] [--speed N]``. Needs ``npm ci`` in ``tools/npm``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTICLE = REPO / "tools" / "npm" / "node_modules" / ".bin" / "particle"
TOKEN = "bench-flash-token-0123456789abcdef"
sys.path.insert(0, str(REPO / "tests"))


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one command takes; fails loudly if it does not succeed (a benchmark of an error is worthless)."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{result.stdout}\n{result.stderr}")
    return took


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def _env(home: Path, tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "PARTICLE_DISABLE_UPDATE": "1",
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "FIELDSAFE_STATE_DIR": str(tmp / "state"),
        "PYTHONPATH": str(REPO / "server"),
    }


def _profile(tmp: Path, url: str) -> Path:
    home = tmp / "home"
    (home / ".particle").mkdir(parents=True, exist_ok=True)
    config = {"apiUrl": url, "access_token": TOKEN, "username": "bench@fieldsafe.invalid"}
    (home / ".particle" / "particle.config.json").write_text(json.dumps(config))
    return home


def bench_flash(rounds: int, device: str, platform: str, release: str) -> float:
    from fieldsafe.emulator.server import EmulatorServer
    from flash_helpers import app_for

    with (
        tempfile.TemporaryDirectory(prefix="fieldsafe-bench-") as tmp_text,
        EmulatorServer(None, [TOKEN], clock="instant") as emu,
    ):
        tmp = Path(tmp_text)
        binary = tmp / "app.bin"
        binary.write_bytes(app_for(platform, release, payload=9000))
        env = _env(_profile(tmp, emu.url), tmp)  # both tools read the same particle-cli profile
        fieldsafe_cmd = [sys.executable, "-m", "fieldsafe", "flash", "--device", device, "--binary", str(binary)]
        particle_cmd = [str(PARTICLE), "flash", device, str(binary)]
        timed(fieldsafe_cmd, env, tmp)  # warm both (OS file cache, bytecode)
        timed(particle_cmd, env, tmp)
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(timed(fieldsafe_cmd, env, tmp))
            theirs.append(timed(particle_cmd, env, tmp))
        spent = _get(f"{emu.url}/__emulator/field/{device}")["device"]
        size = binary.stat().st_size
    fs_median, pc_median = statistics.median(ours), statistics.median(theirs)
    print(f"flash: {platform} app for {release} ({size} B) to {device}, {rounds} rounds each, clock instant")
    print(f"  fieldsafe flash --binary : median {fs_median * 1000:6.0f} ms  (min {min(ours) * 1000:.0f})")
    print(f"  particle flash           : median {pc_median * 1000:6.0f} ms  (min {min(theirs) * 1000:.0f})")
    print(
        f"  device ledger: {spent['bytes_total']:,} B over {len(spent['transfers'])} transfers, Safe Mode {spent['safe_mode_entries']}"
    )
    ratio = fs_median / pc_median
    print(f"  ratio fieldsafe/particle-cli: {ratio:.2f} ({'meets' if ratio <= 0.5 else 'misses'} the goal of <= 0.50)")
    return ratio


def bench_update(speed: float, rounds: int) -> None:
    from fieldsafe import delivery, guard
    from fieldsafe.emulator.server import EmulatorServer

    walls, floors = [], []
    for _ in range(rounds):
        with (
            tempfile.TemporaryDirectory(prefix="fieldsafe-bench-") as tmp_text,
            EmulatorServer(None, [TOKEN], clock=speed) as emu,
        ):
            tmp = Path(tmp_text)
            env = _env(_profile(tmp, emu.url), tmp)
            raw = _get_device(emu.url, "field-unit-7")
            plan = delivery.plan_update_os(guard.device_facts(raw), "2.3.1")
            cmd = [sys.executable, "-m", "fieldsafe", "update-os", "field-unit-7", "--to", "2.3.1", "--yes"]
            walls.append(timed(cmd, env, tmp))
            spent = _get(f"{emu.url}/__emulator/field/field-unit-7")["device"]
            assert spent["device_os"] == "2.3.1" and spent["bytes_total"] == plan.total_bytes, spent
            simulated = sum(delivery.transfer_seconds(s.module.bytes, True) for s in plan.steps)
            simulated += plan.reboots * delivery.REBOOT_SECONDS
            floors.append(simulated / speed)
    wall, floor = statistics.median(walls), statistics.median(floors)
    print(
        f"update-os: Electron 0.5.3 -> 2.3.1, {len(plan.steps)} modules, {plan.total_bytes:,} B, clock x{speed:g}, "
        f"{rounds} rounds"
    )
    print(
        f"  simulated delivery (transfers + {plan.reboots} reboots): {floor * speed:.1f} s simulated = {floor:.2f} s real floor"
    )
    print(f"  fieldsafe update-os wall time: median {wall:.2f} s (min {min(walls):.2f})")
    print(
        f"  overhead beyond the simulated transfer time: {wall - floor:.2f} s "
        f"({(wall - floor) / len(plan.steps):.2f} s per module; ratio wall/floor {wall / floor:.2f})"
    )


def _get_device(url: str, name: str) -> dict:
    request = urllib.request.Request(f"{url}/v1/devices/{name}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per tool (default 5)")
    parser.add_argument("--speed", type=float, default=20.0, help="simulated seconds per real second for update-os")
    parser.add_argument("--device", default="greenhouse-argon")
    parser.add_argument("--platform", default="argon")
    parser.add_argument("--release", default="6.1.1")
    args = parser.parse_args()
    if not PARTICLE.exists():
        print(f"particle-cli not installed at {PARTICLE}: run `npm ci` in tools/npm", file=sys.stderr)
        return 2
    bench_flash(args.rounds, args.device, args.platform, args.release)
    bench_update(args.speed, max(1, args.rounds // 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
