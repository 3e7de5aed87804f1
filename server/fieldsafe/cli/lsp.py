"""``fieldsafe lsp``: run the language server (stdio by default, ``--tcp 127.0.0.1:PORT`` to debug).

Why logging is set up here and so carefully: in stdio mode stdout *is* the protocol channel, so a
single stray print or log line corrupts the session. Logs go to stderr (editors show it in their
server log) or to ``--log-file``; pygls logs every message at INFO, so its logger stays at WARNING
unless ``--log-level debug`` is asked for.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

LOG_LEVELS = ("error", "warning", "info", "debug")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lsp`` subcommand."""
    parser = subparsers.add_parser(
        "lsp",
        help="run the fieldsafe language server (stdio)",
        description="Language server for Particle projects: pin/device diagnostics, compile on save, "
        "API availability. Speaks LSP on stdin/stdout unless --tcp is given.",
    )
    parser.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen on a TCP socket instead of stdio (for debugging; loopback hosts only)",
    )
    parser.add_argument("--stdio", action="store_true", help="use stdio (the default; accepted for editors)")
    parser.add_argument("--log-file", type=Path, help="write logs to this file instead of stderr")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="fieldsafe log level")
    parser.set_defaults(func=run)


def parse_tcp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); only loopback hosts are accepted (the server has no auth)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not (0 < int(port_text) < 65536):
        raise ValueError(f"--tcp {value!r}: expected HOST:PORT, e.g. 127.0.0.1:2087")
    host = host.strip("[]") or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"--tcp {value!r}: the server only binds loopback (use 127.0.0.1:{port_text})")
    return host, int(port_text)


def setup_logging(level: str, log_file: Path | None) -> None:
    """Route fieldsafe logs to stderr or a file; never stdout. pygls stays at WARNING unless debug."""
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("fieldsafe").setLevel(level.upper())
    logging.getLogger("pygls").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    # Token redaction: ``fieldsafe.cloud`` installs its filter when it is imported, which is before any
    # token can exist in this process; importing it here would only slow the start-up.


def run(args: argparse.Namespace) -> int:
    """Start the server; returns when the client disconnects."""
    tcp = None
    if args.tcp:
        try:
            tcp = parse_tcp(args.tcp)
        except ValueError as exc:
            print(f"fieldsafe lsp: {exc}", file=sys.stderr)
            return 2
    setup_logging(args.log_level, args.log_file)
    from fieldsafe.lsp.server import create_server

    server = create_server(hard_exit=True)
    if tcp is not None:
        logging.getLogger("fieldsafe.lsp").info("listening on %s:%d", *tcp)
        server.start_tcp(*tcp)
    else:
        server.start_io()
    return 0
