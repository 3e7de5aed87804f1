"""Findings -> LSP diagnostics, and the per-URI store that publishes them.

Why a layered store: one file can carry diagnostics from several independent producers (the pin
check on ``settings.json``, the cloud compile, the post-compile binary check, API linting as you
type). ``publishDiagnostics`` replaces *all* diagnostics of a URI, so each producer owns a layer and
the store publishes the union whenever one layer changes. Clearing a layer publishes an empty list
for every URI it used to touch (flycheck's "clear older than generation N").

The store also remembers which :class:`~fieldsafe.findings.Finding` produced each published
diagnostic, keyed by URI + range + code: Neovim <= 0.9 and Emacs do not send ``Diagnostic.data``
back in ``textDocument/codeAction``, so quick-fixes are recovered from this cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from fieldsafe.findings import Finding, Span

SOURCE = "fieldsafe"
_IDENT = re.compile(r"[^\W\d]\w*")  # C++ identifiers (gcc accepts non-ASCII letters)

RangeKey = tuple[int, int, int, int]


def range_key(rng: types.Range) -> RangeKey:
    """A hashable form of a range (the cache key part that survives a JSON round trip)."""
    return (rng.start.line, rng.start.character, rng.end.line, rng.end.character)


def span_to_range(span: Span, lines: Sequence[str], codec: PositionCodec) -> types.Range:
    """Convert a 1-based finding span (code points) into a 0-based range in the client's units.

    Without an end column the range covers the identifier starting at the column (what gcc's caret
    points at), or one character, so editors show a visible squiggle. Out-of-range lines are
    clamped: a compile result can arrive for a file that was edited meanwhile.
    """
    if not lines:
        return types.Range(types.Position(0, 0), types.Position(0, 0))
    line = min(max(span.line - 1, 0), len(lines) - 1)
    text = lines[line].rstrip("\r\n")
    col = min(max(span.column - 1, 0), len(text))
    if span.end_line is not None and span.end_column is not None:
        end_line = min(max(span.end_line - 1, line), len(lines) - 1)
        end_text = lines[end_line].rstrip("\r\n")
        end_col = min(max(span.end_column - 1, 0), len(end_text))
        if end_line == line and end_col < col:
            end_col = col
    else:
        end_line = line
        match = _IDENT.match(text, col)
        end_col = match.end() if match else min(col + 1, len(text))
    start = codec.position_to_client_units(lines, types.Position(line, col))
    end = codec.position_to_client_units(lines, types.Position(end_line, end_col))
    return types.Range(start, end)


@dataclass(frozen=True)
class Located:
    """A finding placed in a document: the URI and the range it is shown at."""

    finding: Finding
    uri: str
    range: types.Range


RelatedResolver = Callable[[Finding], list[types.DiagnosticRelatedInformation]]


def to_diagnostic(
    located: Located, related: list[types.DiagnosticRelatedInformation], project_uri: str
) -> types.Diagnostic:
    """The LSP diagnostic for one located finding (message, severity and code come from the finding)."""
    finding = located.finding
    return types.Diagnostic(
        range=located.range,
        message=finding.message,
        severity=types.DiagnosticSeverity(int(finding.severity)),
        code=finding.code,
        source=SOURCE,
        related_information=related or None,
        data={"projectUri": project_uri, "finding": finding.to_json()},
    )


class DiagnosticStore:
    """Layers of diagnostics per URI; publishes the union and caches the findings behind them."""

    def __init__(self, publish: Callable[[str, list[types.Diagnostic]], None]) -> None:
        self._publish = publish
        self._layers: dict[str, dict[str, list[tuple[types.Diagnostic, Finding]]]] = {}
        self._owned: dict[str, set[str]] = {}  # layer key -> URIs it has diagnostics on

    def set_layer(self, layer: str, per_uri: dict[str, list[tuple[types.Diagnostic, Finding]]]) -> None:
        """Replace a whole layer; URIs it no longer mentions are cleared (published empty if so)."""
        previous = self._owned.get(layer, set())
        touched = set(per_uri) | previous
        for uri in touched:
            items = per_uri.get(uri, [])
            layers = self._layers.setdefault(uri, {})
            if items:
                layers[layer] = list(items)
            else:
                layers.pop(layer, None)
        self._owned[layer] = {u for u, items in per_uri.items() if items}
        for uri in sorted(touched):
            self.publish(uri)

    def set_uri(self, layer: str, uri: str, items: list[tuple[types.Diagnostic, Finding]]) -> None:
        """Replace one URI's part of a layer (per-document producers such as API linting)."""
        layers = self._layers.setdefault(uri, {})
        owned = self._owned.setdefault(layer, set())
        if items:
            layers[layer] = list(items)
            owned.add(uri)
        else:
            if layer not in layers and uri not in owned:
                return
            layers.pop(layer, None)
            owned.discard(uri)
        self.publish(uri)

    def clear_layer(self, layer: str) -> None:
        """Remove a layer everywhere (e.g. a project disappeared)."""
        self.set_layer(layer, {})

    def publish(self, uri: str) -> None:
        """Send the union of all layers for ``uri``."""
        self._publish(uri, [d for d, _ in self._items(uri)])

    def diagnostics(self, uri: str) -> list[types.Diagnostic]:
        """What was last published for ``uri``."""
        return [d for d, _ in self._items(uri)]

    def lookup(self, uri: str, rng: types.Range, code: str | None) -> list[Finding]:
        """Findings published on ``uri`` at exactly ``rng`` (and ``code`` when given)."""
        key = range_key(rng)
        return [
            f for d, f in self._items(uri) if range_key(d.range) == key and (code is None or str(d.code) == str(code))
        ]

    def findings_in(self, uri: str, rng: types.Range) -> list[tuple[types.Diagnostic, Finding]]:
        """Published items overlapping ``rng`` (for clients that send an empty context)."""
        out = []
        for d, f in self._items(uri):
            if _overlaps(d.range, rng):
                out.append((d, f))
        return out

    def uris(self) -> Iterable[str]:
        """URIs that currently carry diagnostics."""
        return [u for u, layers in self._layers.items() if any(layers.values())]

    def _items(self, uri: str) -> list[tuple[types.Diagnostic, Finding]]:
        layers = self._layers.get(uri, {})
        return [item for name in sorted(layers) for item in layers[name]]


def _overlaps(a: types.Range, b: types.Range) -> bool:
    a0 = (a.start.line, a.start.character)
    a1 = (a.end.line, a.end.character)
    b0 = (b.start.line, b.start.character)
    b1 = (b.end.line, b.end.character)
    return a0 <= b1 and b0 <= a1
