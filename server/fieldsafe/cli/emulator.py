"""``fieldsafe emulator``: run the local Particle Cloud on loopback until interrupted.

Prints its base URL (one line) once it is listening, so scripts can read the first line of stdout
and point ``PARTICLE_API_URL`` or particle-cli's ``apiUrl`` at it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run a local Particle Cloud emulator on 127.0.0.1",
        description="Run a local Particle Cloud emulator on 127.0.0.1 (see docs/emulator.md).",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free port)")
    parser.add_argument(
        "--token", action="append", default=[], metavar="T", help="accept this access token (repeatable)"
    )
    parser.add_argument("--state", metavar="FILE", help="state file (devices, products, tokens, faults)")
    parser.add_argument(
        "--fleet",
        action="append",
        default=[],
        metavar="SPEC",
        help="generate a product fleet from SPEC (a JSON file or inline JSON; docs/emulator.md); repeatable",
    )
    parser.add_argument(
        "--rate-limit",
        nargs="?",
        const="10000/300",
        metavar="N/SECONDS",
        help="answer 429 with Retry-After past N requests per client per SECONDS (default 10000/300)",
    )
    parser.add_argument(
        "--clock",
        metavar="SPEED",
        help="field simulator clock: simulated seconds per real second (default 10, or the state file's), "
        "'manual' (POST /__emulator/clock advances it) or 'instant'",
    )
    parser.set_defaults(func=run)


def _rate_limit(text: str) -> Any:
    from fieldsafe.emulator.state import RateLimit

    count, _, window = text.partition("/")
    try:
        limit = RateLimit(int(count), float(window or 300))
    except ValueError:
        raise ValueError(f"--rate-limit {text}: expected N/SECONDS, e.g. 10000/300") from None
    if limit.requests < 1 or limit.window <= 0:
        raise ValueError(f"--rate-limit {text}: N must be at least 1 and SECONDS positive")
    return limit


def _load(args: argparse.Namespace) -> Any:
    """The state (file or default) with the --fleet products generated into it."""
    from fieldsafe.emulator.fleetgen import generate, load_spec
    from fieldsafe.emulator.state import default_state, load_state

    state = load_state(args.state) if args.state else default_state()
    for text in args.fleet:
        product = generate(state, load_spec(text))
        count = sum(1 for d in state.devices if d.product_id == product.id)
        print(f"fieldsafe emulator: product {product.id} ({product.slug}): {count} devices", file=sys.stderr)
    return state


def run(args: argparse.Namespace) -> int:
    from fieldsafe.emulator import EmulatorServer, StateError
    from fieldsafe.emulator.fleetgen import FleetSpecError
    from fieldsafe.emulator.simclock import SimClock

    if not 0 <= args.port <= 65535:
        print(f"fieldsafe emulator: --port {args.port} is not a port number (0-65535)", file=sys.stderr)
        return 2
    clock = None
    if getattr(args, "clock", None) is not None:
        try:
            clock = SimClock.parse_speed(args.clock)
        except ValueError as exc:
            print(f"fieldsafe emulator: --clock: {exc}", file=sys.stderr)
            return 2
    try:
        limit = _rate_limit(args.rate_limit) if args.rate_limit else None
        state = _load(args)
        server = EmulatorServer(state, tokens=args.token, port=args.port, rate_limit=limit, clock=clock)
    except (StateError, FleetSpecError, ValueError) as exc:
        print(f"fieldsafe emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fieldsafe emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    server.start()
    print(server.url, flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
