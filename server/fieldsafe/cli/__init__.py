"""The ``fieldsafe`` command line: a thin dispatcher over one module per subcommand.

Each ``fieldsafe.cli.<name>`` module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning the exit status). Subcommand modules import
their heavy dependencies inside ``func`` so that ``fieldsafe inspect`` starts fast.

Exit status convention for every subcommand: 0 success / clean, 1 findings of error severity or a
failed operation, 2 usage error (bad arguments, unreadable project settings).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fieldsafe import __version__

SUBCOMMANDS = ("inspect", "compile", "check", "devices", "fleet", "release", "emulator", "demo", "lsp")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="fieldsafe",
        description="Build Particle firmware for the Device OS your devices in the field actually run.",
    )
    parser.add_argument("--version", action="version", version=f"fieldsafe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"fieldsafe.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand still under construction
            if exc.name != f"fieldsafe.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("fieldsafe: interrupted", file=sys.stderr)
        return 130
