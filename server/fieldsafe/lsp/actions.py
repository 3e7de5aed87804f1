"""Code actions: turn a finding's :class:`~fieldsafe.findings.Fix` objects into LSP quick-fixes.

* ``retarget`` / ``set-platform``: a WorkspaceEdit that changes only that JSON value in
  ``.vscode/settings.json`` (``project.edit_setting_text`` keeps comments and formatting), plus a
  ``fieldsafe.server.compile`` command so a recompile follows once the edit is applied. For API
  findings, the title says when the target device would then need a Device OS update and roughly how
  much goes over the air (``compat`` decides that, not this module).
* ``guard``: the ``#if SYSTEM_VERSION >= ...`` edit from ``apilint.guard_edit``.

Finding lookup: ``Diagnostic.data`` when the client sends it back; otherwise the server-side cache
keyed by URI + range + code; on a cache miss the checks are re-run once (Neovim <= 0.9 and Emacs
drop ``data``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from fieldsafe import compat
from fieldsafe.findings import Finding, Fix, Severity, Span
from fieldsafe.lsp import linting
from fieldsafe.lsp.diagnostics import SOURCE
from fieldsafe.lsp.documents import current_text, lines_of, range_of_edit
from fieldsafe.lsp.projects import PIN_KEY, PLATFORM_KEY, ProjectState
from fieldsafe.project import ProjectSettingsError, edit_setting_text

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

log = logging.getLogger(__name__)

COMPILE_COMMAND = "fieldsafe.server.compile"
UPDATE_OS_COMMAND = "fieldsafe.server.updateOs"  # lsp/features/flash.py (the planned Device OS update)


def finding_from_data(data: Any) -> Finding | None:
    """Rebuild the finding carried in ``Diagnostic.data`` (only what code actions need)."""
    if not isinstance(data, dict) or not isinstance(data.get("finding"), dict):
        return None
    raw = data["finding"]
    try:
        span = raw.get("span")
        return Finding(
            code=str(raw["code"]),
            severity=Severity[str(raw.get("severity", "error")).upper()],
            message=str(raw.get("message", "")),
            span=Span(span["file"], span["line"], span["column"], span.get("end_line"), span.get("end_column"))
            if isinstance(span, dict)
            else None,
            facts=dict(raw.get("facts") or {}),
            fixes=tuple(Fix(f["kind"], f["title"], dict(f.get("params") or {})) for f in raw.get("fixes") or []),
        )
    except (KeyError, TypeError, ValueError):
        return None


async def findings_for(ls: FieldsafeServer, uri: str, diagnostic: types.Diagnostic) -> list[Finding]:
    """The findings behind one diagnostic; see the module docstring for the lookup order."""
    from_data = finding_from_data(diagnostic.data)
    if from_data is not None:
        return [from_data]
    code = None if diagnostic.code is None else str(diagnostic.code)
    hits = ls.store.lookup(uri, diagnostic.range, code)
    if hits:
        return hits
    project = ls.project_for(uri)
    if project is None:
        return []
    if ls.is_settings(uri):
        await ls.refresh_pin(project)
    elif linting.is_source(uri) and uri in ls.workspace.text_documents:
        await linting.lint_document(ls, uri)
    return ls.store.lookup(uri, diagnostic.range, code)


async def code_actions(ls: FieldsafeServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    """All quick-fixes for the fieldsafe diagnostics in the request's context (or range)."""
    uri = params.text_document.uri
    project = ls.project_for(uri)
    if project is None:
        return None
    pairs: list[tuple[types.Diagnostic, Finding]] = []
    for diag in params.context.diagnostics:
        if diag.source != SOURCE:
            continue
        pairs.extend((diag, f) for f in await findings_for(ls, uri, diag))
    if not params.context.diagnostics:
        pairs = ls.store.findings_in(uri, params.range)
    out: list[types.CodeAction] = []
    seen: set[tuple[str, str]] = set()
    for diag, finding in pairs:
        for fix in finding.fixes:
            action = build_action(ls, project, uri, diag, finding, fix)
            if action is not None and (action.title, str(diag.code)) not in seen:
                seen.add((action.title, str(diag.code)))
                out.append(action)
            if (
                fix.kind == "retarget"
                and fix.params.get("release")
                and _floor_note(ls, project, str(fix.params["release"]))[0]
            ):
                both = guard_and_retarget_action(ls, project, diag, str(fix.params["release"]))
                if both is not None and (both.title, str(diag.code)) not in seen:
                    seen.add((both.title, str(diag.code)))
                    out.append(both)
    if out:
        out[0].is_preferred = True
    return out or None


def build_action(
    ls: FieldsafeServer, project: ProjectState, uri: str, diag: types.Diagnostic, finding: Finding, fix: Fix
) -> types.CodeAction | None:
    """One CodeAction for one Fix, or None for fix kinds an editor cannot apply."""
    if fix.kind == "retarget" and fix.params.get("release"):
        release = str(fix.params["release"])
        note, _ = _floor_note(ls, project, release)
        title = retarget_title(project, finding, fix, release, note)
        return _settings_action(ls, project, diag, title, PIN_KEY, release)
    if fix.kind == "set-platform" and fix.params.get("platform"):
        return _settings_action(ls, project, diag, fix.title, PLATFORM_KEY, str(fix.params["platform"]))
    if fix.kind == "guard":
        return _guard_action(ls, uri, diag, finding, fix)
    if fix.kind in ("update-device", "update-os") and fix.params.get("release"):
        return _update_action(project, diag, fix)
    return None


def _update_action(project: ProjectState, diag: types.Diagnostic, fix: Fix) -> types.CodeAction:
    """FS101's "Update the device first": the planned Device OS update, confirmed by the server first."""
    argument = {"projectUri": project.uri, "release": str(fix.params["release"]), "confirm": "ask"}
    if fix.params.get("device"):
        argument["device"] = str(fix.params["device"])
    return types.CodeAction(
        title=fix.title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diag],
        command=types.Command(title=fix.title, command=UPDATE_OS_COMMAND, arguments=[argument]),
    )


def retarget_title(project: ProjectState, finding: Finding, fix: Fix, release: str, floor_note: str = "") -> str:
    """The fix's title; for API findings, say whether the target device must then be updated (and how much);
    for any retarget below the code's floor, say which use then breaks (``floor_note``)."""
    if not finding.code.startswith("FS2"):
        return fix.title + floor_note
    view = project.target
    if view.device is None or view.platform_id is None:
        return fix.title + floor_note
    device = compat.device_state_from_cloud(view.device, view.device_age, view.device_name or "device")
    return compat.retarget_title(release, view.platform_id, device) + floor_note


def _floor_note(ls: FieldsafeServer, project: ProjectState, release: str) -> tuple[str, Any]:
    """(" — `X` at f:l needs R" when ``release`` is below the code's floor, else "", the floor)."""
    from fieldsafe.lsp import linting

    try:
        floor = linting.code_floor(ls, project)
    except OSError as exc:
        log.info("no code floor: %s", exc)
        return "", None
    if floor is None:
        return "", None
    return floor.retarget_note(release), floor


def guard_and_retarget_action(
    ls: FieldsafeServer, project: ProjectState, diag: types.Diagnostic, release: str
) -> types.CodeAction | None:
    """Retarget below the code's floor AND wrap every use that would break in its ``#if`` guard, as one edit.

    Offered only when each breaking use has a guard fix and the guards do not overlap (two uses in one
    statement share a guard: one edit per statement)."""
    from fieldsafe import apilint
    from fieldsafe.lsp import linting

    pid = project.target.platform_id
    if pid is None:
        return None
    buffers = {r: d.source for d in list(ls.workspace.text_documents.values()) if (r := project.rel(d.uri))}
    rels = apilint.source_files(project.root)
    texts = dict(zip(rels, linting._project_texts(project, buffers, rels), strict=False))
    breaking = apilint.guard_uses(texts, pid, release)
    if not breaking:
        return None
    by_file: dict[str, list[apilint.GuardEdit]] = {}
    for f in breaking:
        fix = next((x for x in f.fixes if x.kind == "guard"), None)
        if fix is None or f.span is None or f.span.file not in texts:
            return None
        try:
            edit = apilint.guard_edit(texts[f.span.file], f.span.line, fix, f.span.column)
        except (ValueError, LookupError, IndexError):
            return None
        edits = by_file.setdefault(f.span.file, [])
        if any(e == edit for e in edits):
            continue
        if any(not (edit.end_line < e.start_line or edit.start_line > e.end_line) for e in edits):
            return None  # overlapping statements: a combined guard is not a simple edit
        edits.append(edit)
    settings = settings_edit(ls, project, PIN_KEY, release)
    if settings is None or settings.changes is None:
        return None
    changes = dict(settings.changes)
    for rel, edits in by_file.items():
        uri = (project.root / rel).as_uri()
        lines = texts[rel].split("\n")
        changes[uri] = [
            types.TextEdit(
                range=types.Range(types.Position(e.start_line - 1, 0),
                                  types.Position(e.end_line, 0) if e.end_line < len(lines)
                                  else types.Position(e.end_line - 1, len(lines[e.end_line - 1]))),
                new_text=e.new_text,
            )
            for e in edits
        ]  # fmt: skip
    n = len(breaking)
    title = f"Guard {n} use{'s that need' if n != 1 else ' that needs'} a newer release and retarget to {release}"
    return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                            edit=types.WorkspaceEdit(changes=changes))  # fmt: skip


def _settings_action(
    ls: FieldsafeServer, project: ProjectState, diag: types.Diagnostic, title: str, key: str, value: str
) -> types.CodeAction | None:
    edit = settings_edit(ls, project, key, value)
    if edit is None:
        return None
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diag],
        edit=edit,
        command=types.Command(
            title="Recompile", command=COMPILE_COMMAND, arguments=[{"projectUri": project.uri, "reason": "retarget"}]
        ),
    )


def settings_edit(ls: FieldsafeServer, project: ProjectState, key: str, value: str) -> types.WorkspaceEdit | None:
    """A minimal edit of one setting in the project's settings.json (buffer text if open)."""
    uri = project.settings_uri
    text = current_text(ls.workspace, uri) or ""
    try:
        _, span = edit_setting_text(text, key, value)
    except ProjectSettingsError as exc:
        log.info("cannot edit %s: %s", uri, exc)
        return None
    rng = range_of_edit(ls.workspace, text, span)
    return types.WorkspaceEdit(changes={uri: [types.TextEdit(range=rng, new_text=span.new_text)]})


def _guard_action(
    ls: FieldsafeServer, uri: str, diag: types.Diagnostic, finding: Finding, fix: Fix
) -> types.CodeAction | None:
    """``#if SYSTEM_VERSION >= ...`` around the statement, as whole-line TextEdit from ``apilint.guard_edit``."""
    from fieldsafe import apilint

    text = current_text(ls.workspace, uri)
    if text is None or finding.span is None or not fix.params.get("condition"):
        return None
    try:
        edit = apilint.guard_edit(text, finding.span.line, fix, finding.span.column)
    except (ValueError, LookupError, IndexError) as exc:
        log.info("no guard edit for %s: %s", finding.code, exc)
        return None
    lines = text.split("\n")
    start = types.Position(edit.start_line - 1, 0)
    if edit.end_line < len(lines):
        end = types.Position(edit.end_line, 0)
    else:
        last = lines[edit.end_line - 1]
        end = ls.workspace.position_codec.position_to_client_units(
            lines_of(text), types.Position(edit.end_line - 1, len(last.rstrip("\r")))
        )
    return types.CodeAction(
        title=fix.title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diag],
        edit=types.WorkspaceEdit(
            changes={uri: [types.TextEdit(range=types.Range(start, end), new_text=edit.new_text)]}
        ),
    )
