"""Turn a Particle cloud build log (one big make/gcc/ld text) into findings (FS3xx).

Why: the cloud returns a failed compile as ``errors[0]``, the *whole* build log as a single string
(library lines, ``make -C ../modules/<platform>/user-part all``, compiler command lines, then the
gcc output; see particle-domain.md section 10). Editors and the CLI need structured problems that point
at the user's own files, so this module reads that text the way particle-iot/gcc-output-parser did,
with two differences that matter for Device OS targets old and new:

* both gcc 5 style (source line + caret, no gutter) and gcc 9+ style (``  12 |`` gutter) are read;
* paths are mapped to the uploaded, project-relative paths: strip a leading ``/workspace/`` or ``/``,
  match exactly, then fall back to a *unique* suffix match. A generated ``foo.cpp`` whose ``foo.ino``
  was uploaded maps back to the ``.ino`` (the cloud preprocesses ``.ino`` to ``.cpp`` and emits
  ``#line`` directives, so most diagnostics already cite the ``.ino``).

Unknown paths (Device OS headers, cloud-fetched libraries, temporary build paths) get
``span.file = None`` with the line/column kept, and the text of the path in ``facts["path"]``; a
front end then shows them at the project level instead of on a wrong file.

Codes: FS301 compiler error (``error`` and ``fatal error``), FS302 warning, FS303 a ``note`` that
belongs to no error or warning, FS304 undefined reference, FS305 multiple definition (the "first
defined here" side is attached as :class:`Related`), FS306 the build failed but nothing in the log
could be parsed (the tail of the log is attached so the user still sees what went wrong).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from fieldsafe.findings import Finding, Related, Severity, Span

__all__ = ["LOG_TAIL_LINES", "PathMapper", "parse_build_log"]

LOG_TAIL_LINES = 25

_DIAG = re.compile(
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s+"
    r"(?P<sev>fatal error|error|warning|note):\s?(?P<msg>.*)$"
)
_INCLUDED = re.compile(r"^(?:In file included from|\s+from)\s+(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?[,:]$")
_CONTEXT = re.compile(
    r"^(?P<file>[^\s:][^:]*?): (?P<what>In (?:member |static member )?function|In constructor|In destructor|"
    r"In lambda function|In instantiation of|In substitution of|At global scope|At top level)"
    r"(?: ['‘](?P<sig>.*)['’])?:$"
)
# ld: "<obj>: In function `setup':" (old) and "<ld>: <obj>: in function `setup':" (binutils 2.29+)
_LD_FUNCTION = re.compile(r"^(?P<where>.*?):?\s+[Ii]n function [`'‘](?P<sig>.*)['’]:$")
_LD_UNDEFINED = re.compile(r"^(?P<where>.*?):\s*undefined reference to [`'‘](?P<sym>.*)['’]$")
_LD_MULTIPLE = re.compile(
    r"^(?P<where>.*?):\s*multiple definition of [`'‘](?P<sym>.*?)['’]"
    r"(?:;\s*(?P<first>.*?):?\s*first defined here)?$"
)
_LD_FIRST = re.compile(r"^(?P<where>.*?):\s*first defined here$")
# "file.cpp:12", "file.cpp:(.text.setup+0x4)", "/usr/bin/ld: obj.o: file.cpp:12" ...
_LD_LOCATION = re.compile(
    r"(?P<file>[^\s:()]+\.(?:cpp|cc|cxx|c|ino|h|hpp|hh|hxx|S|s)):(?:(?P<line>\d+)|\((?P<section>[^)]*)\))"
)
_GUTTER_SOURCE = re.compile(r"^\s*\d+\s\|")
_GUTTER_CARET = re.compile(r"^\s*\|(?P<rest>.*)$")
_CARET = re.compile(r"^(?P<lead>\s*)\^(?P<tilde>~*)")
_FAILURE_MARKERS = re.compile(
    r"(\*\*\*.*Error \d+|collect2: error|error:|Error \d+$|Compiler timed out|encountered an error|"
    r"ld returned \d+ exit status|No such file or directory)",
    re.MULTILINE,
)


class PathMapper:
    """Map a path as printed in a cloud log to the project-relative path the user uploaded."""

    def __init__(self, uploaded: Iterable[str]) -> None:
        self._uploaded = sorted({_clean_upload(p) for p in uploaded if p})
        self._set = set(self._uploaded)

    def map(self, raw: str) -> str | None:
        """Return the uploaded path ``raw`` refers to, or None when it is not one of the user's files."""
        path = _strip_prefix(raw.strip())
        for candidate in _variants(path):
            if candidate in self._set:
                return candidate
        for candidate in _variants(path):
            hits = [u for u in self._uploaded if _suffix_match(u, candidate)]
            if len(hits) == 1:
                return hits[0]
        return None


def _clean_upload(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _strip_prefix(path: str) -> str:
    path = path.replace("\\", "/")
    if path.startswith("/workspace/"):
        return path[len("/workspace/") :]
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def _variants(path: str) -> list[str]:
    """The path itself, then the .ino it was generated from when it is a preprocessed .cpp."""
    out = [path]
    if path.endswith(".cpp"):
        out.append(path[: -len(".cpp")] + ".ino")
    return out


def _suffix_match(uploaded: str, printed: str) -> bool:
    return uploaded.endswith("/" + printed) or printed.endswith("/" + uploaded) or uploaded == printed


@dataclass
class _Pending:
    """A diagnostic being assembled: its notes and code lines arrive on the following lines."""

    code: str
    severity: Severity
    message: str
    span: Span | None
    facts: dict[str, object]
    related: list[Related] = field(default_factory=list)

    def finish(self) -> Finding:
        return Finding(self.code, self.severity, self.message, self.span, dict(self.facts), (), tuple(self.related))


class _LogParser:
    """Line-by-line state machine; one instance per log."""

    def __init__(self, uploaded: Iterable[str]) -> None:
        self.paths = PathMapper(uploaded)
        self.findings: list[Finding] = []
        self.current: _Pending | None = None
        self.include_chain: list[Related] = []
        self.context: str | None = None
        self.ld_function: str | None = None
        self.pending_multiple: _Pending | None = None

    # -- helpers -------------------------------------------------------------------------------
    def span(self, raw_file: str, line: int, column: int | None) -> tuple[Span | None, dict[str, object]]:
        mapped = self.paths.map(raw_file)
        facts: dict[str, object] = {"path": raw_file}
        if mapped is None:
            return Span(None, line, column or 1), facts
        return Span(mapped, line, column or 1), facts

    def flush(self) -> None:
        if self.current is not None:
            self.findings.append(self.current.finish())
            self.current = None

    def flush_multiple(self) -> None:
        if self.pending_multiple is not None:
            self.findings.append(self.pending_multiple.finish())
            self.pending_multiple = None

    # -- line handlers -------------------------------------------------------------------------
    def feed(self, line: str) -> None:
        line = line.rstrip("\r")
        if self._caret(line) or _GUTTER_SOURCE.match(line):
            return
        if m := _INCLUDED.match(line):
            if line.startswith("In file included"):
                self.flush()
                self.include_chain = []
            span, _ = self.span(m["file"], int(m["line"]), int(m["col"]) if m["col"] else None)
            where = span.file if span and span.file else m["file"]
            self.include_chain.append(
                Related(f"In file included from {where}:{m['line']}", span if span and span.file else None)
            )
            return
        if m := _CONTEXT.match(line):
            self.flush()
            self.context = m["sig"] or m["what"]
            return
        if m := _DIAG.match(line):
            self._diagnostic(m)
            return
        if self._linker(line):
            return
        # source lines of old gcc (no gutter) or any other text: leave the current diagnostic open
        # only while we are inside its code/caret block; a blank line or make output closes it.
        if not line.strip() or line.startswith(("make", "Building", "Invoking", "arm-none-eabi", "g++", "gcc")):
            self.flush()
            self.include_chain = []

    def _caret(self, line: str) -> bool:
        """Record the end column from a caret line (``^~~~``), gutter or not; True when it was one."""
        body = line
        if g := _GUTTER_CARET.match(line):
            body = g["rest"]
        elif not line.lstrip().startswith("^"):
            return False
        m = _CARET.match(body)
        if not m:
            return bool(_GUTTER_CARET.match(line))
        cur = self.current
        if cur and cur.span and cur.span.end_column is None and m["tilde"]:
            cur.span = Span(
                cur.span.file, cur.span.line, cur.span.column, cur.span.line, cur.span.column + 1 + len(m["tilde"])
            )
        return True

    def _diagnostic(self, m: re.Match[str]) -> None:
        sev_word = m["sev"]
        line_no, col = int(m["line"]), int(m["col"]) if m["col"] else None
        span, facts = self.span(m["file"], line_no, col)
        message = m["msg"].strip()
        if sev_word == "note":
            if self.current is not None:
                where = span if span and span.file else None
                text = message if where else f"{m['file']}:{line_no}: {message}"
                self.current.related.append(Related(text, where))
                return
            self._start("FS303", Severity.INFO, message, span, facts, sev_word)
            return
        self.flush()
        code, sev = ("FS302", Severity.WARNING) if sev_word == "warning" else ("FS301", Severity.ERROR)
        self._start(code, sev, message, span, facts, sev_word)

    def _start(
        self, code: str, sev: Severity, message: str, span: Span | None, facts: dict[str, object], word: str
    ) -> None:
        facts["gcc_severity"] = word
        if self.context:
            facts["function"] = self.context
        self.current = _Pending(code, sev, message, span, facts, list(self.include_chain))
        self.include_chain = []

    def _linker(self, line: str) -> bool:
        if m := _LD_UNDEFINED.match(line):
            self.flush()
            self.flush_multiple()
            span, facts = self._ld_span(m["where"])
            facts.update({"symbol": m["sym"], "subtype": "undefined reference"})
            if self.ld_function:
                facts["function"] = self.ld_function
            msg = f"undefined reference to `{m['sym']}'"
            if self.ld_function:
                msg += f" (in function `{self.ld_function}')"
            self.findings.append(Finding("FS304", Severity.ERROR, msg, span, facts))
            return True
        if m := _LD_MULTIPLE.match(line):
            self.flush()
            self.flush_multiple()
            span, facts = self._ld_span(m["where"])
            facts.update({"symbol": m["sym"], "subtype": "multiple definition"})
            if self.ld_function:
                facts["function"] = self.ld_function
            pend = _Pending("FS305", Severity.ERROR, f"multiple definition of `{m['sym']}'", span, facts)
            if m["first"]:
                pend.related.append(self._first_defined(m["first"]))
                self.findings.append(pend.finish())
            else:
                self.pending_multiple = pend
            return True
        if m := _LD_FIRST.match(line):
            if self.pending_multiple is not None:
                self.pending_multiple.related.append(self._first_defined(m["where"]))
                self.flush_multiple()
            return True
        if m := _LD_FUNCTION.match(line):
            self.flush()
            self.ld_function = m["sig"]
            return True
        return False

    def _ld_span(self, where: str) -> tuple[Span | None, dict[str, object]]:
        matches = list(_LD_LOCATION.finditer(where))
        loc = matches[-1] if matches else None
        if loc is None:
            return None, {"path": where.strip()}
        span, facts = self.span(loc["file"], int(loc["line"]) if loc["line"] else 1, None)
        if loc["section"]:
            facts["section"] = loc["section"]
            facts["line_known"] = False
        if span is not None and span.file is None:
            return None, facts
        return span, facts

    def _first_defined(self, where: str) -> Related:
        span, facts = self._ld_span(where)
        if span is None:
            return Related(f"first defined here: {facts.get('path', where)}", None)
        return Related("first defined here", span)

    def finish(self, log: str, failed: bool | None) -> list[Finding]:
        self.flush()
        self.flush_multiple()
        hard = [f for f in self.findings if f.severity == Severity.ERROR]
        looks_failed = bool(_FAILURE_MARKERS.search(log)) if failed is None else failed
        if not hard and looks_failed:
            tail = "\n".join(log.rstrip().splitlines()[-LOG_TAIL_LINES:])
            self.findings.append(
                Finding(
                    "FS306",
                    Severity.ERROR,
                    "The build failed but the log has no diagnostic fieldsafe could place; see the log tail.",
                    None,
                    {"log_tail": tail},
                )
            )
        return self.findings


def parse_build_log(log: str, uploaded: Iterable[str], *, failed: bool | None = None) -> list[Finding]:
    """Findings (FS301-FS306) for a cloud build log, in log order, paths mapped to ``uploaded``.

    ``failed`` tells whether the caller knows the build failed (True), succeeded (False) or does not
    know (None: guessed from make/ld failure markers). It only decides whether FS306 is added when
    no error could be parsed.
    """
    parser = _LogParser(uploaded)
    for line in log.splitlines():
        parser.feed(line)
    return parser.finish(log, failed)
