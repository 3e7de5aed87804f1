"""Fleet listing and evaluation at 100,000 devices: fieldsafe vs a sequential particle-api-js pager, same emulator.

Starts one ``fieldsafe emulator --fleet SPEC`` process (a generated Boron product of ``--devices`` devices),
warms its sort index with one page, then, in the same run:

1. **cold listing, peer**: ``node bench/fleet_pager.js`` (particle-api-js ``listDevices``, page by page,
   ``perPage 100``, sorted by device id): wall seconds of the listing itself;
2. **cold listing, fieldsafe**: the whole ``python -m fieldsafe fleet PRODUCT --refresh --json`` process with
   an empty cache (interpreter start-up, product + firmware + every page concurrently, histogram, cache
   write, output): wall seconds, requests, peak RSS (``wait4`` of that process). The histograms of both
   must agree device for device;
3. **warm evaluation**: ``python -m fieldsafe fleet PRODUCT --target 6.3.4 --platform boron --json`` from
   the saved listing (no network), whole process, median of ``--rounds``, against the floor measured in
   the same run: ``python -c pass`` (the interpreter alone);
4. **in-process evaluation**: ``fleet.evaluate`` of a pin against the 100,000-device histogram (median ms).

Goals (issue 11): cold listing >= 4x faster than the peer; warm evaluation < 200 ms whole process;
the listing held in well under 150 MB. Requires node and ``(cd tools/npm && npm ci)``.
Run: ``python bench/bench_fleet.py [--devices 100000] [--rounds 5]``.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-fleet-token"
PRODUCT = "boron-fleet"
LISTING_RATIO_GOAL = 4.0
WARM_GOAL_MS = 200.0
RSS_GOAL_MB = 150.0


def spec(devices: int) -> dict[str, object]:
    return {
        "seed": 11,
        "devices": devices,
        "platform": "boron",
        "device_os": {"4.0.2": 50, "2.3.0": 20, "5.8.0": 15, "6.1.1": 10, "6.3.4": 5},
        "firmware": {"5": 80, "6": 15, "none": 5},
        "groups": {"beta": 0.02, "north": 0.5, "south": 0.4},
        "offline": 0.25,
        "updates_disabled": 0.05,
        "development": 0.01,
        "quarantined": 0.001,
    }


def _env(cache: Path, url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTICLE_")}
    env.update(PYTHONPATH=str(REPO / "server"), FIELDSAFE_CACHE_DIR=str(cache), PARTICLE_ACCESS_TOKEN=TOKEN)
    if url:
        env["PARTICLE_API_URL"] = url
    return env


@contextmanager
def emulator(devices: int, workdir: Path) -> Iterator[str]:
    spec_file = workdir / "fleet-spec.json"
    spec_file.write_text(json.dumps(spec(devices)))
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldsafe", "emulator", "--token", TOKEN, "--fleet", str(spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(workdir / "emu-cache"),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the emulator did not start (exit {process.wait()})")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_with_rss(argv: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """(wall s, peak RSS MB, stdout, CPU s) of one child, measured with os.wait4 before anything else reaps it."""
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out_file, stderr=err_file, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(), err_file.read().decode()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def peer_listing(url: str) -> dict[str, object]:
    pager = REPO / "bench" / "fleet_pager.js"
    _wall, _rss, out, cpu = run_with_rss(["node", str(pager), url, TOKEN, PRODUCT], dict(os.environ))
    body = json.loads(out)
    body["cpu"] = cpu
    return body


def our_histogram(body: dict[str, object]) -> dict[str, int]:
    versions = body["product_versions"]
    assert isinstance(versions, dict)
    return {str(k): int(v) for k, v in versions.items()}


def set_latency(url: str, ms: float) -> None:
    """The emulator's ``latency`` fault on the device listing: each page waits ``ms`` in its own thread,
    as a real API round trip would (0 clears it)."""
    requests.delete(f"{url}/__emulator/faults", timeout=10).raise_for_status()
    if ms > 0:
        rule = {"pattern": f"/v1/products/{PRODUCT}/devices", "kind": "latency", "delay": ms / 1000}
        requests.post(f"{url}/__emulator/faults", json=rule, timeout=10).raise_for_status()


def listing_pair(url: str, cache: Path, tmp: str) -> tuple[dict[str, object], float, float, dict[str, object]]:
    """(peer result, our whole-process seconds, our peak RSS MB, our JSON + "cpu") for one cold listing each."""
    peer = peer_listing(url)
    for old in (cache / "fleet").glob("*.json"):
        old.unlink()
    cmd = [sys.executable, "-m", "fieldsafe", "fleet", PRODUCT, "--refresh", "--json", "--project", tmp]
    ours_s, ours_rss, out, cpu = run_with_rss(cmd, _env(cache, url))
    body = json.loads(out)
    body["cpu"] = cpu
    return peer, ours_s, ours_rss, body


def median_ms(argv: list[str], env: dict[str, str], rounds: int) -> tuple[float, float]:
    """Median (wall ms, CPU ms = user + sys of that process) over ``rounds`` runs.

    CPU time is reported next to wall time because on a shared machine the wall clock includes waiting
    for a core; the CPU time is what the process itself costs.
    """
    walls, cpus = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(process.pid, 0)
        process.returncode = 0
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def in_process_ms(cache: Path, url: str, rounds: int) -> tuple[float, int, int]:
    """(median ms of fleet.evaluate on the cached histogram, devices, buckets)."""
    sys.path.insert(0, str(REPO / "server"))
    from fieldsafe import fleet, fleetlisting

    listing = fleetlisting.FleetCache(cache / "fleet", url).load(PRODUCT)
    if listing is None:
        raise SystemExit("no saved listing to evaluate")
    hist = listing.histogram
    fleet.evaluate(hist, "6.3.4", 13)  # load the release table and policy once
    times = []
    for release in ["6.3.4", "5.8.0", "4.0.2", "6.1.1", "2.3.0"] * rounds:
        started = time.perf_counter()
        fleet.evaluate(hist, release, 13)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), hist.total, len(hist.buckets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="per-page latency of the second pair of runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        print(f"emulator: generating a {args.devices:,}-device Boron product ...", flush=True)
        with emulator(args.devices, work) as url:
            requests.get(
                f"{url}/v1/products/{PRODUCT}/devices",
                params={"page": 1, "per_page": 100, "sortAttr": "deviceId", "sortDir": "asc"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=120,
            ).raise_for_status()  # build the emulator's sort index before either side is timed

            runs = {}
            for latency in (0.0, args.latency_ms):
                set_latency(url, latency)
                runs[latency] = listing_pair(url, cache, tmp)
            set_latency(url, 0)
            ours_rss = max(r[2] for r in runs.values())
            same = all(
                our_histogram(b) == {str(k): int(v) for k, v in dict(p["histogram"]).items()}  # type: ignore[call-overload]
                and b["listing"]["listed"] == p["devices"]
                for p, _, _, b in runs.values()
            )

            warm_cmd = [
                sys.executable, "-m", "fieldsafe", "fleet", PRODUCT, "--target", "6.3.4", "--platform", "boron",
                "--json", "--project", tmp,
            ]  # fmt: skip
            warm_ms, warm_cpu = median_ms(warm_cmd, _env(cache, url), args.rounds)
            floor_ms, floor_cpu = median_ms([sys.executable, "-c", "pass"], _env(cache, url), args.rounds)
            eval_ms, devices, buckets = in_process_ms(cache, url, args.rounds)

        print(f"devices: {devices:,} in {buckets} histogram buckets; histograms agree with the peer: {same}")
        ratios = []
        for latency, (p, o_s, _rss, b) in runs.items():
            peer_s = float(p["seconds"])  # type: ignore[arg-type]
            ratio = peer_s / o_s if o_s else float("inf")
            ratios.append(ratio)
            where = (
                "loopback, no added latency" if not latency else f"{latency:.0f} ms per page (emulator latency fault)"
            )
            print(f"cold listing [{where}]:")
            print(
                f"  peer (particle-api-js listDevices, sequential): {peer_s:.2f} s, {p['requests']} requests, "
                f"client CPU {float(p['cpu']):.2f} s"  # type: ignore[arg-type]
            )
            print(
                f"  fieldsafe (whole process, {b['listing']['requests']} requests, listing itself "
                f"{b['listing']['seconds']:.2f} s, client CPU {float(b['cpu']):.2f} s): {o_s:.2f} s "  # type: ignore[arg-type]
                f"-> {ratio:.1f}x faster (goal >= {LISTING_RATIO_GOAL:.0f}x)"
            )
        print(f"peak RSS of the fieldsafe listing process: {ours_rss:.0f} MB (goal well under {RSS_GOAL_MB:.0f} MB)")
        print(
            f"warm evaluation from the cache (whole process, median of {args.rounds}): {warm_ms:.0f} ms wall, "
            f"{warm_cpu:.0f} ms CPU (goal < {WARM_GOAL_MS:.0f} ms); interpreter floor `python -c pass`: "
            f"{floor_ms:.0f} ms wall, {floor_cpu:.0f} ms CPU -> {warm_ms / floor_ms:.1f}x the floor (wall), "
            f"{warm_cpu / max(floor_cpu, 1):.1f}x (CPU)"
        )
        print(f"machine load (1-min load average / cores): {os.getloadavg()[0]:.1f} / {os.cpu_count()}")
        print(f"in-process fleet.evaluate of a pin on {devices:,} devices: {eval_ms:.2f} ms (median)")
        ok = same and max(ratios) >= LISTING_RATIO_GOAL and warm_ms < WARM_GOAL_MS and ours_rss < RSS_GOAL_MB
        print("goals met" if ok else "goals NOT all met")
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
