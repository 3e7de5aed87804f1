"""API availability as you type: ``apilint`` findings on open source files (no compile needed).

Debounced per document by the server (``lintDebounceMs``, ~150 ms); re-run for every open file of a
project when its pin changes. The lint's findings (messages, guard and retarget fixes) come from
:mod:`fieldsafe.apilint`; this module only places them in the document.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fieldsafe.lsp.diagnostics import Located
from fieldsafe.lsp.documents import range_of_span
from fieldsafe.safeio import MAX_SOURCE_BYTES, read_text_regular
from fieldsafe.versions import DeviceOSVersion

if TYPE_CHECKING:
    from fieldsafe.lsp.projects import ProjectState
    from fieldsafe.lsp.server import FieldsafeServer

log = logging.getLogger(__name__)

SOURCE_SUFFIXES = (".ino", ".cpp", ".cc", ".cxx", ".c", ".h", ".hpp", ".hh")


def is_source(uri: str) -> bool:
    """Whether ``uri`` is a C/C++/Wiring file the lint understands."""
    return uri.lower().endswith(SOURCE_SUFFIXES)


def _lint(
    project: ProjectState,
    rel: str,
    source: str,
    target: DeviceOSVersion,
    platform_id: int | None,
    buffers: dict[str, str],
) -> list:
    """Runs in a worker thread: the lint, with names the project's other files define (as ``fieldsafe check``)."""
    from fieldsafe import apilint

    names = apilint.project_defined_names(_project_texts(project, buffers))
    return apilint.lint_source(source, rel, target, platform_id, project_names=names)


def code_floor(ls: FieldsafeServer, project: ProjectState, platform_id: int | None = None) -> Any:
    """The project's code floor on its platform (``apilint.code_floor`` over the sources as the editor has
    them: open buffers as typed, the rest from disk), or None when no platform is known. Memoised by the
    texts in the engine, so hovers and code actions ask freely; the first call lints a few releases."""
    from fieldsafe import apilint

    pid = platform_id if platform_id is not None else project.target.platform_id
    if pid is None:
        return None
    buffers = {r: d.source for d in list(ls.workspace.text_documents.values()) if (r := project.rel(d.uri))}
    rels = apilint.source_files(project.root)
    texts = dict(zip(rels, _project_texts(project, buffers, rels), strict=False))
    try:
        return apilint.floor.cached_floor(tuple(sorted(texts.items())), pid)
    except (KeyError, ValueError) as exc:  # an unknown platform id: no floor rather than a failed hover
        log.info("no code floor: %s", exc)
        return None


def _project_texts(project: ProjectState, buffers: dict[str, str], rels: list[str] | None = None) -> list[str]:
    """Every source the compile would upload: open buffers as typed, other files from disk (cached by mtime).

    Why: a user shim such as ``int analogWriteResolution(...)`` in ``src/compat.cpp`` shadows the Device OS
    name in every file, so the editor must not flag what ``fieldsafe check`` accepts.
    """
    from fieldsafe import apilint

    texts = []
    for rel in apilint.source_files(project.root) if rels is None else rels:
        if rel in buffers:
            texts.append(buffers[rel])
            continue
        path = project.root / rel
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            texts.append("")  # keep texts aligned with rels (the caller may zip them)
            continue
        cached = project.disk_texts.get(rel)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, read_text_regular(path, MAX_SOURCE_BYTES))
            except OSError:
                continue
            project.disk_texts[rel] = cached
        texts.append(cached[1])
    return texts


async def lint_document(ls: FieldsafeServer, uri: str) -> None:
    """Lint one open document against its project's pin and publish the ``api`` layer for it."""

    project = ls.project_for(uri)
    doc = ls.workspace.text_documents.get(uri)
    if project is None or doc is None:
        return
    layer = project.layer("api")
    view = project.target
    target = DeviceOSVersion.try_parse(view.pin) if view.pin else None
    if target is None:
        ls.store.set_uri(layer, uri, [])
        return
    rel = project.rel(uri) or uri
    version, source = doc.version, doc.source
    buffers = {r: d.source for d in list(ls.workspace.text_documents.values()) if (r := project.rel(d.uri))}
    buffers[rel] = source
    findings = await asyncio.to_thread(_lint, project, rel, source, target, view.platform_id, buffers)
    # the document changed while we linted in the thread: the newer (debounced) lint will publish
    current = ls.workspace.text_documents.get(uri)
    if current is None or current.version != version or current.source != source:
        return
    located = []
    for finding in findings:
        if finding.span is None:
            continue
        located.append(Located(finding, uri, range_of_span(ls.workspace, uri, finding.span)))
    ls.store.set_uri(layer, uri, ls._items(project, located).get(uri, []))
