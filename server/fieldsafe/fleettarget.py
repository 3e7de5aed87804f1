"""The fleet target of a project: which product (and groups) a build is for, and the project's update policy.

Settings in ``.vscode/settings.json``, next to Workbench's ``particle.*`` keys:

* ``fieldsafe.targetProduct``: product id or slug (string, or a number for an id);
* ``fieldsafe.targetGroups``: optional array of group names (a release to those groups);
* ``fieldsafe.allowHealedUpdates``: ``true`` when the project accepts that a release sends devices
  through Safe Mode and the healer (CI then warns instead of failing; stuck devices always fail).

CLI: ``--target product:SLUG`` with ``--groups a,b`` (and ``--allow-healed-updates``). Pure: reads text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldsafe.findings import Span

PRODUCT_KEY = "fieldsafe.targetProduct"
GROUPS_KEY = "fieldsafe.targetGroups"
ALLOW_HEALED_KEY = "fieldsafe.allowHealedUpdates"
PRODUCT_PREFIX = "product:"
FLEET_KEYS = (PRODUCT_KEY, GROUPS_KEY, ALLOW_HEALED_KEY)


class FleetTargetError(ValueError):
    """A fleet setting or flag cannot be used; the message names the file (line) or flag and the fix."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class FleetTarget:
    """A product (and optional groups) to check builds against, and where each setting is written."""

    product: str
    groups: tuple[str, ...] = ()
    allow_healed: bool = False
    source: str = "settings"  # "settings" | "flag"
    product_span: Span | None = None
    groups_span: Span | None = None
    settings_file: str | None = None  # project-relative path of the settings file ("".vscode/settings.json")


def parse_groups(text: str | None) -> tuple[str, ...]:
    """``a,b`` -> ("a", "b"): blanks dropped, order kept, duplicates removed."""
    seen: list[str] = []
    for part in (text or "").split(","):
        name = part.strip()
        if name and name not in seen:
            seen.append(name)
    return tuple(seen)


def from_flags(target: str | None, groups: str | None, allow_healed: bool = False) -> FleetTarget | None:
    """``--target product:SLUG [--groups a,b]`` as a fleet target (None when --target is not a product)."""
    if target is None or not target.startswith(PRODUCT_PREFIX):
        if groups:
            raise FleetTargetError("--groups needs a product target: pass --target product:SLUG --groups a,b")
        return None
    product = target[len(PRODUCT_PREFIX) :].strip()
    if not product:
        raise FleetTargetError(
            f"--target {PRODUCT_PREFIX} needs a product id or slug, e.g. {PRODUCT_PREFIX}trackers "
            "(`fieldsafe fleet --list` shows your products)"
        )
    return FleetTarget(product=product, groups=parse_groups(groups), allow_healed=allow_healed, source="flag")


def _span(text: str, key: str, rel: str) -> Span | None:
    from fieldsafe.project import value_span

    found = value_span(text, key)
    if found is None:
        return None
    return Span(rel, found.start_line, found.start_column, found.end_line, found.end_column)


def from_settings_text(text: str, path: Path, rel: str = ".vscode/settings.json") -> FleetTarget | None:
    """The fleet keys of settings.json text (JSONC); None when ``fieldsafe.targetProduct`` is not set.

    Raises :class:`FleetTargetError` naming ``file:line:col`` for values of the wrong type.
    """
    from fieldsafe.project import ProjectSettingsError, parse_jsonc

    try:
        data = parse_jsonc(text, path).value
    except ProjectSettingsError as exc:
        raise FleetTargetError(str(exc)) from None
    if not isinstance(data, dict):
        return None
    product = data.get(PRODUCT_KEY)
    if product is None:
        if data.get(GROUPS_KEY):
            raise _wrong(text, path, rel, GROUPS_KEY, "needs fieldsafe.targetProduct too (the groups' product)")
        return None
    if isinstance(product, int) and not isinstance(product, bool):
        product = str(product)
    if not isinstance(product, str) or not product.strip():
        raise _wrong(text, path, rel, PRODUCT_KEY, 'must be a product id or slug, e.g. "trackers" or 12345')
    groups_raw: Any = data.get(GROUPS_KEY, [])
    if groups_raw is None:
        groups_raw = []
    if not isinstance(groups_raw, list) or not all(isinstance(g, str) and g.strip() for g in groups_raw):
        raise _wrong(text, path, rel, GROUPS_KEY, 'must be an array of group names, e.g. ["beta", "europe"]')
    allow = data.get(ALLOW_HEALED_KEY, False)
    if not isinstance(allow, bool):
        raise _wrong(text, path, rel, ALLOW_HEALED_KEY, "must be true or false")
    return FleetTarget(
        product=product.strip(),
        groups=parse_groups(",".join(groups_raw)),
        allow_healed=allow,
        product_span=_span(text, PRODUCT_KEY, rel),
        groups_span=_span(text, GROUPS_KEY, rel),
        settings_file=rel,
    )


def _wrong(text: str, path: Path, rel: str, key: str, why: str) -> FleetTargetError:
    span = _span(text, key, rel)
    where = f"{path}:{span.line}:{span.column}" if span else str(path)
    return FleetTargetError(f'{where}: "{key}" {why}', span.line if span else None, span.column if span else None)


def read(root: Path) -> FleetTarget | None:
    """The project's fleet target from ``<root>/.vscode/settings.json`` (None when not set or no file)."""
    path = Path(root) / ".vscode" / "settings.json"
    if not path.is_file():
        return None
    try:
        from fieldsafe.safeio import read_regular

        text = read_regular(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetTargetError(f"{path}: cannot be read ({exc}); save it as UTF-8 JSON") from None
    return from_settings_text(text, path)


def groups_json(groups: tuple[str, ...] | list[str]) -> str:
    """The JSON array text a settings edit writes for ``fieldsafe.targetGroups``."""
    return json.dumps(list(groups))
