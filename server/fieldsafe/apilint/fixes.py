"""Fixes: the guard condition and retarget release for an API, and the guard quick-fix text edit."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import NamedTuple

from fieldsafe import apidata
from fieldsafe.apidata import Availability
from fieldsafe.apilint.extract import _match_paren, _prev_significant
from fieldsafe.apilint.preprocess import _Lines, blank_literals
from fieldsafe.findings import Fix
from fieldsafe.versions import DeviceOSVersion


def _fmt_version(v: DeviceOSVersion) -> str:
    return str(v)


def _hex_bound(v: DeviceOSVersion) -> str:
    return f"0x{(v.major << 24) | (v.minor << 16) | (v.patch << 8):08X}"


def _next_release_after(versions: Iterable[DeviceOSVersion]) -> DeviceOSVersion | None:
    from fieldsafe.versions import catalog

    top = max(versions)
    for rel in catalog().releases(include_prereleases=False):
        if rel.version.base > top:
            return rel.version.base
    return None


def guard_condition(a: Availability) -> tuple[str, str | None, DeviceOSVersion]:
    """The ``#if`` condition that is true exactly where ``a`` exists, on every release's preprocessor.

    Returns (condition, macro or None, release). ``SYSTEM_VERSION >= SYSTEM_VERSION_vXYZ`` alone is
    *not* safe: releases older than the macro do not define it, an undefined name is 0 in ``#if``, and
    the comparison is then true exactly where the API is missing. Hence ``defined(...) &&``; for APIs
    on several lines, hex bounds (``0xMMmmpp00`` sorts below every build of X.Y.Z in both schemes).
    """
    macro = apidata.guard_macro_for(a)
    if macro is not None and macro.version is not None:
        return f"defined({macro.name}) && SYSTEM_VERSION >= {macro.name}", macro.name, macro.version
    parts: list[str] = []
    if a.lines:
        ordered = sorted(a.lines)
        for i, (major, start) in enumerate(ordered):
            if i + 1 < len(ordered):
                parts.append(f"(SYSTEM_VERSION >= {_hex_bound(start)} && "
                             f"SYSTEM_VERSION < {_hex_bound(DeviceOSVersion(major + 1, 0, 0))})")  # fmt: skip
            else:
                parts.append(f"SYSTEM_VERSION >= {_hex_bound(start)}")
        return " || ".join(parts), None, a.earliest()
    if a.absent_in:
        gap_lo, after = min(a.absent_in), _next_release_after(a.absent_in)
        cond = f"(SYSTEM_VERSION >= {_hex_bound(a.since)} && SYSTEM_VERSION < {_hex_bound(gap_lo)})"
        if after is not None:
            cond += f" || SYSTEM_VERSION >= {_hex_bound(after)}"
        return cond, None, a.since
    return f"SYSTEM_VERSION >= {_hex_bound(a.since)}", None, a.since


def _suggest_release(a: Availability, target: DeviceOSVersion, platform_id: int | None) -> DeviceOSVersion | None:
    """Lowest final release above the target (on the platform, when known) that has the API."""
    from fieldsafe.versions import catalog

    for rel in catalog().releases(platform_id, include_prereleases=False):
        if rel.version.base > target.base and a.available_in(rel.version, platform_id):
            return rel.version
    return a.first_final


_FIX_CACHE: dict[tuple[object, ...], tuple[Fix, ...]] = {}


def _fixes(a: Availability, target: DeviceOSVersion, platform_id: int | None, reason: str) -> tuple[Fix, ...]:
    """Guard and retarget fixes; memoised per (API form, target, platform) since a file repeats APIs."""
    key = (a.api, a.overload, a.since, target, platform_id)
    hit = _FIX_CACHE.get(key)
    if hit is None:
        hit = _FIX_CACHE[key] = _compute_fixes(a, target, platform_id)
    return hit


def _compute_fixes(a: Availability, target: DeviceOSVersion, platform_id: int | None) -> tuple[Fix, ...]:
    cond, macro, release = guard_condition(a)
    fixes = [Fix("guard", f"Guard with #if {cond}",
                 {"release": str(release), "macro": macro, "condition": cond, "api": a.api})]  # fmt: skip
    retarget = _suggest_release(a, target, platform_id)
    if retarget is not None:
        fixes.append(Fix("retarget", f"Retarget to {retarget}", {"release": str(retarget)}))
    return tuple(fixes)


# --------------------------------------------------------------------------------------------------
# Guard quick-fix
# --------------------------------------------------------------------------------------------------


class GuardEdit(NamedTuple):
    """Replace 1-based lines ``start_line``..``end_line`` (inclusive, whole lines) with ``new_text``."""

    start_line: int
    end_line: int
    new_text: str


def guard_edit(text: str, line: int, condition: str | Fix, column: int = 1) -> GuardEdit:
    """Wrap the statement on ``line`` (a multi-line call, a declaration, or a whole ``if``/loop block)
    in ``#if condition`` / ``#endif``, keeping its indentation.

    ``condition`` is the guard text or the ``guard`` Fix of a finding (``params["condition"]``).
    An un-braced ``if (...)``/``for``/``while`` body is wrapped together with its header, so that
    the guard can never hand the header a different statement.
    """
    cond = condition.params["condition"] if isinstance(condition, Fix) else condition
    masked = blank_literals(text)
    lines = _Lines(masked)
    line_start = lines.offset(line)
    first = (
        line_start + len(masked[line_start:].split("\n", 1)[0]) - len(masked[line_start:].split("\n", 1)[0].lstrip())
    )
    pos = max(first, line_start + column - 1)
    start = _statement_start(masked, pos)
    end = _statement_end(masked, start)
    s_line, _ = lines.pos(start)
    e_line, _ = lines.pos(max(start, end - 1))
    all_lines = text.split("\n")
    body = all_lines[s_line - 1 : e_line]
    indent = re.match(r"[ \t]*", body[0]).group(0)  # type: ignore[union-attr]
    new_text = "\n".join([f"{indent}#if {cond}", *body, f"{indent}#endif"]) + ("\n" if e_line < len(all_lines) else "")
    return GuardEdit(s_line, e_line, new_text)


def apply_guard_edit(text: str, edit: GuardEdit) -> str:
    """``text`` with ``edit`` applied (what the editor will do with the TextEdit; used by tests and the CLI)."""
    all_lines = text.split("\n")
    head = all_lines[: edit.start_line - 1]
    tail = all_lines[edit.end_line :]
    new = edit.new_text[:-1] if edit.new_text.endswith("\n") else edit.new_text
    return "\n".join([*head, *new.split("\n"), *tail])


def _statement_start(masked: str, pos: int) -> int:
    """Start of the statement containing ``pos``: after the previous ``;``/``{``/``}``/directive line."""
    i = pos - 1
    depth = 0
    while i >= 0:
        c = masked[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                pass  # inside an argument list: keep walking out
            else:
                depth -= 1
        elif (depth == 0 and c in ";{}") or (c == "\n" and depth == 0 and re.match(r"[ \t]*#", masked[i + 1 :])):
            break
        i -= 1
    start = i + 1
    while start < len(masked) and masked[start] in " \t\r\n":
        start += 1
    if start < len(masked) and masked[start] == "#":
        start = masked.index("\n", start) + 1 if "\n" in masked[start:] else start
        while start < len(masked) and masked[start] in " \t\r\n":
            start += 1
    return _control_header(masked, start)


def _control_header(masked: str, start: int) -> int:
    """Move ``start`` back over ``if (...)``/``while (...)``/``for (...)`` headers of an un-braced body."""
    c, i = _prev_significant(masked, start)
    if c != ")":
        return start
    depth = 0
    j = i
    while j >= 0:
        if masked[j] == ")":
            depth += 1
        elif masked[j] == "(":
            depth -= 1
            if depth == 0:
                break
        j -= 1
    m = re.search(r"\b(if|while|for)\s*$", masked[max(0, j - 20) : j])
    if not m:
        return start
    return _control_header(masked, max(0, j - 20) + m.start(1))


def _statement_end(masked: str, start: int) -> int:
    """End (exclusive) of the statement or block beginning at ``start``, including ``else`` branches."""
    i = start
    n = len(masked)
    while i < n:
        c = masked[i]
        if c in "([":
            i = _match_paren(masked, i) + 1
            continue
        if c == ";":
            end = i + 1
            return _with_else(masked, end)
        if c == "{":
            close = _match_brace(masked, i)
            end = close + 1
            m = re.match(r"\s*;", masked[end:])
            if m:
                end += m.end()
            return _with_else(masked, end)
        i += 1
    return n


def _with_else(masked: str, end: int) -> int:
    m = re.match(r"\s*else\b", masked[end:])
    if m:
        return _statement_end(masked, end + m.end())
    return end


def _match_brace(masked: str, open_index: int) -> int:
    depth = 0
    for i in range(open_index, len(masked)):
        if masked[i] == "{":
            depth += 1
        elif masked[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(masked) - 1


@lru_cache(maxsize=4096)
def platform_guard(api: str, target: DeviceOSVersion) -> str | None:
    """A platform macro that is true exactly on the platforms whose ``target`` build declares ``api``
    (``Wiring_BLE``, ``HAL_PLATFORM_PPP_SERVER``, ``Wiring_Cellular``...), for an FS203 guard fix.

    Searched in the platform-macro table at the target (6.2.0 for later releases): ``Wiring_*`` first,
    then ``HAL_PLATFORM_*``; None when no single macro separates them.
    """
    from fieldsafe import platforms, symindex

    presence = symindex.key_presence(api)
    release = min(target.base, symindex.last_release())
    if presence is None or symindex.release_index(release) is None:
        return None
    have = set(presence.platforms_at(release))
    pids = {}
    for name in symindex._index().platforms:
        p = platforms.find(name)
        if p is not None and symindex.covers(release, p.id):
            pids[name] = p.id
    if not have or have == set(pids):
        return None
    from fieldsafe.apilint.preprocess import evaluate_condition

    for cond in _guard_conditions():
        true_on = set()
        for n, pid in pids.items():
            try:
                value = evaluate_condition(cond, release, pid)
            except Exception:
                value = None
            if value is None:
                break
            if value:
                true_on.add(n)
        else:
            if true_on == have:
                return cond
    return None


@cache
def _guard_conditions() -> tuple[str, ...]:
    """Candidate guards, most readable first: ``Wiring_*``, the documented full-Wi-Fi test, ``HAL_PLATFORM_*``."""
    from fieldsafe import symindex

    names = sorted(symindex._macros())
    return tuple([n for n in names if n.startswith("Wiring_")] + ["HAL_PLATFORM_WIFI && !HAL_PLATFORM_WIFI_SCAN_ONLY"]
                 + [n for n in names if n.startswith("HAL_PLATFORM_")])  # fmt: skip
