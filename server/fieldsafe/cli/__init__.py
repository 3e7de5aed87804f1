"""The ``fieldsafe`` command line: a thin dispatcher over one module per subcommand.

Each ``fieldsafe.cli.<name>`` module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning the exit status). Subcommand modules import
their heavy dependencies inside ``func`` so that ``fieldsafe inspect`` starts fast.

Exit status convention for every subcommand: 0 success / clean, 1 findings of error severity or a
failed operation, 2 usage error (bad arguments, unreadable project settings).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from fieldsafe import __version__

SUBCOMMANDS = (
    "inspect",
    "compile",
    "check",
    "devices",
    "fleet",
    "release",
    "flash",
    "updateos",
    "emulator",
    "demo",
    "lsp",
)


def _only(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The one subcommand module ``argv`` runs, when it names one (``update-os`` -> ``updateos``), else all.

    Why: each subcommand module imports what its parser needs; ``fieldsafe fleet`` from the cache should not
    pay for ``inspect``'s module parser or ``compile``'s cloud client (whole-process time is a goal).
    """
    words = [a for a in (argv or ()) if not a.startswith("-")]
    if words and (argv or ())[0] == words[0]:
        name = words[0].replace("-", "")
        if name in SUBCOMMANDS:
            return (name,)
    return SUBCOMMANDS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered (only ``argv``'s, when it names one)."""
    parser = argparse.ArgumentParser(
        prog="fieldsafe",
        description="Build Particle firmware for the Device OS your devices in the field actually run.",
    )
    parser.add_argument("--version", action="version", version=f"fieldsafe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _only(argv):
        try:
            module = importlib.import_module(f"fieldsafe.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand still under construction
            if exc.name != f"fieldsafe.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


class PipeSafeStdout:
    """stdout that goes quiet when the reader goes away (``fieldsafe devices | head -1``).

    Why: Python raises BrokenPipeError on the write (or the flush at exit) after the reader closed the
    pipe, which printed a traceback and turned a successful compile into exit 1. The command's work is
    done either way, so further output is dropped and the command's own exit status stands.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._go_quiet()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._go_quiet()

    def _go_quiet(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError):  # the interpreter's exit flush then writes nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    if args.command == "lsp":  # stdout is the protocol channel: the server owns it
        return int(args.func(args) or 0)
    real = sys.stdout
    sys.stdout = safe = PipeSafeStdout(real)  # type: ignore[assignment]
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("fieldsafe: interrupted", file=sys.stderr)
        return 130
    finally:
        safe.flush()
        sys.stdout = real
