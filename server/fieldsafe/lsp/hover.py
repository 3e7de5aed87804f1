"""Hover and completion: release facts on the pin, API availability on Device OS tokens.

Facts come from :mod:`fieldsafe.versions`, :mod:`fieldsafe.platforms` and :mod:`fieldsafe.apidata`;
this module only finds what is under the cursor and renders it (Markdown when the client takes it).
Known devices are the ones this session already resolved plus the cloud module's cached device list;
a hover never waits for the network.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from fieldsafe import platforms
from fieldsafe.lsp import linting
from fieldsafe.lsp.documents import lines_of, offset_at, open_text, range_of_edit
from fieldsafe.lsp.pin import read_pin
from fieldsafe.lsp.projects import PIN_KEY, ProjectState
from fieldsafe.project import EditSpan, ProjectSettingsError, value_span
from fieldsafe.versions import DeviceOSVersion, Release, catalog

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::|->)[A-Za-z_][A-Za-z0-9_]*)*")
_PIN_LINE = re.compile(r'"particle\.firmwareVersion"\s*:\s*"([^"\n]*)')


# --------------------------------------------------------------------------------------------- pin value


def pin_span(text: str) -> EditSpan | None:
    """The pin's value token (quotes included); tolerant of a half-typed file via a line regex."""
    try:
        return value_span(text, PIN_KEY)
    except ProjectSettingsError:
        pass
    matches = list(_PIN_LINE.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    start, end = match.start(1) - 1, match.end(1) + (1 if text[match.end(1) : match.end(1) + 1] == '"' else 0)
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    end_col = col + (end - start)
    return EditSpan(line, col, line, end_col, start, end, text[start:end])


def known_devices(ls: FieldsafeServer, project: ProjectState) -> list[dict[str, Any]]:
    """Devices already known without a network call (resolved targets + the cached device list)."""
    seen: dict[str, dict[str, Any]] = {}
    for other in ls.registry.all():
        if other.target.device:
            seen[str(other.target.device.get("id") or other.target.device.get("name"))] = other.target.device
    try:
        hit = ls.devices.cloud(project.options.api_url).cached("devices")
    except Exception:
        hit = None
    if hit and isinstance(hit[0], list):
        for dev in hit[0]:
            if isinstance(dev, dict):
                seen.setdefault(str(dev.get("id") or dev.get("name")), dev)
    return list(seen.values())


def release_markdown(release: Release, devices: list[dict[str, Any]]) -> str:
    """What a release is: module version, LTS line, platforms, which known devices run it."""
    v = release.version
    kind = "LTS" if v.lts else ("prerelease" if v.is_prerelease else "feature line")
    names = sorted(p.name for p in (platforms.find(pid) for pid in release.platform_ids) if p is not None)
    running = [
        str(d.get("name") or d.get("id"))
        for d in devices
        if d.get("system_firmware_version") and DeviceOSVersion.try_parse(d["system_firmware_version"]) == v
    ]
    lines = [
        f"**Device OS {v}** ({kind}, {v.major}.x line)",
        "",
        f"- system module version: `{release.module_version}`",
        f"- platforms: {', '.join(names) or 'unknown'}" + (" (inferred)" if release.platforms_inferred else ""),
        f"- known devices running it: {', '.join(running) if running else 'none'}",
    ]
    if release.note:
        lines.append(f"- note: {release.note}")
    return "\n".join(lines)


def _markup(ls: FieldsafeServer, text: str) -> types.MarkupContent:
    if ls.markdown_hover():
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
    return types.MarkupContent(kind=types.MarkupKind.PlainText, value=text.replace("**", "").replace("`", ""))


def hover(ls: FieldsafeServer, params: types.HoverParams) -> types.Hover | None:
    """textDocument/hover dispatcher."""
    uri = params.text_document.uri
    project = ls.project_for(uri)
    if project is None:
        return None
    if ls.is_settings(uri):
        return _pin_hover(ls, project, uri, params.position)
    if linting.is_source(uri):
        return _api_hover(ls, project, uri, params.position)
    return None


def _pin_hover(ls: FieldsafeServer, project: ProjectState, uri: str, pos: types.Position) -> types.Hover | None:
    text = open_text(ls.workspace, uri)
    if text is None:
        return None
    span = pin_span(text)
    offset = offset_at(text, ls.workspace, pos)
    if span is None or not (span.start_offset <= offset <= span.end_offset):
        return _product_hover(ls, project, text, offset)
    value = span.new_text.strip('"')
    release = catalog().release(value)
    if release is None:
        body = f"**Device OS {value}** is not in fieldsafe's release table."
    else:
        body = release_markdown(release, known_devices(ls, project))
    floor = linting.code_floor(ls, project, _platform_id(ls, project))
    if floor is not None:
        body += "\n\n" + floor_markdown(floor, release)
    fleet_view = project.target.fleet
    if fleet_view is not None:
        body += "\n\n" + fleet_markdown(fleet_view, release)
    return types.Hover(contents=_markup(ls, body), range=range_of_edit(ls.workspace, text, span))


def floor_markdown(floor: Any, release: Release | None) -> str:
    """The code's own Device OS floor (``apilint.code_floor``) and what it means for this pin."""
    line = f"**Code floor** on {floor.describe()}"
    if release is not None and floor.breaks_at(release.version):
        line += f"\n\n- pinned Device OS {release.version}: **below the floor, the code does not compile**"
    return line


def _product_hover(ls: FieldsafeServer, project: ProjectState, text: str, offset: int) -> types.Hover | None:
    """On ``fieldsafe.targetProduct``: the fleet's histogram and floor (what the pin means, when pinned)."""
    try:
        span = value_span(text, "fieldsafe.targetProduct")
    except ProjectSettingsError:
        return None
    if span is None or not (span.start_offset <= offset <= span.end_offset):
        return None
    view = project.target
    if view.fleet is None:
        why = f": {view.fleet_error}" if view.fleet_error else " yet"
        body = f"**Fleet {span.new_text.strip(chr(34))}**: not listed{why}"
    else:
        release = catalog().release(view.pin) if view.pin else None
        body = fleet_markdown(view.fleet, release)
    return types.Hover(contents=_markup(ls, body), range=range_of_edit(ls.workspace, text, span))


FLEET_BAR_WIDTH = 20


def fleet_markdown(checked: Any, release: Release | None) -> str:
    """The fleet's Device OS histogram as a Markdown table with bars, and what ``release`` means for it."""
    from fieldsafe import fleet, fleetfindings

    platform_id = checked.platform_id
    impact = None
    if release is not None and platform_id is not None and checked.targeted.total:
        impact = fleet.evaluate(checked.targeted, release, platform_id, allow_healed=checked.ref.allow_healed)
    rows = fleet.histogram_rows(checked.targeted, platform_id or -1, impact)
    groups = f" (groups {', '.join(checked.ref.groups)})" if checked.ref.groups else ""
    age = checked.listing.age_seconds
    when = "listed now" if age is None else f"listed {_age(age)} ago"
    lines = [f"**Fleet {checked.describe()}**{groups} · {when}", ""]
    if not checked.listing.complete:
        lines += [f"**Incomplete listing**: {checked.listing.missing_text()}", ""]
    pin_col = f"Pin {release.version}" if impact is not None and release is not None else "Devices"
    lines += [f"| Device OS | devices | share | | {pin_col} |", "| --- | ---: | ---: | --- | --- |"]
    top = max((r.count for r in rows), default=1)
    for r in rows:
        name = r.release or "unknown"
        marks = " ".join(m for m, on in (("(floor)", r.is_floor), ("(pin)", r.is_pin)) if on)
        what = ", ".join(f"{fleet.CONSEQUENCE_LABELS[c]} {n:,}" for c, n in r.consequences) if impact else ""
        bar = fleet.text_bar(r.count / top, FLEET_BAR_WIDTH) or " "
        lines.append(f"| {name} {marks} | {r.count:,} | {r.share:.1%} | `{bar}` | {what} |")
    if impact is not None and release is not None:
        lines += ["", f"Pin {release.version}: {fleetfindings.impact_sentence(impact)}."]
        if impact.blocks_ci:
            lines.append("CI (`fieldsafe check`) fails: reached devices would go to Safe Mode.")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    from fieldsafe.compat import age_phrase

    return age_phrase(seconds)


def _api_hover(ls: FieldsafeServer, project: ProjectState, uri: str, pos: types.Position) -> types.Hover | None:
    from fieldsafe.apilint import availability

    text = open_text(ls.workspace, uri)
    if text is None:
        return None
    lines = lines_of(text)
    if pos.line >= len(lines):
        return None
    server_pos = ls.workspace.position_codec.position_from_client_units(lines, pos)
    line = lines[server_pos.line]
    for match in _TOKEN.finditer(line):
        if not (match.start() <= server_pos.character <= match.end()):
            continue
        for key in _candidates(match.group(0), server_pos.character - match.start()):
            avail = availability.effective(key, project.target.platform_id)  # what the lint checks
            if avail is None:
                continue
            start = ls.workspace.position_codec.position_to_client_units(
                lines, types.Position(server_pos.line, match.start())
            )
            end = ls.workspace.position_codec.position_to_client_units(
                lines, types.Position(server_pos.line, match.end())
            )
            return types.Hover(contents=_markup(ls, api_markdown(key, avail, project)), range=types.Range(start, end))
    return None


def _candidates(chain: str, cursor: int) -> list[str]:
    """Lint keys to try for a dotted chain, most specific first, up to the segment under the cursor."""
    parts = re.split(r"(\.|::|->)", chain)
    segs, seps = parts[0::2], parts[1::2]
    upto, pos = 0, 0
    for i, seg in enumerate(segs):
        pos += len(seg)
        upto = i
        if cursor <= pos:
            break
        pos += len(seps[i]) if i < len(seps) else 0
    out = []
    for start in range(0, upto + 1):
        text = segs[start]
        for j in range(start + 1, upto + 1):
            text += ("." if seps[j - 1] == "->" else seps[j - 1]) + segs[j]
        out.append(text)
    return out


def api_markdown(key: str, avail: Any, project: ProjectState) -> str:
    """Availability facts for one API and what that means for the project's pin."""
    lines = [
        f"**`{key}`**: Device OS API " + ("(baseline, all releases)" if avail.baseline else f"since {avail.since}")
    ]
    if avail.lines:
        lines.append("- per release line: " + ", ".join(f"{m}.x from {v}" for m, v in avail.lines))
    if avail.absent_in:
        lines.append("- absent in: " + ", ".join(str(v) for v in sorted(avail.absent_in)))
    if avail.removed_from is not None:
        lines.append(f"- removed from {avail.removed_from}")
    if avail.note:
        lines.append(f"- platforms: {avail.note}")
    pin = DeviceOSVersion.try_parse(project.target.pin) if project.target.pin else None
    if pin is not None:
        ok = avail.available_in(pin, project.target.platform_id) and avail.allowed_on(project.target.platform_id)
        lines.append(f"- pinned Device OS {pin}: {'available' if ok else '**not available**'}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- completion


def _platform_id(ls: FieldsafeServer, project: ProjectState) -> int | None:
    """The platform as the buffer says now (the last pin check may not have run yet)."""
    settings = read_pin(ls, project).settings
    if settings is not None and settings.target_platform:
        found = platforms.find(settings.target_platform)
        if found is not None:
            return found.id
    return project.target.platform_id


def complete(ls: FieldsafeServer, params: types.CompletionParams) -> types.CompletionList | None:
    """Release strings for the pinned value (project platform's releases, newest first, LTS marked)."""
    uri = params.text_document.uri
    if not ls.is_settings(uri):
        return None
    project = ls.project_for(uri)
    text = open_text(ls.workspace, uri)
    if project is None or text is None:
        return None
    span = pin_span(text)
    offset = offset_at(text, ls.workspace, params.position)
    if span is None or not (span.start_offset < offset <= span.end_offset) or not span.new_text.startswith('"'):
        return None
    inner = EditSpan(
        span.start_line,
        span.start_column + 1,
        span.end_line,
        span.end_column - (1 if span.new_text.endswith('"') and len(span.new_text) > 1 else 0),
        span.start_offset + 1,
        span.end_offset,
        "",
    )
    rng = range_of_edit(ls.workspace, text, inner)
    device_os = (project.target.device or {}).get("system_firmware_version")
    rows = list(reversed(catalog().releases(_platform_id(ls, project))))
    items = []
    for i, release in enumerate(rows):
        label = str(release.version)
        tags = ["LTS"] if release.version.lts else []
        if release.version.is_prerelease:
            tags.append("prerelease")
        if device_os and label == device_os:
            tags.append(f"runs on {project.target.device_name}")
        detail = f"module {release.module_version}" + (f" · {' · '.join(tags)}" if tags else "")
        items.append(
            types.CompletionItem(
                label=label,
                kind=types.CompletionItemKind.Value,
                detail=detail,
                sort_text=f"{i:05d}",
                filter_text=label,
                text_edit=types.TextEdit(range=rng, new_text=label),
            )
        )
    return types.CompletionList(is_incomplete=False, items=items)
