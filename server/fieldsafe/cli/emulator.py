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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fieldsafe.emulator import EmulatorServer, StateError

    if not 0 <= args.port <= 65535:
        print(f"fieldsafe emulator: --port {args.port} is not a port number (0-65535)", file=sys.stderr)
        return 2
    try:
        server = EmulatorServer(args.state, tokens=args.token, port=args.port)
    except StateError as exc:
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
