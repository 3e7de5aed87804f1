"""Text access for the wiring: open buffers first, the disk otherwise, and spans -> LSP ranges.

Why: the user edits the pin in ``settings.json`` and expects diagnostics to follow the buffer, not
the file on disk; and compiler diagnostics must land on files that were never opened, whose lines we
read from disk so the position codec can convert columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types
from pygls.workspace import Workspace
from pygls.workspace.position_codec import PositionCodec

from fieldsafe.findings import Span
from fieldsafe.lsp.diagnostics import span_to_range
from fieldsafe.lsp.projects import path_of
from fieldsafe.project import EditSpan
from fieldsafe.safeio import MAX_SOURCE_BYTES, read_text_regular


def open_text(workspace: Workspace, uri: str) -> str | None:
    """The buffer text of ``uri`` when the editor has it open, else None."""
    doc = workspace.text_documents.get(uri)
    return None if doc is None else doc.source


def current_text(workspace: Workspace, uri: str) -> str | None:
    """Buffer text if open, else the file's text on disk (None when unreadable)."""
    text = open_text(workspace, uri)
    if text is not None:
        return text
    path = path_of(uri)
    if path is None:
        return None
    try:
        return read_text_regular(path, MAX_SOURCE_BYTES)
    except OSError:
        return None


def lines_of(text: str | None) -> list[str]:
    """Lines with their endings (the shape pygls' position codec expects)."""
    return [] if text is None else text.splitlines(keepends=True)


def range_of_span(workspace: Workspace, uri: str, span: Span) -> types.Range:
    """A 1-based finding span in ``uri`` as a client-unit range."""
    return span_to_range(span, lines_of(current_text(workspace, uri)), workspace.position_codec)


def range_of_edit(workspace: Workspace, text: str, edit: EditSpan) -> types.Range:
    """An :class:`~fieldsafe.project.EditSpan` (1-based, code points) as a client-unit range."""
    lines = lines_of(text)
    if not lines:
        lines = [""]
    codec = workspace.position_codec
    start = _position(lines, edit.start_line, edit.start_column, codec)
    end = _position(lines, edit.end_line, edit.end_column, codec)
    return types.Range(start, end)


def _position(lines: Sequence[str], line: int, column: int, codec: PositionCodec) -> types.Position:
    index = line - 1
    if index >= len(lines):  # the end of a text that ends with a newline
        return types.Position(len(lines), 0)
    return codec.position_to_client_units(lines, types.Position(index, column - 1))


def offset_at(text: str, workspace: Workspace, position: types.Position) -> int:
    """Character offset in ``text`` of a client position (for hover/completion inside JSON)."""
    lines = lines_of(text)
    if not lines:
        return 0
    server_pos = workspace.position_codec.position_from_client_units(lines, position)
    return sum(len(x) for x in lines[: server_pos.line]) + server_pos.character


def read_disk(path: Path) -> str | None:
    """A file's text, or None when missing/unreadable (never a FIFO, at most 10 MiB)."""
    try:
        return read_text_regular(path, MAX_SOURCE_BYTES)
    except OSError:
        return None
