"""The one finding type every fieldsafe check produces.

Why one type: the CLI prints findings, the language server turns them into diagnostics and code
actions, CI reads them as JSON. Rules (``compat``, ``apilint``, ``gccout``) must not know which of
those faces will show them, so a finding carries only editor-neutral facts: a stable code, a
severity, a message a person can act on, where it is, the facts behind it and structured fixes.

Codes are stable and documented in ``docs/findings.md``:
``FS1xx`` build vs device compatibility, ``FS2xx`` Device OS API availability,
``FS3xx`` compiler and build output, ``FS4xx`` project and settings problems,
``FS5xx`` a build against a product's fleet (``fieldsafe.fleetfindings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """Severity, numbered like LSP's ``DiagnosticSeverity`` so the wiring can pass it through."""

    ERROR = 1
    WARNING = 2
    INFO = 3
    HINT = 4

    @property
    def label(self) -> str:
        """The lower-case word gcc and our JSON output use (``error``, ``warning``, ``info``, ``hint``)."""
        return self.name.lower()


@dataclass(frozen=True)
class Span:
    """Where a finding points. Lines and columns are 1-based (gcc convention); ``end_*`` are inclusive-exclusive.

    ``file`` is a project-relative POSIX path when the finding belongs to a project, else an absolute path
    or ``None`` (findings about a device or a setting that has no file).
    """

    file: str | None
    line: int = 1
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True)
class Fix:
    """A structured fix a front end can offer (quick-fix, CLI hint).

    ``kind`` is one of: ``retarget`` (params: ``release``), ``set-platform`` (``platform``),
    ``guard`` (``release``, ``macro``), ``update-device`` (``release``, ``bytes``), ``select-device``.
    ``title`` is the ready-to-show text, e.g. "Retarget to 0.5.3 (what field-unit-7 runs)".
    """

    kind: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "params": dict(self.params)}


@dataclass(frozen=True)
class Related:
    """The other side of a conflict (e.g. "first defined here", the device that runs an older release)."""

    message: str
    span: Span | None = None

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "span": self.span.to_json() if self.span else None}


@dataclass(frozen=True)
class Finding:
    """One problem or fact worth telling the developer, in editor-neutral form."""

    code: str
    severity: Severity
    message: str
    span: Span | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    fixes: tuple[Fix, ...] = ()
    related: tuple[Related, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (stable keys; CI and the LSP tests rely on them)."""
        return {
            "code": self.code,
            "severity": self.severity.label,
            "message": self.message,
            "span": self.span.to_json() if self.span else None,
            "facts": dict(self.facts),
            "fixes": [f.to_json() for f in self.fixes],
            "related": [r.to_json() for r in self.related],
        }

    def gcc_line(self) -> str:
        """``file:line:col: severity: message [code]``, the format gcc and editors' problem matchers read."""
        where = "fieldsafe"
        if self.span and self.span.file:
            where = f"{self.span.file}:{self.span.line}:{self.span.column}"
        sev = "note" if self.severity >= Severity.INFO else self.severity.label
        return f"{where}: {sev}: {self.message} [{self.code}]"


def worst(findings: list[Finding] | tuple[Finding, ...]) -> Severity | None:
    """The most severe severity among findings, or None when there are none."""
    return min((f.severity for f in findings), default=None)
