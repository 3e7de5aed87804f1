"""Preprocessing: blanking comments/literals, and the target's view of ``#if`` (which regions compile).

Why a module: every later step (names, use sites, findings, the floor) reads the blanked text and
asks "is this offset compiled on release R, platform P?"; the answer is computed here once per file.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import accumulate
from typing import ClassVar

from fieldsafe import apidata, symindex
from fieldsafe.versions import DeviceOSVersion

# --------------------------------------------------------------------------------------------------
# 1. Blanking comments and literals
# --------------------------------------------------------------------------------------------------

_LITERAL_RE = re.compile(
    r"""//[^\n]*(?:\\\n[^\n]*)*"""  # line comment (with backslash continuation)
    r"""|/\*.*?(?:\*/|\Z)"""  # block comment
    r"""|R"([^()\\\s]{0,16})\(.*?\)\1\""""  # raw string
    r"""|"(?:\\.|[^"\\\n])*"?"""  # string
    r"""|'(?:\\.|[^'\\\n]){1,8}'""",  # char literal (multi-char tolerated)
    re.S,
)


_NOT_NEWLINE_RE = re.compile(r"[^\n]")


def _blank(match: re.Match[str]) -> str:
    text = match.group(0)
    keep = text[0] if text[0] in "\"'R" else " "
    if "\n" not in text:  # the common case (a // comment, a short string): no regex needed
        return keep + " " * (len(text) - 1)
    return keep + _NOT_NEWLINE_RE.sub(" ", text[1:])


def blank_literals(text: str) -> str:
    """``text`` with comments and string/char literals replaced by spaces (same length, newlines kept)."""
    return _LITERAL_RE.sub(_blank, text)


class _Lines:
    """Offset -> (1-based line, 1-based column) conversion."""

    def __init__(self, text: str) -> None:
        lengths = map(len, text.split("\n")[:-1])  # C-level: a 3,000-line file takes ~0.1 ms
        self.starts = list(accumulate(map((1).__add__, lengths), initial=0))

    def pos(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int) -> int:
        return self.starts[max(0, min(line - 1, len(self.starts) - 1))]


# --------------------------------------------------------------------------------------------------
# 2. Preprocessor: directives, condition evaluation, compiled regions
# --------------------------------------------------------------------------------------------------

_DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(\w+)([^\n]*(?:\\\n[^\n]*)*)", re.M)
_EXPR_TOKEN_RE = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|(\w+)|(&&|\|\||==|!=|>=|<=|<<|>>|[-+*/%<>!~&|^()?:,]))"
)
_FUNCTION_MACROS = {"SYSTEM_VERSION_DEFAULT": 0xFF, "SYSTEM_VERSION_ALPHA": 0x00, "SYSTEM_VERSION_BETA": 0x40,
                    "SYSTEM_VERSION_RC": 0x80}  # fmt: skip
_SYSTEM_VERSION_FROM = DeviceOSVersion(0, 4, 4, ("rc", 1))


class PreprocessorError(Exception):
    """The target's preprocessor would reject this condition (e.g. SYSTEM_VERSION_DEFAULT before 1.2.0)."""


@dataclass
class _Env:
    """What the target's preprocessor knows while evaluating one ``#if``."""

    target: DeviceOSVersion
    platform_id: int | None
    defines: dict[str, str | None] = field(default_factory=dict)  # user #define (None = #undef'd)
    undefined_version_macros: list[str] = field(default_factory=list)  # SYSTEM_VERSION_* read as 0
    project_macros: frozenset[str] | None = None  # names some project file defines (None: not known)
    flag_macros: list[str] = field(default_factory=list)  # names read as undefined: only a -D flag could set them


@cache
def _platform_macros() -> dict[str, int]:
    """``PLATFORM_ARGON`` -> 12 ... from platforms.tsv."""
    from fieldsafe._data import read_tsv

    out: dict[str, int] = {}
    for row in read_tsv("platforms.tsv"):
        name = row.get("device_os_platform_macro", "")
        if name:
            out[name] = int(row["platform_id"])
    return out


def _wiring_value(name: str, platform_id: int | None) -> int | None:
    facts = apidata.platform_facts(platform_id) if platform_id is not None else None
    if facts is None:
        return None
    return {"Wiring_WiFi": facts.wifi, "Wiring_Cellular": facts.cellular, "Wiring_BLE": facts.ble}.get(name)


def _table_macro(name: str, env: _Env) -> tuple[bool, int | None] | None:
    """(defined?, value for #if) of a platform macro per ``platform-macros.tsv`` at the target, or None
    when the table cannot say (not a table macro, platform unknown, release not built for it)."""
    if env.platform_id is None or not symindex.is_platform_macro(name):
        return None
    raw = symindex.platform_macro(name, env.platform_id, env.target)
    if raw is None:
        return None
    if raw == symindex.UNDEFINED:
        return False, 0
    return True, (int(raw) if re.fullmatch(r"-?\d+", raw) else None)


def _index_macro(name: str, env: _Env) -> tuple[bool, bool | None]:
    """(is ``name`` a macro some Device OS release defines, is it defined at the target) per the symbol
    index; the second is None where the index cannot say (after 6.2.0, unindexed platform)."""
    mask = 0
    for r in symindex.rows(name):
        if r.kind.startswith("macro") and "include-guard" not in r.note:
            mask |= r.mask
    if not mask:
        return False, None
    return True, symindex.Presence(mask).declared(env.target, env.platform_id)


def _unknown_name(name: str, env: _Env) -> int | None:
    """An identifier no Device OS header defines: 0 (as the preprocessor reads it) unless a project file
    defines it somewhere (then it depends on includes: unknown). Remembered so findings can say so."""
    if env.project_macros is None or name in env.project_macros:
        return None
    env.flag_macros.append(name)
    return 0


class _ExprParser:
    """A tri-state ``#if`` expression evaluator: values are ints, or None when they depend on unknowns."""

    _BINARY: ClassVar[dict[str, int]] = {
        "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
        "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
    }  # fmt: skip

    def __init__(self, text: str, env: _Env) -> None:
        self.env = env
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.replace("\\\n", " ")
        while pos < len(text):
            m = _EXPR_TOKEN_RE.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip():
                    raise ValueError(f"cannot read #if expression at {text[pos:]!r}")
                break
            pos = m.end()
            if m.group(1):
                self.tokens.append(("num", m.group(1)))
            elif m.group(2):
                self.tokens.append(("id", m.group(2)))
            elif m.group(3):
                self.tokens.append(("op", m.group(3)))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ValueError(f"expected {value or 'a value'} in #if expression")
        self.i += 1
        return tok

    def parse(self) -> int | None:
        value = self.ternary()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r} in #if expression")  # type: ignore[index]
        return value

    def ternary(self) -> int | None:
        cond = self.binary(1)
        if self.peek() == ("op", "?"):
            self.take("?")
            a = self.ternary()
            self.take(":")
            b = self.ternary()
            if cond is None:
                return a if a == b else None
            return a if cond else b
        return cond

    def binary(self, min_prec: int) -> int | None:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in self._BINARY or self._BINARY[tok[1]] < min_prec:
                return left
            op = self.take()[1]
            right = self.binary(self._BINARY[op] + 1)
            left = _apply(op, left, right)

    def unary(self) -> int | None:
        tok = self.take()
        if tok == ("op", "("):
            value = self.ternary()
            self.take(")")
            return value
        if tok[0] == "op" and tok[1] in "!~-+":
            v = self.unary()
            if v is None:
                return None
            return {"!": int(not v), "~": ~v, "-": -v, "+": v}[tok[1]]
        if tok[0] == "num":
            return int(tok[1], 0) if not re.fullmatch(r"0\d+", tok[1]) else int(tok[1], 8)
        if tok[0] == "id":
            if tok[1] == "defined":
                return self.defined()
            if tok[1] in _FUNCTION_MACROS and self.peek() == ("op", "("):
                return self.function_macro(tok[1])
            return self.identifier(tok[1])
        raise ValueError(f"unexpected {tok[1]!r} in #if expression")

    def defined(self) -> int | None:
        paren = self.peek() == ("op", "(")
        if paren:
            self.take("(")
        name = self.take()[1]
        if paren:
            self.take(")")
        return _is_defined(name, self.env)

    def function_macro(self, name: str) -> int | None:
        self.take("(")
        args = [self.ternary()]
        while self.peek() == ("op", ","):
            self.take(",")
            args.append(self.ternary())
        self.take(")")
        if self.env.target < apidata.FUNCTION_MACROS_FROM:
            raise PreprocessorError(name)
        if any(a is None for a in args) or len(args) < 3:
            return None
        low = (
            _FUNCTION_MACROS[name]
            if name == "SYSTEM_VERSION_DEFAULT"
            else _FUNCTION_MACROS[name] + (args[3] if len(args) > 3 and args[3] is not None else 0)
        )
        return apidata.default_macro_value(args[0], args[1], args[2], low)  # type: ignore[arg-type]

    def identifier(self, name: str) -> int | None:
        env = self.env
        if name in env.defines:
            raw = env.defines[name]
            if raw is None:
                return 0
            raw = raw.strip()
            m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", raw)
            return int(m.group(1), 0) if m else None
        if name == "SYSTEM_VERSION":
            return apidata.system_version_value(env.target) if env.target >= _SYSTEM_VERSION_FROM else 0
        if name.startswith("SYSTEM_VERSION_"):
            info = apidata.macros().get(name)
            if info is None:
                return None
            if not info.defined_in(env.target):
                env.undefined_version_macros.append(name)
                return 0
            return info.value if info.value is not None else 1
        if name == "PLATFORM_ID":
            return env.platform_id
        table = _table_macro(name, env)
        if table is not None:
            return table[1]
        if name in _platform_macros():
            return _platform_macros()[name]
        if name.startswith("Wiring_") and symindex.release_index(env.target) is None:
            return _wiring_value(name, env.platform_id)
        if name in ("true", "false"):
            return int(name == "true")
        if symindex.is_platform_macro(name) or name.startswith(("Wiring_", "HAL_PLATFORM_", "HAL_USE_")):
            return None  # a platform macro on an unknown platform or release
        is_macro, defined = _index_macro(name, env)
        if is_macro:
            return 0 if defined is False else None  # defined: its value is not in the index
        if symindex.is_index_name(name):
            return 0  # a declaration, not a macro: #if reads it as 0
        return _unknown_name(name, env)


def _is_defined(name: str, env: _Env) -> int | None:
    if name in env.defines:
        return int(env.defines[name] is not None)
    if name == "SYSTEM_VERSION":
        return int(env.target >= _SYSTEM_VERSION_FROM)
    if name in _FUNCTION_MACROS:
        return int(env.target >= apidata.FUNCTION_MACROS_FROM)
    info = apidata.macros().get(name)
    if info is not None:
        return int(info.defined_in(env.target))
    if name == "PLATFORM_ID":
        return 1
    table = _table_macro(name, env)
    if table is not None:
        return int(table[0])
    if name in _platform_macros():
        return 1
    if name.startswith("Wiring_") and symindex.release_index(env.target) is None:
        v = _wiring_value(name, env.platform_id)
        return None if v is None else 1
    if symindex.is_platform_macro(name) or name.startswith(("Wiring_", "HAL_PLATFORM_", "HAL_USE_")):
        return None
    is_macro, defined = _index_macro(name, env)
    if is_macro:
        return None if defined is None else int(defined)
    if symindex.is_index_name(name):
        return 0  # a Device OS declaration, not a macro
    return _unknown_name(name, env)


def _apply(op: str, a: int | None, b: int | None) -> int | None:
    if op == "&&":
        if a == 0 or b == 0:
            return 0
        return None if a is None or b is None else 1
    if op == "||":
        if (a is not None and a != 0) or (b is not None and b != 0):
            return 1
        return None if a is None or b is None else 0
    if a is None or b is None:
        return None
    if op in ("/", "%") and b == 0:
        return None
    return {
        "|": lambda: a | b, "^": lambda: a ^ b, "&": lambda: a & b, "==": lambda: int(a == b),
        "!=": lambda: int(a != b), "<": lambda: int(a < b), ">": lambda: int(a > b), "<=": lambda: int(a <= b),
        ">=": lambda: int(a >= b), "<<": lambda: a << b, ">>": lambda: a >> b, "+": lambda: a + b,
        "-": lambda: a - b, "*": lambda: a * b, "/": lambda: int(a / b), "%": lambda: a % b,
    }[op]()  # fmt: skip


def evaluate_condition(
    expr: str, target: DeviceOSVersion, platform_id: int | None = None, defines: dict[str, str | None] | None = None
) -> bool | None:
    """Evaluate one ``#if`` expression as ``target``'s preprocessor would; None when it depends on unknowns.

    Raises ``PreprocessorError`` when the target's preprocessor would reject it.
    """
    value = _ExprParser(expr, _Env(target, platform_id, dict(defines or {}))).parse()
    return None if value is None else bool(value)


@dataclass(frozen=True)
class GuardNote:
    """Why a ``#if`` branch counts as compiled on the target although that may be wrong for the build.

    ``kind`` "version": true only because a ``SYSTEM_VERSION_*`` macro is undefined there (read as 0).
    ``kind`` "flag": the branch depends on macros that no Device OS header and no project file defines,
    read as undefined as the preprocessor does; only a ``-D`` build flag (which the check cannot see)
    could define them.
    """

    line: int
    text: str
    macros: tuple[str, ...]
    kind: str = "version"


@dataclass(frozen=True)
class Region:
    """From ``start`` (offset) on, until the next region: compiled? (True/False/None=unknown) and why."""

    start: int
    state: bool | None
    notes: tuple[GuardNote, ...] = ()


@dataclass
class _Frame:
    current: bool | None
    any_taken: bool | None
    note: GuardNote | None
    flags: tuple[str, ...] = ()  # flag macros read as undefined by this #if chain's conditions
    line: int = 0
    text: str = ""


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


@dataclass
class Preprocessed:
    """Compiled regions of one file, the file's own #defines and preprocessor-level findings."""

    regions: list[Region]
    starts: list[int]
    defined_names: set[str]
    errors: list[tuple[int, int, str, str]]  # (offset, end, directive text, macro)
    condition_spans: tuple[tuple[int, int], ...] = ()  # #if/#elif/#ifdef/... lines: names there are not uses

    def in_condition(self, offset: int) -> bool:
        """Is ``offset`` inside a conditional directive's own text (where undefined names are legal)?"""
        i = bisect.bisect_right(self.condition_starts, offset) - 1
        return i >= 0 and offset < self.condition_spans[i][1]

    @cached_property
    def condition_starts(self) -> list[int]:
        return [a for a, _ in self.condition_spans]

    def state_at(self, offset: int) -> Region:
        return self.regions[bisect.bisect_right(self.starts, offset) - 1]


_Outcome = tuple[bool | None, tuple[str, ...], tuple[str, ...]] | PreprocessorError
_EVAL_MEMO: dict[tuple[object, ...], _Outcome] = {}


def _evaluate_memo(
    expr: str, target: DeviceOSVersion, platform_id: int | None, defines: dict[str, str | None],
    project_macros: frozenset[str] | None = None,
) -> _Outcome:  # fmt: skip
    """(value, SYSTEM_VERSION_* macros read as 0, flag macros read as undefined) of one ``#if``, or the
    PreprocessorError it raises.

    Memoised per (expression, target, platform, the file's #defines so far, the project's macros): a
    file repeats the same guard many times, and an edit elsewhere re-evaluates every directive of the file.
    """
    key = (expr, target, platform_id, frozenset(defines.items()) if defines else None, project_macros)
    hit = _EVAL_MEMO.get(key)
    if hit is not None:
        return hit
    env = _Env(target, platform_id, dict(defines), project_macros=project_macros)
    outcome: _Outcome
    try:
        value = _ExprParser(expr, env).parse()
        outcome = (None if value is None else bool(value), tuple(env.undefined_version_macros),
                   tuple(dict.fromkeys(env.flag_macros)))  # fmt: skip
    except PreprocessorError as exc:
        outcome = exc
    except ValueError:
        outcome = (None, (), ())
    if len(_EVAL_MEMO) > 4096:
        _EVAL_MEMO.clear()
    _EVAL_MEMO[key] = outcome
    return outcome


def preprocess(
    masked: str, target: DeviceOSVersion, platform_id: int | None, lines: _Lines,
    project_macros: frozenset[str] | None = None,
) -> Preprocessed:  # fmt: skip
    """Walk the directives of ``masked`` (already blanked) and compute which regions the target compiles.

    ``project_macros`` are the names some project file ``#define``s. With it, a name that neither a
    Device OS header (symbol index, platform macros) nor a project file defines is undefined, as the
    preprocessor reads it; without it (a lone file) such names stay unknown ("maybe compiled").
    """
    regions = [Region(0, True)]
    stack: list[_Frame] = []
    defines: dict[str, str | None] = {}
    defined_names: set[str] = set()
    errors: list[tuple[int, int, str, str]] = []
    spans: list[tuple[int, int]] = []

    def active() -> bool | None:
        state: bool | None = True
        for fr in stack:
            state = _and(state, fr.current)
        return state

    def evaluate(expr: str, m: re.Match[str]) -> tuple[bool | None, GuardNote | None, tuple[str, ...]]:
        outcome = _evaluate_memo(expr, target, platform_id, defines, project_macros)
        if isinstance(outcome, PreprocessorError):
            errors.append((m.start(), m.end(), m.group(0).strip(), str(outcome)))
            return False, None, ()
        result, undefined, flags = outcome
        note = None
        if result and undefined:
            note = GuardNote(lines.pos(m.start())[0], m.group(0).strip(), undefined)
        elif result and flags:
            note = GuardNote(lines.pos(m.start())[0], m.group(0).strip(), flags, "flag")
        return result, note, flags

    def ifdef(name: str) -> tuple[int | None, tuple[str, ...]]:
        env = _Env(target, platform_id, defines, project_macros=project_macros)
        return _is_defined(name, env), tuple(env.flag_macros)

    for m in _DIRECTIVE_RE.finditer(masked):
        kind, rest = m.group(1), m.group(2).strip()
        if kind not in ("define",):
            spans.append((m.start(), m.end()))
        line, text = lines.pos(m.start())[0], m.group(0).strip()
        if kind in ("if", "ifdef", "ifndef"):
            if kind == "if":
                cond, note, flags = evaluate(rest, m)
            else:
                name = rest.split()[0] if rest.split() else ""
                d, flags = ifdef(name)
                cond = None if d is None else bool(d) == (kind == "ifdef")
                note = GuardNote(line, text, flags, "flag") if cond and flags else None
            stack.append(_Frame(cond, cond, note, flags, line, text))
        elif kind == "elif" and stack:
            fr = stack[-1]
            cond, note, flags = evaluate(rest, m)
            fr.current = _and(_not(fr.any_taken), cond)
            fr.any_taken = _or(fr.any_taken, cond)
            fr.flags = tuple(dict.fromkeys(fr.flags + flags))
            fr.note = note if note else (GuardNote(line, text, fr.flags, "flag") if fr.current and fr.flags else None)
        elif kind == "else" and stack:
            fr = stack[-1]
            fr.current = _not(fr.any_taken)
            fr.note = GuardNote(fr.line, fr.text, fr.flags, "flag") if fr.current and fr.flags else None
        elif kind == "endif" and stack:
            stack.pop()
        elif kind in ("define", "undef") and active() is not False:
            dm = re.match(r"(\w+)(\([^)]*\))?\s*(.*)", rest)
            if dm:
                defines[dm.group(1)] = (dm.group(3) if not dm.group(2) else "") if kind == "define" else None
                if kind == "define":
                    defined_names.add(dm.group(1))
            continue
        else:
            continue
        notes = tuple(fr.note for fr in stack if fr.note is not None and fr.current)
        regions.append(Region(m.end(), active(), notes))
    return Preprocessed(regions, [r.start for r in regions], defined_names, errors, tuple(spans))
