"""Device OS API availability lint ("NewApi" for Particle): source text -> FS2xx findings.

Why: a sketch that calls ``Particle.publishVitals()`` builds fine against the latest Device OS and
fails (or is rejected by the cloud compiler) for a project pinned to 0.7.0, the release a fielded
device still runs. This module finds such uses before anything is compiled, understands the
``#if SYSTEM_VERSION >= ...`` guards people write around them, and offers the guard as a fix.

How (see ``docs/apilint.md``):

1. Comments, strings and character literals are blanked (same length, newlines kept) so offsets
   stay valid and nothing inside them can match.
2. Preprocessor directives are walked in order with a condition stack. Each ``#if``/``#elif`` is
   evaluated *as the target release's preprocessor would*: ``SYSTEM_VERSION`` is the target's value,
   ``SYSTEM_VERSION_vXYZ`` is defined only from the release whose header first defines it (an
   undefined name is 0 in ``#if``), ``SYSTEM_VERSION_DEFAULT(x,y,z)`` only exists from 1.2.0, and
   ``PLATFORM_ID``/``Wiring_*`` follow the platform when known. Results are tri-state: branches whose
   condition depends on unknown macros count as compiled.
3. Use sites are extracted (regex anchors over the blanked text, or optionally tree-sitter) and
   resolved to lint keys: ``Obj.method`` on Device OS globals, ``Class::member``, members called on
   variables declared with a Device OS type, plain types/functions/constants/macros, and system
   event names inside ``System.on(...)`` only. Names the project defines itself are not flagged.
4. Each use in a compiled region is checked against ``fieldsafe.apidata``.

Pure: no editor imports. ``lint_source`` caches results per (content hash, target, platform), and
re-checks after an edit incrementally: the text is cut into chunks at top-level closing braces and
each chunk's resolved uses are memoised (see "Incremental re-check" below and ``docs/apilint.md``),
with results identical to a whole-text pass (``tests/test_apilint_incremental.py``).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import accumulate
from pathlib import Path
from typing import ClassVar, NamedTuple

from fieldsafe import apidata
from fieldsafe.apidata import Availability
from fieldsafe.findings import Finding, Fix, Related, Severity, Span
from fieldsafe.versions import DeviceOSVersion

SOURCE_SUFFIXES = (".ino", ".cpp", ".c", ".h", ".hpp", ".cc", ".cxx", ".hh")

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
        if name in _platform_macros():
            return _platform_macros()[name]
        if name.startswith("Wiring_"):
            return _wiring_value(name, env.platform_id)
        if name in ("true", "false"):
            return int(name == "true")
        return None


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
    if name == "PLATFORM_ID" or name in _platform_macros():
        return 1
    if name.startswith("Wiring_"):
        v = _wiring_value(name, env.platform_id)
        return None if v is None else 1
    return None


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
    """A ``#if`` that is true on the target only because a ``SYSTEM_VERSION_*`` macro is undefined there."""

    line: int
    text: str
    macros: tuple[str, ...]


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

    def state_at(self, offset: int) -> Region:
        return self.regions[bisect.bisect_right(self.starts, offset) - 1]


_Outcome = tuple[bool | None, tuple[str, ...]] | PreprocessorError
_EVAL_MEMO: dict[tuple[object, ...], _Outcome] = {}


def _evaluate_memo(
    expr: str, target: DeviceOSVersion, platform_id: int | None, defines: dict[str, str | None]
) -> _Outcome:
    """(value, SYSTEM_VERSION_* macros read as 0) of one ``#if``, or the PreprocessorError it raises.

    Memoised per (expression, target, platform, the file's #defines so far): a file repeats the same
    guard many times, and an edit elsewhere re-evaluates every directive of the file.
    """
    key = (expr, target, platform_id, frozenset(defines.items()) if defines else None)
    hit = _EVAL_MEMO.get(key)
    if hit is not None:
        return hit
    env = _Env(target, platform_id, dict(defines))
    outcome: _Outcome
    try:
        value = _ExprParser(expr, env).parse()
        outcome = (None if value is None else bool(value), tuple(env.undefined_version_macros))
    except PreprocessorError as exc:
        outcome = exc
    except ValueError:
        outcome = (None, ())
    if len(_EVAL_MEMO) > 4096:
        _EVAL_MEMO.clear()
    _EVAL_MEMO[key] = outcome
    return outcome


def preprocess(masked: str, target: DeviceOSVersion, platform_id: int | None, lines: _Lines) -> Preprocessed:
    """Walk the directives of ``masked`` (already blanked) and compute which regions the target compiles."""
    regions = [Region(0, True)]
    stack: list[_Frame] = []
    defines: dict[str, str | None] = {}
    defined_names: set[str] = set()
    errors: list[tuple[int, int, str, str]] = []

    def active() -> bool | None:
        state: bool | None = True
        for fr in stack:
            state = _and(state, fr.current)
        return state

    def evaluate(expr: str, m: re.Match[str]) -> tuple[bool | None, GuardNote | None]:
        outcome = _evaluate_memo(expr, target, platform_id, defines)
        if isinstance(outcome, PreprocessorError):
            errors.append((m.start(), m.end(), m.group(0).strip(), str(outcome)))
            return False, None
        result, undefined = outcome
        note = None
        if result and undefined:
            note = GuardNote(lines.pos(m.start())[0], m.group(0).strip(), undefined)
        return result, note

    for m in _DIRECTIVE_RE.finditer(masked):
        kind, rest = m.group(1), m.group(2).strip()
        if kind in ("if", "ifdef", "ifndef"):
            if kind == "if":
                cond, note = evaluate(rest, m)
            else:
                name = rest.split()[0] if rest.split() else ""
                d = _is_defined(name, _Env(target, platform_id, defines))
                cond, note = (None if d is None else bool(d) == (kind == "ifdef")), None
            stack.append(_Frame(cond, cond, note))
        elif kind == "elif" and stack:
            fr = stack[-1]
            cond, note = evaluate(rest, m)
            fr.current = _and(_not(fr.any_taken), cond)
            fr.any_taken = _or(fr.any_taken, cond)
            fr.note = note
        elif kind == "else" and stack:
            fr = stack[-1]
            fr.current, fr.note = _not(fr.any_taken), None
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
    return Preprocessed(regions, [r.start for r in regions], defined_names, errors)


# --------------------------------------------------------------------------------------------------
# 3. Names the project defines itself (shadowing) and variables with Device OS types
# --------------------------------------------------------------------------------------------------

_KEYWORDS = frozenset(
    [
        "return",
        "else",
        "new",
        "delete",
        "throw",
        "case",
        "goto",
        "co_return",
        "co_yield",
        "sizeof",
        "typeof",
        "decltype",
        "if",
        "while",
        "for",
        "switch",
        "do",
        "typedef",
        "using",
        "namespace",
        "public",
        "private",
        "protected",
        "operator",
        "template",
        "typename",
        "const",
        "static",
    ]
)
_TYPE_DEF_RE = re.compile(r"\b(?:class|struct|union|enum(?:\s+class|\s+struct)?|namespace)\s+(\w+)")
_USING_RE = re.compile(r"\busing\s+(\w+)\s*=|\btypedef\b[^;{}]*?\b(\w+)\s*(?:\[[^\]]*\])?\s*;")
_FUNC_DEF_RE = re.compile(
    r"(\w+|[*&>])\s*[*&]?\s*\b(\w+)\s*\((?:[^;{}()]|\([^()]*\))*\)\s*(?:const\s*)?(?:override\s*)?(?:noexcept\s*)?[{;:]"
)


def user_defined_names(masked: str) -> set[str]:
    """Types, functions, macros and namespaces the source defines itself (they shadow Device OS names)."""
    names = {m.group(1) for m in _TYPE_DEF_RE.finditer(masked)}
    for m in _USING_RE.finditer(masked):
        names.add(m.group(1) or m.group(2))
    for m in _FUNC_DEF_RE.finditer(masked):
        before, name = m.group(1), m.group(2)
        if before not in _KEYWORDS and name not in _KEYWORDS and not before.isdigit():
            names.add(name)
    names.update(re.findall(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", masked, re.M))
    return names


@cache
def _tables() -> _KeyTables:
    return _KeyTables.build()


@dataclass(frozen=True)
class _KeyTables:
    """Lint keys split the ways the scanner needs them (built once from ``apidata``)."""

    objects: frozenset[str]  # Particle, System, BLE ... (dotted-key prefixes)
    classes: frozenset[str]  # names with ::members, or kind class/type/enum
    plain: frozenset[str]  # checkable plain names (not events)
    call_only: frozenset[str]  # plain names that only count when called: functions, function-like macros
    events: frozenset[str]
    anchors: frozenset[str]  # names whose occurrences start a use (objects, classes, plain, overloads)
    token_re: re.Pattern[str]  # whole-word occurrences of anchors and event names, one pass

    @classmethod
    def build(cls) -> _KeyTables:
        apis = apidata.all_apis()
        objects: set[str] = set()
        classes: set[str] = set()
        plain: set[str] = set()
        call_only: set[str] = set()
        events: set[str] = set()
        for key, a in apis.items():
            if a.kind in ("feature", "user-callback") or " " in key:
                continue
            if "." in key:
                objects.add(key.split(".", 1)[0])
            elif "::" in key:
                classes.add(key.split("::", 1)[0])
            elif a.system_event:
                events.add(key)
            else:
                plain.add(key)
                if a.kind in ("class", "type", "enum"):
                    classes.add(key)
                if a.kind == "function" or (a.kind == "macro" and key in _CALL_MACROS):
                    call_only.add(key)
        overloaded = {k.split(".", 1)[0] for k in _overload_keys() if "." in k}
        objects |= overloaded
        anchors = objects | classes | plain | {k for k in _overload_keys() if "." not in k and "::" not in k}
        token_re = re.compile(r"(?<!\w)(?=[A-Za-z_])(" + _trie_pattern(anchors | events) + r")\b")
        return cls(frozenset(objects), frozenset(classes), frozenset(plain), frozenset(call_only),
                   frozenset(events), frozenset(anchors), token_re)  # fmt: skip


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching exactly ``words``, factored by common prefixes.

    Why: a flat ``a|b|c...`` of ~400 names makes the regex engine try every name at every position;
    the factored form rejects a position after a character or two (about 3x faster on real files).
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        if "" in node:
            return "(?:" + "|".join(alts) + ")?"
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie)


_CALL_MACROS = frozenset({"waitFor", "waitUntil", "waitForNot", "waitUntilNot"})


@cache
def _overload_keys() -> frozenset[str]:
    from fieldsafe._data import read_tsv

    return frozenset(r["api"] for r in read_tsv("device-os-data/api-overloads.tsv"))


def typed_variables(masked: str, user_names: set[str], present: Iterable[str] | None = None) -> dict[str, str]:
    """``config`` -> ``SystemSleepConfiguration`` for variables declared with a Device OS class type.

    ``present`` (optional) is the set of names that occur in ``masked`` as whole words; only those
    classes can match, so the pattern is built from them alone (same result, much shorter regex).
    """
    classes = _tables().classes if present is None else _tables().classes.intersection(present)
    pattern = _typed_variable_re(tuple(sorted(c for c in classes if c not in user_names)))
    if pattern is None:
        return {}
    out: dict[str, str] = {}
    for m in pattern.finditer(masked):
        var = m.group(2)
        if var not in _KEYWORDS and var not in _tables().classes:
            out[var] = m.group(1)
    return out


@lru_cache(maxsize=1024)
def _typed_variable_re(classes: tuple[str, ...]) -> re.Pattern[str] | None:
    if not classes:
        return None
    return re.compile(
        r"\b(" + "|".join(map(re.escape, sorted(classes, key=len, reverse=True))) + r")\b\s*(?:<[^<>;()]*>)?"
        r"\s*(?:const\s*)?[*&]?\s*\b([A-Za-z_]\w*)\s*(?=[;=({\[,)])"
    )


# Shadowing is only ever asked about Device OS names that occur in the file, so instead of collecting
# every definition (one slow regex over the whole text), each occurrence of such a name is checked
# against the shapes ``user_defined_names`` recognises. Same answers for those names, a fraction of the time.
_FUNC_TAIL_RE = re.compile(r"\s*\((?:[^;{}()]|\([^()]*\))*\)\s*(?:const\s*)?(?:override\s*)?(?:noexcept\s*)?[{;:]")
_USING_TAIL_RE = re.compile(r"\s*=")
_TYPEDEF_TAIL_RE = re.compile(r"\s*(?:\[[^\]]*\])?\s*;")
_TYPEDEF_WORD_RE = re.compile(r"\btypedef\b")
_DEFINE_HEAD_RE = re.compile(r"[ \t]*#[ \t]*define[ \t]+")
_TYPE_KEYWORDS = frozenset({"class", "struct", "union", "enum", "namespace"})


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _word_before(masked: str, end: int) -> str:
    """The run of word characters ending just before ``end``."""
    i = end
    while i > 0 and _is_word_char(masked[i - 1]):
        i -= 1
    return masked[i:end]


def _skip_space_back(masked: str, pos: int) -> int:
    """Index just after the last non-whitespace character before ``pos``."""
    return _strip_back(masked, pos, None)


def _strip_back(masked: str, pos: int, chars: str | None) -> int:
    """Index just after the last character before ``pos`` not in ``chars`` (whitespace when None).

    By ``rstrip`` on growing windows: blanked comment blocks are long runs of spaces, and walking
    them a character at a time in Python made this the hottest line of a cold lint.
    """
    width = 64
    while True:
        lo = max(0, pos - width)
        kept = masked[lo:pos].rstrip(chars)
        if kept or lo == 0:
            return lo + len(kept)
        width *= 8


def _defines_at(masked: str, start: int, end: int) -> bool:
    """Does the occurrence ``masked[start:end]`` of a name sit where ``user_defined_names`` sees a definition?"""
    before = _skip_space_back(masked, start)
    gap = before < start
    prev = _word_before(masked, before)
    if gap and (prev in _TYPE_KEYWORDS or (prev == "using" and _USING_TAIL_RE.match(masked, end))):
        return True
    if prev == "define" and gap:
        line_start = masked.rfind("\n", 0, before - len(prev)) + 1
        if _DEFINE_HEAD_RE.fullmatch(masked, line_start, start):
            return True
    if _TYPEDEF_TAIL_RE.match(masked, end):
        stmt = max(masked.rfind(c, 0, start) for c in ";{}") + 1
        if _TYPEDEF_WORD_RE.search(masked, stmt, start):
            return True
    if _FUNC_TAIL_RE.match(masked, end) and masked[start:end] not in _KEYWORDS:
        return _function_definition_head(masked, before)
    return False


def _function_definition_head(masked: str, before: int) -> bool:
    """The part of ``_FUNC_DEF_RE`` before the name: ``(\\w+|[*&>])\\s*[*&]?\\s*``, not a keyword/number."""
    heads: list[str] = []
    if before > 0 and masked[before - 1] in "*&":  # the optional pointer/reference mark, taken when possible
        inner = _skip_space_back(masked, before - 1)
        heads.append(_word_before(masked, inner) or (masked[inner - 1] if inner and masked[inner - 1] in "*&>" else ""))
    heads.append(_word_before(masked, before) or (masked[before - 1] if before and masked[before - 1] in "*&>" else ""))
    head = next((h for h in heads if h), "")
    return bool(head) and head not in _KEYWORDS and not head.isdigit()


def shadowing_names(masked: str, occurrences: Iterable[tuple[int, str]]) -> set[str]:
    """Which of the names occurring at ``occurrences`` ((start, name) pairs) ``masked`` defines itself.

    Equal to ``user_defined_names(masked) & {names}``, computed only where those names appear.
    """
    out: set[str] = set()
    for start, name in occurrences:
        if name not in out and _defines_at(masked, start, start + len(name)):
            out.add(name)
    return out


# --------------------------------------------------------------------------------------------------
# 4. Use sites
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiUse:
    """One place the source uses a Device OS API (offsets into the text; end exclusive)."""

    api: str
    start: int
    end: int
    args: str | None = None  # the call's argument text when it is a call
    arg_types: tuple[str, ...] = ()  # Device OS types of variables passed as arguments


_BRACKET_RE = re.compile(r"[()\[\]{}]")


def _match_paren(masked: str, open_index: int) -> int:
    """Index of the ``)`` matching ``masked[open_index] == '('`` (or len on unbalanced text)."""
    depth = 0
    for m in _BRACKET_RE.finditer(masked, open_index):
        if m.group() in "([{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.start()
    return len(masked)


_WS_CALL_RE = re.compile(r"\s*\(")
_MEMBER_RE = re.compile(r"\s*(?:\.|->)\s*([A-Za-z_]\w*)")
_SCOPE_RE = re.compile(r"\s*::\s*([A-Za-z_]\w*)(?:\s*::\s*([A-Za-z_]\w*))?")


def _call_args(masked: str, pos: int) -> tuple[str | None, int]:
    m = _WS_CALL_RE.match(masked, pos)
    if not m:
        return None, pos
    close = _match_paren(masked, m.end() - 1)
    return masked[m.end() : close], close + 1


def _prev_significant(masked: str, pos: int) -> tuple[str, int]:
    i = _strip_back(masked, pos, " \t\r\n") - 1
    return (masked[i], i) if i >= 0 else ("", -1)


def _qualifier_ok(masked: str, pos: int) -> bool:
    """False when the name at ``pos`` is a member of something else (``x.name``, ``x->name``, ``Foo::name``)."""
    c, i = _prev_significant(masked, pos)
    if c == ".":
        return False
    if c == ">" and i > 0 and masked[i - 1] == "-":
        return False
    if c == ":" and i > 0 and masked[i - 1] == ":":
        q = re.search(r"(\w+)\s*::\s*$", masked[max(0, i - 40) : i + 1])
        return bool(q and q.group(1) in ("particle", "spark"))
    return True


# Builder-style classes return themselves from setters, so a chain stays on the same class even
# through members the tables do not list (``SystemSleepConfiguration::mode`` is undocumented as a key).
_BUILDER_RE = re.compile(r"(Configuration|Config|Options|Filter|Params|Credentials|Settings)$")


def _chain(masked: str, uses: list[ApiUse], cls: str, pos: int, var_types: dict[str, str]) -> None:
    """Follow builder chains ``.mode(...).duration(...)`` on an object of class ``cls``."""
    apis = apidata.all_apis()
    for _ in range(32):
        m = _MEMBER_RE.match(masked, pos)
        if not m:
            return
        key = f"{cls}::{m.group(1)}"
        args, after = _call_args(masked, m.end())
        known = key in apis or key in _overload_keys()
        if known:
            uses.append(ApiUse(key, m.start(1), m.end(1), args, _arg_types(args, var_types)))
        if args is None or not (known or _BUILDER_RE.search(cls)):
            return
        pos = after


def _arg_types(args: str | None, var_types: dict[str, str]) -> tuple[str, ...]:
    if not args or not var_types:
        return ()
    return tuple(var_types[w] for w in _WORD_RE.findall(args) if w in var_types)


_WORD_RE = re.compile(r"\b\w+\b")


def api_tokens(masked: str) -> list[tuple[int, str]]:
    """(start, name) of every whole-word occurrence of a Device OS anchor or event name, in order."""
    return [(m.start(), m.group(1)) for m in _tables().token_re.finditer(masked)]


def extract_uses(
    masked: str, user_names: set[str], var_types: dict[str, str], tokens: Sequence[tuple[int, str]] | None = None
) -> list[ApiUse]:
    """Regex/scanner engine: every Device OS API use site in blanked source text.

    ``tokens`` is ``api_tokens(masked)`` when the caller has it already (one scan per text).
    """
    t = _tables()
    apis = apidata.all_apis()
    uses: list[ApiUse] = []
    anchors = t.anchors
    for start, name in api_tokens(masked) if tokens is None else tokens:
        if name not in anchors or name in user_names or name in var_types or not _qualifier_ok(masked, start):
            continue
        end = start + len(name)
        if name in t.objects:
            mm = _MEMBER_RE.match(masked, end)
            if mm:
                key = f"{name}.{mm.group(1)}"
                args, _ = _call_args(masked, mm.end())
                if key in apis or key in _overload_keys():
                    uses.append(ApiUse(key, start, mm.end(), args, _arg_types(args, var_types)))
                    if key == "System.on" and args is not None:
                        uses.extend(_event_uses(masked, mm.end(), args, user_names))
                    continue
        if name in t.classes:
            sm = _SCOPE_RE.match(masked, end)
            if sm:
                for key, key_end in ((f"{name}::{sm.group(1)}::{sm.group(2)}", sm.end(2)),
                                     (f"{name}::{sm.group(1)}", sm.end(1))):  # fmt: skip
                    if sm.group(2) is None and key.endswith("::None"):
                        continue
                    if key in apis:
                        uses.append(ApiUse(key, start, key_end))
                        break
                else:
                    if name in apis:
                        uses.append(ApiUse(name, start, end))
                continue
        if name not in t.plain and name not in _overload_keys():
            continue
        args, after = _call_args(masked, end)
        if name in t.call_only and args is None:
            continue
        uses.append(ApiUse(name, start, end, args, _arg_types(args, var_types)))
        if name in t.classes:
            _constructor_and_chain(masked, uses, name, start, end, args, after, var_types)
    if var_types:
        var_re = re.compile(r"\b(" + "|".join(map(re.escape, var_types)) + r")\b")
        for m in var_re.finditer(masked):
            if _qualifier_ok(masked, m.start()):
                _chain(masked, uses, var_types[m.group(1)], m.end(), var_types)
    uses.sort(key=lambda u: (u.start, u.end))
    return uses


def _constructor_and_chain(
    masked: str, uses: list[ApiUse], name: str, start: int, end: int, args: str | None, after: int,
    var_types: dict[str, str],
) -> None:  # fmt: skip
    """``Timer t(1000, &App::tick, *this)`` / ``SystemSleepConfiguration().mode(...)``: constructor
    arguments (for constructor overloads) and builder chains on temporaries."""
    ctor_key = f"{name}::{name}"
    if args is not None:  # a temporary: Name(...)
        if ctor_key in _overload_keys():
            uses.append(ApiUse(ctor_key, start, end, args, _arg_types(args, var_types)))
        _chain(masked, uses, name, after, var_types)
        return
    if ctor_key not in _overload_keys():
        return
    vm = re.compile(r"\s*[*&]?\s*[A-Za-z_]\w*\s*\(").match(masked, end)
    if vm:
        cargs, _ = _call_args(masked, vm.end() - 1)
        uses.append(ApiUse(ctor_key, start, end, cargs, _arg_types(cargs, var_types)))


def _event_uses(masked: str, args_start: int, args: str, user_names: set[str]) -> list[ApiUse]:
    """System event names in the first argument of ``System.on(...)`` (``reset | setup_begin``)."""
    t = _tables()
    depth, first_end = 0, len(args)
    for i, c in enumerate(args):
        depth += c in "([{"
        depth -= c in ")]}"
        if c == "," and depth == 0:
            first_end = i
            break
    base = masked.index("(", args_start) + 1
    out = []
    for m in re.finditer(r"\b\w+\b", args[:first_end]):
        if m.group(0) in t.events and m.group(0) not in user_names:
            out.append(ApiUse(m.group(0), base + m.start(), base + m.end()))
    return out


# --------------------------------------------------------------------------------------------------
# 4b. Tree-sitter engine (same resolution, different use-site extraction) -- measured in bench/
# --------------------------------------------------------------------------------------------------


@cache
def _ts_parser() -> object:
    import tree_sitter
    import tree_sitter_cpp

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_cpp.language()))


_TS_QUERY = """
(identifier) @ident
(field_identifier) @field
(type_identifier) @type
(namespace_identifier) @scope
"""


@cache
def _ts_query() -> object:
    import tree_sitter
    import tree_sitter_cpp

    return tree_sitter.Query(tree_sitter.Language(tree_sitter_cpp.language()), _TS_QUERY)


def extract_uses_treesitter(
    text: str, masked: str, user_names: set[str], var_types: dict[str, str],
    tokens: Sequence[tuple[int, str]] | None = None,
) -> list[ApiUse]:  # fmt: skip
    """Tree-sitter engine: candidate identifiers come from the C++ syntax tree instead of regex anchors.

    Offsets are byte offsets of the UTF-8 text mapped back to characters. Each candidate is then
    resolved exactly like the scanner does, so the two engines differ only in what they see as code.
    """
    import tree_sitter

    data = text.encode("utf-8")
    tree = _ts_parser().parse(data)  # type: ignore[attr-defined]
    cursor = tree_sitter.QueryCursor(_ts_query())  # type: ignore[arg-type]
    ascii_text = len(data) == len(text)
    to_char = (lambda b: b) if ascii_text else (lambda b: len(data[:b].decode("utf-8", "replace")))
    names = set()
    for _pattern, caps in cursor.matches(tree.root_node):
        for nodes in caps.values():
            for node in nodes:
                names.add(to_char(node.start_byte))
    # Resolve with the scanner, restricted to positions the parser saw as identifiers in code.
    return [u for u in extract_uses(masked, user_names, var_types, tokens) if u.start in names or _ts_inner(u, names)]


def _ts_inner(use: ApiUse, starts: set[int]) -> bool:
    return any(use.start <= s < use.end for s in starts)


# --------------------------------------------------------------------------------------------------
# 5. Findings
# --------------------------------------------------------------------------------------------------

_CHRONO_RE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|min|h|us|ns)\b|\bchrono\s*::|\bstd::chrono\b")


def _overload_used(ov: Availability, use: ApiUse) -> bool:
    """Is the call ``use`` the later argument form ``ov`` describes? Only forms we can tell apart."""
    args = use.args
    if args is None:
        return False
    note = ov.note
    if "chrono" in note and _CHRONO_RE.search(args):
        return True
    if "member-function" in note and re.search(r"&\s*\w+\s*::\s*\w+", args):
        return True
    if "std::function" in note and re.search(r"\bstd\s*::\s*bind\b|\[[^\]]*\]\s*\(", args):
        return True
    if "initializer_list or array" in note and "{" in args:
        return True
    for word in re.findall(r"\b([A-Z][a-z]+(?:[A-Z][a-z]*)+)\b", note):
        if word in use.arg_types or re.search(rf"\b{word}\b", args):
            return True
    return False


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


def _reason_suffix(reason: str | None) -> str:
    if not reason:
        return ""
    reason = reason.strip()
    return f" {reason}" if reason.startswith("(") else f" ({reason})"


def _guard_text(notes: Sequence[GuardNote], target: DeviceOSVersion) -> tuple[str, tuple[Related, ...], str]:
    if not notes:
        return "", (), ""
    n = notes[-1]
    names = ", ".join(dict.fromkeys(n.macros))
    text = (f"; the #if on line {n.line} does not exclude it: {names} is not defined in Device OS {target}, "
            f"and an undefined name is 0 in #if")  # fmt: skip
    return text, (Related(f"guard evaluated true on {target}: {n.text}"),), n.text


def findings_for_use(
    use: ApiUse,
    lines: _Lines,
    path: str,
    target: DeviceOSVersion,
    platform_id: int | None,
    notes: Sequence[GuardNote] = (),
    target_reason: str | None = None,
) -> list[Finding]:
    """FS201-FS204 for one use site (empty when the target has it).

    The message, facts and fixes depend only on the API (and, for overloaded APIs, the argument text),
    the target and the guard notes, and dense files repeat the same API hundreds of times: they are
    built once per such key (``_finding_templates``) and only the span is made per use.
    """
    return _findings_at(use, 0, lines, path, target, platform_id, notes, target_reason)


def _findings_at(
    use: ApiUse, base: int, lines: _Lines, path: str, target: DeviceOSVersion, platform_id: int | None,
    notes: Sequence[GuardNote], target_reason: str | None,
) -> list[Finding]:  # fmt: skip
    """``findings_for_use`` for a use whose offsets are relative to ``base``."""
    overloaded = bool(apidata.overloads(use.api))
    key = (use.api, use.args if overloaded else None, use.arg_types if overloaded else (), target, platform_id,
           tuple(notes), target_reason)  # fmt: skip
    templates = _TEMPLATES.get(key)
    if templates is None:
        if len(_TEMPLATES) > 8192:
            _TEMPLATES.clear()
        templates = _TEMPLATES[key] = tuple(_finding_templates(use, target, platform_id, notes, target_reason))
    if not templates:
        return []
    l1, c1 = lines.pos(base + use.start)
    l2, c2 = lines.pos(base + use.end)
    span = Span(path, l1, c1, l2, c2)
    return [Finding(f.code, f.severity, f.message, span, dict(f.facts), f.fixes, _with_file(f.related, path))
            for f in templates]  # fmt: skip


def _with_file(related: tuple[Related, ...], path: str) -> tuple[Related, ...]:
    """Templates are shared across files: put ``path`` into the guard notes' spans."""
    if not related:
        return related
    return tuple(Related(r.message, Span(path, r.span.line if r.span else 1, 1)) for r in related)


_TEMPLATES: dict[tuple[object, ...], tuple[Finding, ...]] = {}


def _finding_templates(
    use: ApiUse, target: DeviceOSVersion, platform_id: int | None, notes: Sequence[GuardNote],
    target_reason: str | None,
) -> list[Finding]:  # fmt: skip
    """The findings for ``use`` without a span (``findings_for_use`` adds it)."""
    a = apidata.availability(use.api)
    overloads = apidata.overloads(use.api)
    if a is None and not overloads:
        return []
    span = None
    reason = _reason_suffix(target_reason)
    guard_note, related, _ = _guard_text(notes, target)
    related = tuple(Related(r.message, Span(None, notes[-1].line, 1)) for r in related)
    facts_base = {"api": use.api, "target": str(target), "platform_id": platform_id}
    if a is not None:
        rule = a.platform_problem(platform_id)
        if rule is not None:
            facts = apidata.platform_facts(platform_id)
            pname = facts.display_name if facts else str(platform_id)
            msg = (f"`{use.api}` is for {rule.label} only" if rule.kind == "only" else
                   f"`{use.api}` is not available on {rule.label}")  # fmt: skip
            return [Finding("FS203", Severity.ERROR, f"{msg}; this project targets {pname}{reason}", span,
                            {**facts_base, "since": str(a.since), "platform": pname, "rule": rule.clause})]  # fmt: skip
        if not a.available_in(target, platform_id):
            return [_version_finding(a, use, span, target, platform_id, reason, guard_note, related, facts_base)]
    for ov in overloads:
        if not ov.available_in(target, platform_id) and _overload_used(ov, use):
            msg = (f"this form of `{use.api}` ({ov.note.split(';')[-1].strip()}) needs Device OS {ov.since}; "
                   f"this project targets {target}{reason}{guard_note}")  # fmt: skip
            return [Finding("FS204", Severity.ERROR, msg, span, {**facts_base, "since": str(ov.since), "overload": ov.note},
                            _fixes(ov, target, platform_id, reason), related)]  # fmt: skip
    return []


def _version_finding(
    a: Availability, use: ApiUse, span: Span | None, target: DeviceOSVersion, platform_id: int | None, reason: str,
    guard_note: str, related: tuple[Related, ...], facts_base: dict[str, object],
) -> Finding:  # fmt: skip
    base = target.base
    fixes = _fixes(a, target, platform_id, reason)
    if a.removed_from is not None and base >= a.removed_from:
        msg = f"`{a.api}` was removed in Device OS {a.removed_from}; this project targets {target}{reason}{guard_note}"
        return Finding("FS202", Severity.ERROR, msg, span,
                       {**facts_base, "since": str(a.since), "removed_from": str(a.removed_from)},
                       tuple(f for f in fixes if f.kind == "guard"), related)  # fmt: skip
    line_start = a.first_release_for_line(target)
    on_other_line = a.earliest() <= base
    if on_other_line:
        if line_start is not None and line_start > base:
            why = f"it arrived on the {base.major}.x line in {line_start}"
        else:
            why = f"it is absent from {base} although {a.earliest()} has it"
        others = ", ".join(f"{m}.x: {s}" for m, s in a.lines if m != base.major)
        msg = (f"`{a.api}` is not in Device OS {target}: {why}" + (f" ({others})" if others else "")
               + f"; this project targets {target}{reason}{guard_note}")  # fmt: skip
        since = line_start if line_start is not None and line_start > base else a.since
        return Finding("FS202", Severity.ERROR, msg, span, {**facts_base, "since": str(since)}, fixes, related)
    needed = (
        line_start if (line_start is not None and line_start > base and a.lines) else a.since_for_platform(platform_id)
    )
    msg = f"`{a.api}` needs Device OS {needed}; this project targets {target}{reason}{guard_note}"
    return Finding("FS201", Severity.ERROR, msg, span, {**facts_base, "since": str(needed)}, fixes, related)


def _preprocessor_findings(pre: Preprocessed, lines: _Lines, path: str, target: DeviceOSVersion) -> list[Finding]:
    out = []
    for start, end, text, macro in pre.errors:
        l1, c1 = lines.pos(start)
        l2, c2 = lines.pos(end)
        msg = (f"`{macro}` is not defined before Device OS 1.2.0, so `{text}` is a preprocessor error on "
               f"{target}; compare with a SYSTEM_VERSION_vXYZ macro guarded by defined(...)")  # fmt: skip
        out.append(Finding("FS205", Severity.ERROR, msg, Span(path, l1, c1, l2, c2),
                           {"api": macro, "since": "1.2.0", "target": str(target)}))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

_CACHE: OrderedDict[tuple[object, ...], tuple[Finding, ...]] = OrderedDict()
_CACHE_SIZE = 256
_LRU_LOCK = threading.Lock()  # the language server lints in worker threads; OrderedDict moves are not atomic


def lint_source(
    text: str,
    path: str,
    target: DeviceOSVersion | str,
    platform_id: int | None,
    *,
    target_reason: str | None = None,
    project_names: frozenset[str] | None = None,
    engine: str = "scan",
) -> list[Finding]:
    """FS2xx findings for one source file targeting ``target`` on ``platform_id`` (None = any platform).

    ``project_names`` are names other project files define (from ``project_defined_names``), so a
    helper declared in another file still shadows a Device OS name. Results are cached by content
    hash, so re-linting an unchanged file is a dict lookup. ``engine`` is ``"scan"`` (default) or
    ``"treesitter"`` (for comparison; see bench/bench_apilint.py).
    """
    target = DeviceOSVersion.parse(target) if isinstance(target, str) else target
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    key = (digest, path, str(target), platform_id, target_reason, project_names, engine)
    with _LRU_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return list(hit)
    result = tuple(_lint(text, path, target, platform_id, target_reason, project_names or frozenset(), engine))
    with _LRU_LOCK:
        _CACHE[key] = result
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return list(result)


# Incremental re-check. The text is cut into chunks after each top-level closing brace (a line that is
# just ``}`` or ``};``). A use site is resolved by looking forward through brackets and backward over
# whitespace only, so in a chunk whose brackets balance, every use resolves the same whether the chunk
# is read alone or inside the file: its resolved uses are cached by (chunk text, names that shadow,
# typed variables). Unbalanced chunks are merged with the next ones until the brackets balance. A
# one-line edit thus re-resolves one chunk; the whole-file steps (blanking, #if regions, definitions)
# are cheap or memoised themselves.
_CHUNK_END_RE = re.compile(r"^\};?[ \t]*\n", re.M)


@dataclass(frozen=True)
class _Chunk:
    """Per chunk text: its API-name tokens (chunk-relative) and its bracket balance."""

    tokens: tuple[tuple[int, str], ...]
    names: frozenset[str]  # the names in ``tokens``: shadowing and class facts matter only for these
    open_template: bool  # ends inside ``<...`` (a typed-variable match could run into the next chunk)
    depth: int  # brackets opened minus closed
    low: int  # lowest running depth (negative: closes something opened before the chunk)

    @classmethod
    def of(cls, chunk: str) -> _Chunk:
        running = list(accumulate(map(_BRACKET_VALUE.__getitem__, _NOT_BRACKET_RE.sub("", chunk))))
        depth = running[-1] if running else 0
        tokens = tuple(api_tokens(chunk))
        open_template = bool(_OPEN_TEMPLATE_RE.search(chunk))
        return cls(tokens, frozenset(n for _, n in tokens), open_template, depth, min(0, min(running, default=0)))


_OPEN_TEMPLATE_RE = re.compile(r"<[^<>;()]*\Z")
_NOT_BRACKET_RE = re.compile(r"[^()\[\]{}]+")
_BRACKET_VALUE = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


_CHUNKS: dict[str, _Chunk] = {}
_RESOLVED: dict[tuple[object, ...], tuple[ApiUse, ...]] = {}
_MEMO_LIMIT = 20000


def _chunk(text: str) -> _Chunk:
    hit = _CHUNKS.get(text)
    if hit is None:
        if len(_CHUNKS) > _MEMO_LIMIT:
            _CHUNKS.clear()
        hit = _CHUNKS[text] = _Chunk.of(text)
    return hit


@dataclass(frozen=True)
class _Scan:
    """Everything about one text that does not depend on the target: computed once per content.

    Why: the language server re-lints on every keystroke and ``lint_project`` first collects names
    across files, then lints each; both see the same texts repeatedly.
    """

    masked: str
    lines: _Lines
    groups: tuple[_Group, ...]
    tokens: tuple[tuple[int, str], ...]  # api_tokens(masked)
    present: frozenset[str]  # the names in ``tokens``
    shadowed: frozenset[str]  # those of them the text defines itself


_SCANS: OrderedDict[str, _Scan] = OrderedDict()
_SCANS_SIZE = 64


def _scan(text: str) -> _Scan:
    with _LRU_LOCK:
        hit = _SCANS.get(text)
        if hit is not None:
            _SCANS.move_to_end(text)
            return hit
    masked = blank_literals(text)
    groups = _balanced_groups(masked)
    tokens = tuple((g.start + rel, name) for g in groups for rel, name in g.tokens)
    present = frozenset(n for _, n in tokens)
    scan = _Scan(masked, _Lines(masked), groups, tokens, present, frozenset(shadowing_names(masked, tokens)))
    with _LRU_LOCK:
        _SCANS[text] = scan
        if len(_SCANS) > _SCANS_SIZE:
            _SCANS.popitem(last=False)
    return scan


class _Group(NamedTuple):
    """A run of chunks whose brackets balance (usually one chunk): where it starts, its text, its facts."""

    start: int
    text: str
    tokens: tuple[tuple[int, str], ...]  # group-relative
    names: frozenset[str]
    open_template: bool


def _balanced_groups(masked: str) -> tuple[_Group, ...]:
    """The chunks of ``masked``, merged into runs whose brackets balance."""
    cuts = [0, *(m.end() for m in _CHUNK_END_RE.finditer(masked)), len(masked)]
    groups: list[_Group] = []
    i = 0
    while i < len(cuts) - 1:
        start, end = cuts[i], cuts[i + 1]
        info = _chunk(masked[start:end])
        depth, low = info.depth, info.low
        while (depth != 0 or low < 0) and i + 2 < len(cuts):  # unbalanced: take the next chunk too
            i += 1
            end = cuts[i + 1]
            nxt = _chunk(masked[cuts[i] : end])
            low = min(low, depth + nxt.low)
            depth += nxt.depth
        text = masked[start:end]
        if start == cuts[i]:
            groups.append(_Group(start, text, info.tokens, info.names, info.open_template))
        else:
            merged = _Chunk.of(text)
            groups.append(_Group(start, text, merged.tokens, merged.names, merged.open_template))
        i += 1
    return tuple(groups)


def _lint(
    text: str, path: str, target: DeviceOSVersion, platform_id: int | None, target_reason: str | None,
    project_names: frozenset[str], engine: str,
) -> list[Finding]:  # fmt: skip
    scan = _scan(text)
    masked, lines = scan.masked, scan.lines
    pre = preprocess(masked, target, platform_id, lines)
    names = set(scan.shadowed) | pre.defined_names | (project_names & scan.present)
    var_types = _typed_variables_by_group(scan, names)
    if engine == "treesitter":
        located = [(0, u) for u in extract_uses_treesitter(text, masked, names, var_types, scan.tokens)]
    else:
        located = _resolved_uses(scan, names, var_types)
    findings = _preprocessor_findings(pre, lines, path, target)
    seen: set[tuple[str, int]] = set()
    for base, use in located:
        start = base + use.start
        region = pre.state_at(start)
        if region.state is False or (use.api, start) in seen:
            continue
        seen.add((use.api, start))
        findings.extend(_findings_at(use, base, lines, path, target, platform_id, region.notes, target_reason))
    return findings


def _typed_variables_by_group(scan: _Scan, names: set[str]) -> dict[str, str]:
    """``typed_variables`` computed per chunk group and memoised by (group text, classes it mentions).

    A declaration cannot span two groups (it would have to cross the group's closing ``}``), except
    inside an unclosed ``<...``: then the whole text is scanned as before.
    """
    if any(g.open_template for g in scan.groups):
        return typed_variables(scan.masked, names, scan.present)
    classes = _tables().classes
    out: dict[str, str] = {}
    for g in scan.groups:
        mentioned = tuple(sorted(c for c in classes.intersection(g.names) if c not in names))
        if not mentioned:
            continue
        key = (g.text, mentioned)
        pairs = _TYPED.get(key)
        if pairs is None:
            if len(_TYPED) > _MEMO_LIMIT:
                _TYPED.clear()
            pairs = _TYPED[key] = tuple(typed_variables(g.text, names, mentioned).items())
        out.update(pairs)
    return out


_TYPED: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = {}


def _resolved_uses(scan: _Scan, names: set[str], var_types: dict[str, str]) -> list[tuple[int, ApiUse]]:
    """(chunk start, chunk-relative use) for every use, in file order; chunks resolved before are reused.

    A chunk's uses depend on the shadowing names only through the API names it contains, and on the
    typed variables only through those it mentions (a substring test over-approximates the words, which
    is harmless), so its cache key holds just those: declaring a variable re-resolves the chunks that use it.
    """
    out: list[tuple[int, ApiUse]] = []
    for g in scan.groups:
        local_names = frozenset(names.intersection(g.names))
        local_vars = {v: c for v, c in var_types.items() if v in g.text}
        key = (g.text, local_names, tuple(local_vars.items()))
        uses = _RESOLVED.get(key)
        if uses is None:
            if len(_RESOLVED) > _MEMO_LIMIT:
                _RESOLVED.clear()
            uses = _RESOLVED[key] = tuple(extract_uses(g.text, set(local_names), local_vars, g.tokens))
        out.extend((g.start, u) for u in uses)
    return out


def clear_caches() -> None:
    """Forget every cached result and memo (benchmarks measure cold runs; tests compare warm with cold)."""
    with _LRU_LOCK:
        _CACHE.clear()
        _SCANS.clear()
    for memo in (_CHUNKS, _RESOLVED, _TYPED, _TEMPLATES, _EVAL_MEMO, _FIX_CACHE):
        memo.clear()


def clear_chunk_memos() -> None:
    """Forget resolved chunks only (the project benchmark's files share code that real projects would not)."""
    _CHUNKS.clear()
    _RESOLVED.clear()
    _TYPED.clear()


def project_defined_names(texts: Iterable[str]) -> frozenset[str]:
    """Device OS names that some project source defines itself (shadowing applies across files).

    Only names that could shadow a Device OS API are collected (``user_defined_names`` restricted to
    the API and event names each file mentions): those are the only ones ``lint_source`` asks about.
    """
    out: set[str] = set()
    for text in texts:
        out |= _scan(text).shadowed
    return frozenset(out)


def lint_project(
    root: Path, target: str | DeviceOSVersion, platform: str | int | None, *, files: Sequence[str] | None = None,
    target_reason: str | None = None,
) -> list[Finding]:  # fmt: skip
    """Lint every source file of a project; spans use project-relative POSIX paths.

    ``files`` (relative paths) defaults to the project's file selection (``fieldsafe.project``).
    """
    from fieldsafe import platforms

    platform_id = None if platform is None else platforms.get(platform).id
    rels = list(files) if files is not None else source_files(root)
    texts = {rel: (root / rel).read_text(encoding="utf-8", errors="replace") for rel in rels}
    names = project_defined_names(texts.values())
    out: list[Finding] = []
    for rel, text in texts.items():
        out.extend(lint_source(text, rel, target, platform_id, target_reason=target_reason, project_names=names))
    return out


def source_files(root: Path) -> list[str]:
    """C/C++ sources of the project: exactly the files a compile uploads (``fieldsafe.project.select_files``)."""
    from fieldsafe.project import select_files

    return sorted(r for r in select_files(root) if r.lower().endswith(SOURCE_SUFFIXES))


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
