"""``fieldsafe inspect FILE... [--json]``: what a module binary is and which Device OS it needs.

Why not ``particle binary inspect``: it prints module version numbers (``depends on a system module
number 1 at version 6305``) that a person must translate into a Device OS release by hand, stops at
the first bad file, takes about half a second per call and has no machine-readable output. This
command says the same facts in Device OS terms, handles every file independently and can print JSON.

Wiring only: the report (JSON shape and text) is computed by ``fieldsafe.inspection``, which the
language server's ``inspectBinary`` command uses too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``inspect`` subcommand to the top-level parser."""
    parser = subparsers.add_parser(
        "inspect",
        help="show what Particle module binaries are and which Device OS they need",
        description=(
            "Parse Particle module binaries (.bin): platform, module, version, UUID, product, and each "
            "dependency in Device OS terms; verify CRC-32 and SHA-256. Exit status: 0 all files valid, "
            "1 any file unreadable, unparseable or failing its CRC, 2 usage error."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="module binary files to inspect")
    parser.add_argument("--json", action="store_true", help="print one JSON array, one object per file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Inspect every file (one bad file does not stop the rest); 0 when all are valid, else 1."""
    from fieldsafe.inspection import format_report, inspect_file  # not at parser build: other commands skip it

    reports = [inspect_file(path) for path in args.files]
    if args.json:
        import json

        sys.stdout.write(json.dumps(reports, indent=2) + "\n")
    else:
        sys.stdout.write("\n\n".join(format_report(r) for r in reports) + "\n")
    return 0 if all(r["ok"] for r in reports) else 1
