"""Access to the bundled fact tables (package data), read once and cached.

Why a helper: every domain module reads TSV files the same way, and the package may be installed
as a wheel, so paths must come from ``importlib.resources`` rather than ``__file__`` guesses.
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from importlib import resources
from typing import Any


def read_text(name: str) -> str:
    """Return the text of a bundled data file, e.g. ``"system-versions.tsv"`` or ``"device-os-data/api-since.tsv"``."""
    ref = resources.files("fieldsafe").joinpath("data").joinpath(*name.split("/"))
    return ref.read_text(encoding="utf-8")


@cache
def read_tsv(name: str) -> tuple[dict[str, str], ...]:
    """Rows of a bundled TSV file as dicts keyed by its header line (cached; treat as read-only)."""
    reader = csv.DictReader(io.StringIO(read_text(name)), delimiter="\t", quoting=csv.QUOTE_NONE)
    return tuple({k: (v or "") for k, v in row.items()} for row in reader)


@cache
def read_json(name: str) -> Any:
    """A bundled JSON file, parsed once (cached; treat as read-only)."""
    return json.loads(read_text(name))
