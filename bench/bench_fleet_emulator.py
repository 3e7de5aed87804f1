"""List a 100,000-device product completely through the emulator's HTTP API: pages/s, page latency, RSS.

Starts ``fieldsafe emulator --fleet SPEC`` (a generated Boron product, 100,000 devices by default) in its
own process, and, as the floor, a second emulator with the small default state. Then:

1. floor latency: ``GET /__emulator/health`` (same HTTP stack, no work) N times;
2. a complete sequential listing (``per_page=100&sortAttr=deviceId&sortDir=asc``, the order paging clients
   use), checking that every device id arrives exactly once;
3. the same listing with 4 concurrent clients (fieldsafe's fleet listing runs pages in parallel);
4. the first page of an uncached filter (``groups=beta``), the worst case a client meets;
5. the emulator's RSS (VmRSS, and VmHWM = peak) against the default-state emulator's.

Run: ``python bench/bench_fleet_emulator.py [--devices 100000] [--concurrency 4]``.
Goals (issue 9): a 100-device page well under 50 ms; the emulator under 300 MB RSS at 100,000 devices.
Page latency is measured by the client (request sent -> body parsed), so it includes the client's own
JSON decoding: an upper bound of what the emulator spends.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-fleet-token"
PAGE_GOAL_MS = 50.0
RSS_GOAL_MB = 300.0


def spec(devices: int) -> dict[str, object]:
    return {
        "seed": 9,
        "devices": devices,
        "platform": "boron",
        "device_os": {"4.0.2": 50, "2.3.0": 20, "5.8.0": 15, "6.1.1": 15},
        "firmware": {"5": 80, "6": 15, "none": 5},
        "groups": {"beta": 0.02, "north": 0.5, "south": 0.4},
        "offline": 0.25,
        "updates_disabled": 0.05,
        "development": 0.01,
        "quarantined": 0.001,
    }


@contextmanager
def emulator(*extra: str) -> Iterator[tuple[str, int, float]]:
    """A ``fieldsafe emulator`` process: (url, pid, seconds until it printed its URL)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "server"))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldsafe", "emulator", "--token", TOKEN, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the emulator did not start (exit {process.wait()})")
        yield url, process.pid, time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed_get(session: requests.Session, url: str, **params: object) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = session.get(url, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    body = response.json()
    took = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET {url} -> {response.status_code}: {body}")
    return took, body


def floor_ms(url: str, rounds: int) -> list[float]:
    session = requests.Session()
    return [timed_get(session, url + "/__emulator/health")[0] for _ in range(rounds)]


def list_all(url: str, product: str, concurrency: int) -> tuple[list[float], set[str], float]:
    """Every page of the product (per_page=100, by device id): latencies (ms), ids seen, wall seconds."""
    path = f"{url}/v1/products/{product}/devices"
    params = {"per_page": 100, "sortAttr": "deviceId", "sortDir": "asc"}
    session = requests.Session()
    started = time.perf_counter()
    first_ms, first = timed_get(session, path, page=1, **params)
    meta = first["meta"]
    assert isinstance(meta, dict)
    pages = int(meta["total_pages"])
    latencies = [first_ms]
    ids = {d["id"] for d in first["devices"]}  # type: ignore[union-attr]

    def fetch(page: int) -> tuple[float, list[str]]:
        took, body = timed_get(requests.Session(), path, page=page, **params)
        return took, [d["id"] for d in body["devices"]]  # type: ignore[union-attr]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for took, page_ids in pool.map(fetch, range(2, pages + 1)):
            latencies.append(took)
            ids.update(page_ids)
    return latencies, ids, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--floor-rounds", type=int, default=300)
    args = parser.parse_args()

    with emulator() as (small_url, small_pid, small_start):
        floor_small = floor_ms(small_url, 50)
        base_rss, base_hwm = rss_mb(small_pid)
    with emulator("--fleet", json.dumps(spec(args.devices))) as (url, pid, start_s):
        floor = floor_ms(url, args.floor_rounds)
        seq, seq_ids, seq_wall = list_all(url, "boron-fleet", 1)
        par, par_ids, par_wall = list_all(url, "boron-fleet", args.concurrency)
        cold_ms, cold = timed_get(
            requests.Session(), f"{url}/v1/products/boron-fleet/devices", per_page=100, groups="beta"
        )
        rss, hwm = rss_mb(pid)

    complete = len(seq_ids) == args.devices == len(par_ids)
    floor_p50 = statistics.median(floor)
    print(f"fleet emulator benchmark: {args.devices:,} devices (Boron product), per_page=100, sortAttr=deviceId")
    print(
        f"  start-up (generate + sort, until the URL line): {start_s:.2f} s   default-state emulator: {small_start:.2f} s"
    )
    print(f"  floor  GET /__emulator/health  p50 {floor_p50:.2f} ms  p95 {percentile(floor, 0.95):.2f} ms"
          f"  (default-state emulator p50 {statistics.median(floor_small):.2f} ms)")  # fmt: skip
    for label, lat, wall, ids in (
        ("sequential", seq, seq_wall, seq_ids),
        (f"{args.concurrency} clients", par, par_wall, par_ids),
    ):
        p50, p95 = statistics.median(lat), percentile(lat, 0.95)
        print(
            f"  list   {label:<11} {len(lat)} pages in {wall:.2f} s = {len(lat) / wall:.0f} pages/s"
            f"  p50 {p50:.1f} ms  p95 {p95:.1f} ms  max {max(lat):.1f} ms  ids {len(ids):,}"
            f"  | p95 / goal {PAGE_GOAL_MS:.0f} ms = {p95 / PAGE_GOAL_MS:.2f}  p50 / floor p50 = {p50 / floor_p50:.1f}x"
        )
    print(f"  cold filter page (groups=beta, first request, uncached): {cold_ms:.1f} ms"
          f"  ({cold['meta']['total']:,} matches)")  # type: ignore[index]  # fmt: skip
    print(f"  RSS    {rss:.0f} MB (peak {hwm:.0f} MB)  | / goal {RSS_GOAL_MB:.0f} MB = {hwm / RSS_GOAL_MB:.2f}"
          f"   default-state emulator {base_rss:.0f} MB (peak {base_hwm:.0f}): fleet adds {rss - base_rss:.0f} MB"
          f" = {(rss - base_rss) * 1024 * 1024 / args.devices:.0f} bytes/device")  # fmt: skip
    ok = complete and percentile(seq, 0.95) < PAGE_GOAL_MS and hwm < RSS_GOAL_MB
    print(f"  complete listing: {'yes' if complete else 'NO'}   goals met: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
