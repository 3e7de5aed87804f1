"""Extraction: names the project defines (shadowing), variables of Device OS types, and API use sites.

Two engines share the resolution: the regex/scanner one (default) and tree-sitter (measured in bench/).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from fieldsafe import apidata

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
    token_re: re.Pattern[str]  # every identifier (kept when it is in ``wanted``)
    wanted: frozenset[str] = frozenset()  # anchors | events

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
        idx_objects, idx_types, idx_plain, idx_calls = _index_names(events)
        objects |= idx_objects
        classes |= idx_types
        plain |= idx_plain
        call_only |= idx_calls - set(apis)
        anchors = objects | classes | plain | {k for k in _overload_keys() if "." not in k and "::" not in k}
        token_re = re.compile(r"(?<![\w])[A-Za-z_]\w*")
        return cls(frozenset(objects), frozenset(classes), frozenset(plain), frozenset(call_only),
                   frozenset(events), frozenset(anchors), token_re, frozenset(anchors | events))  # fmt: skip


def _index_names(events: set[str]) -> tuple[set[str], set[str], set[str], set[str]]:
    """(objects, types, plain names, call-only names) from the symbol index that can ever be missing.

    A name declared on every platform at every release can never produce a finding, so it is left
    out (fewer tokens to resolve). Undocumented lowercase names that read like ordinary words (``power``,
    ``detail``, ``retained``) are left out too: user code uses such words for its own variables.
    """
    from fieldsafe import symindex

    built = symindex.Presence(symindex._index().built).mask
    objects: set[str] = set()
    types: set[str] = set()
    plain: set[str] = set()
    calls: set[str] = set()
    documented = apidata.all_apis()
    for name in symindex.top_level_names():
        presence = symindex.plain(name)
        if presence is None or name in ("true", "false"):
            continue
        kinds = {r.kind for r in presence.rows}
        if kinds & {"namespace", "using-directive"} or any("build-flag" in r.note for r in presence.rows):
            continue
        otype = symindex.object_type(name)
        if otype is not None and (presence.mask != built or _restricted_members(otype, built)):
            objects.add(name)
        if kinds & {"class", "struct", "union", "typedef", "enum"} and (
            presence.mask != built or any(_restricted_members(q, built) for q, _ in symindex.visible(name))
        ):
            types.add(name)
        if presence.mask == built or (name in events and not _distinctive(name)):
            continue
        if name not in documented and not _distinctive(name):
            continue
        plain.add(name)
        if kinds <= {"function", "macro-function", "method"}:
            calls.add(name)
    return objects, types, plain, calls


def _restricted_members(cls: str, built: int) -> bool:
    """Does some member of ``cls`` (or of a base) ever go missing? If not, uses of it can never be findings."""
    from fieldsafe import symindex

    return any(symindex._class_member(cls, m) != built for m in symindex.class_members(cls)) or any(
        symindex._class_member(cls, m) != built
        for r in symindex.rows(cls)
        for b in (r.note_value("bases") or "").split(",")
        if b
        for q in (b.strip().split("<", 1)[0], f"spark::{b.strip()}", f"particle::{b.strip()}")
        for m in symindex.class_members(q)
    )


def _distinctive(name: str) -> bool:
    """Could a user plausibly name their own variable this? (``power`` yes, ``time32_t``/``D21`` no)."""
    return len(name) >= 3 and (any(c.isupper() or c.isdigit() for c in name) or "_" in name.strip("_"))


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
    for _ in range(32):
        m = _MEMBER_RE.match(masked, pos)
        if not m:
            return
        key = f"{cls}::{m.group(1)}"
        args, after = _call_args(masked, m.end())
        known = _known(key)
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
    """(start, name) of every whole-word occurrence of a Device OS anchor or event name, in order.

    One identifier regex and a set lookup: the anchors are thousands of names (the symbol index), too
    many for an alternation.
    """
    t = _tables()
    wanted = t.wanted
    return [(m.start(), w) for m in t.token_re.finditer(masked) if (w := m.group()) in wanted]


def _known(key: str) -> bool:
    """Is ``key`` (``Obj.member``, ``Class::member``) a documented API, an overload row or in the symbol index?"""
    if key in apidata.all_apis() or key in _overload_keys():
        return True
    from fieldsafe import symindex

    return symindex.key_presence(key) is not None


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
                if _known(key):
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
                    if _known(key):
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
    uses.extend(chrono_literal_uses(masked, uses))
    uses.sort(key=lambda u: (u.start, u.end))
    return uses


CHRONO_LITERALS = "std::chrono literals"
_CHRONO_LITERAL_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:ms|s|min|h|us|ns)\b")
CHRONO_USING_RE = re.compile(
    r"\busing\s+namespace\s+(?:std\s*::\s*)?(?:literals\s*::\s*)?(?:chrono_literals|literals|chrono|std)\s*;"
)


def chrono_literal_uses(masked: str, uses: Sequence[ApiUse]) -> list[ApiUse]:
    """``10s``, ``6min``: each needs ``std::chrono_literals`` in scope, which Device OS makes global from
    1.5.0 (a using-directive in ``application.h``). Literals inside the arguments of a call that has a
    chrono overload row are left to that row (FS204 names the form); the caller drops them all when
    the file has its own using-directive.
    """
    literals = list(_CHRONO_LITERAL_RE.finditer(masked))
    if not literals:
        return []
    spans = []
    for u in uses:
        if u.args is not None and any("chrono" in ov.note for ov in apidata.overloads(u.api)):
            open_at = masked.find("(", u.end)
            if open_at >= 0:
                spans.append((open_at, _match_paren(masked, open_at)))
    out = []
    for m in literals:
        if not any(a < m.start() < b for a, b in spans):
            out.append(ApiUse(CHRONO_LITERALS, m.start(), m.end(), m.group()))  # args: the literal, for the message
    return out


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
    return [u for u in extract_uses(masked, user_names, var_types, tokens)
            if u.start in names or _ts_inner(u, names) or u.api == CHRONO_LITERALS]  # fmt: skip


def _ts_inner(use: ApiUse, starts: set[int]) -> bool:
    return any(use.start <= s < use.end for s in starts)
