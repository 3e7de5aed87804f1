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

Pure: no editor imports. ``lint_source`` caches results per (content hash, target, platform).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

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


def _blank(match: re.Match[str]) -> str:
    text = match.group(0)
    keep = text[0] if text[0] in "\"'R" else " "
    return keep + re.sub(r"[^\n]", " ", text[1:])


def blank_literals(text: str) -> str:
    """``text`` with comments and string/char literals replaced by spaces (same length, newlines kept)."""
    return _LITERAL_RE.sub(_blank, text)


class _Lines:
    """Offset -> (1-based line, 1-based column) conversion."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

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

    _BINARY = {
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
        low = _FUNCTION_MACROS[name] if name == "SYSTEM_VERSION_DEFAULT" else _FUNCTION_MACROS[name] + (
            args[3] if len(args) > 3 and args[3] is not None else 0
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
        env = _Env(target, platform_id, defines)
        try:
            value = _ExprParser(expr, env).parse()
        except PreprocessorError as exc:
            errors.append((m.start(), m.end(), m.group(0).strip(), str(exc)))
            return False, None
        except ValueError:
            return None, None
        result = None if value is None else bool(value)
        note = None
        if result and env.undefined_version_macros:
            note = GuardNote(lines.pos(m.start())[0], m.group(0).strip(), tuple(env.undefined_version_macros))
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
    ["return", "else", "new", "delete", "throw", "case", "goto", "co_return", "co_yield", "sizeof", "typeof", "decltype", "if", "while", "for", "switch", "do", "typedef", "using", "namespace", "public", "private", "protected", "operator", "template", "typename", "const", "static"]
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
    anchor_re: re.Pattern[str]

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
        for key in apidata.all_apis():
            if "." in key:
                continue
        overloaded = {k.split(".", 1)[0] for k in _overload_keys() if "." in k}
        objects |= overloaded
        anchors = sorted(objects | classes | plain | {k for k in _overload_keys() if "." not in k and "::" not in k},
                         key=len, reverse=True)  # fmt: skip
        anchor_re = re.compile(r"\b(" + "|".join(map(re.escape, anchors)) + r")\b")
        return cls(frozenset(objects), frozenset(classes), frozenset(plain), frozenset(call_only),
                   frozenset(events), anchor_re)  # fmt: skip


_CALL_MACROS = frozenset({"waitFor", "waitUntil", "waitForNot", "waitUntilNot"})


@cache
def _overload_keys() -> frozenset[str]:
    from fieldsafe._data import read_tsv

    return frozenset(r["api"] for r in read_tsv("device-os-data/api-overloads.tsv"))


def typed_variables(masked: str, user_names: set[str]) -> dict[str, str]:
    """``config`` -> ``SystemSleepConfiguration`` for variables declared with a Device OS class type."""
    classes = [c for c in _tables().classes if c not in user_names]
    if not classes:
        return {}
    pattern = re.compile(
        r"\b(" + "|".join(map(re.escape, sorted(classes, key=len, reverse=True))) + r")\b\s*(?:<[^<>;()]*>)?"
        r"\s*(?:const\s*)?[*&]?\s*\b([A-Za-z_]\w*)\s*(?=[;=({\[,)])"
    )
    out: dict[str, str] = {}
    for m in pattern.finditer(masked):
        var = m.group(2)
        if var not in _KEYWORDS and var not in _tables().classes:
            out[var] = m.group(1)
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


def _match_paren(masked: str, open_index: int) -> int:
    """Index of the ``)`` matching ``masked[open_index] == '('`` (or len on unbalanced text)."""
    depth = 0
    for i in range(open_index, len(masked)):
        c = masked[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i
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
    i = pos - 1
    while i >= 0 and masked[i] in " \t\r\n":
        i -= 1
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
    return tuple(var_types[w] for w in re.findall(r"\b\w+\b", args) if w in var_types)


def extract_uses(masked: str, user_names: set[str], var_types: dict[str, str]) -> list[ApiUse]:
    """Regex/scanner engine: every Device OS API use site in blanked source text."""
    t = _tables()
    apis = apidata.all_apis()
    uses: list[ApiUse] = []
    for m in t.anchor_re.finditer(masked):
        name, start = m.group(1), m.start()
        if name in user_names or name in var_types or not _qualifier_ok(masked, start):
            continue
        end = m.end()
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


def extract_uses_treesitter(text: str, masked: str, user_names: set[str], var_types: dict[str, str]) -> list[ApiUse]:
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
    return [u for u in extract_uses(masked, user_names, var_types) if u.start in names or _ts_inner(u, names)]


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
    """FS201-FS204 for one use site (empty when the target has it)."""
    a = apidata.availability(use.api)
    overloads = apidata.overloads(use.api)
    if a is None and not overloads:
        return []
    l1, c1 = lines.pos(use.start)
    l2, c2 = lines.pos(use.end)
    span = Span(path, l1, c1, l2, c2)
    reason = _reason_suffix(target_reason)
    guard_note, related, _ = _guard_text(notes, target)
    related = tuple(Related(r.message, Span(path, notes[-1].line, 1)) for r in related)
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
    a: Availability, use: ApiUse, span: Span, target: DeviceOSVersion, platform_id: int | None, reason: str,
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
    needed = line_start if (line_start is not None and line_start > base and a.lines) else a.since_for_platform(platform_id)
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
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return list(hit)
    result = tuple(_lint(text, path, target, platform_id, target_reason, project_names or frozenset(), engine))
    _CACHE[key] = result
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return list(result)


def _lint(
    text: str, path: str, target: DeviceOSVersion, platform_id: int | None, target_reason: str | None,
    project_names: frozenset[str], engine: str,
) -> list[Finding]:  # fmt: skip
    masked = blank_literals(text)
    lines = _Lines(masked)
    pre = preprocess(masked, target, platform_id, lines)
    names = user_defined_names(masked) | pre.defined_names | set(project_names)
    var_types = typed_variables(masked, names)
    if engine == "treesitter":
        uses = extract_uses_treesitter(text, masked, names, var_types)
    else:
        uses = extract_uses(masked, names, var_types)
    findings = _preprocessor_findings(pre, lines, path, target)
    seen: set[tuple[str, int]] = set()
    for use in uses:
        region = pre.state_at(use.start)
        if region.state is False or (use.api, use.start) in seen:
            continue
        seen.add((use.api, use.start))
        findings.extend(findings_for_use(use, lines, path, target, platform_id, region.notes, target_reason))
    return findings


def project_defined_names(texts: Iterable[str]) -> frozenset[str]:
    """Names defined anywhere in the project's sources (shadowing applies across files)."""
    out: set[str] = set()
    for text in texts:
        masked = blank_literals(text)
        out |= user_defined_names(masked)
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
    """C/C++ sources of the project: ``fieldsafe.project.select_files`` when available, else a glob."""
    try:
        from fieldsafe.project import select_files
    except ImportError:  # the project module is another helper's; fall back to a plain glob
        select_files = None  # type: ignore[assignment]
    if select_files is not None:
        rels = [str(p) for p in select_files(root)]
    else:
        rels = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
    return sorted(r for r in rels if r.lower().endswith(SOURCE_SUFFIXES))


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
    first = line_start + len(masked[line_start:].split("\n", 1)[0]) - len(masked[line_start:].split("\n", 1)[0].lstrip())
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
