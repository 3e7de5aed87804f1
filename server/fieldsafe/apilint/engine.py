"""Public API and the incremental re-check: ``lint_source`` (cached), ``lint_project``, cache control."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from fieldsafe.apilint.extract import (
    CHRONO_LITERALS,
    CHRONO_USING_RE,
    ApiUse,
    _tables,
    api_tokens,
    extract_uses,
    extract_uses_treesitter,
    shadowing_names,
    typed_variables,
)
from fieldsafe.apilint.fixes import _FIX_CACHE
from fieldsafe.apilint.preprocess import _EVAL_MEMO, _Lines, blank_literals, preprocess
from fieldsafe.apilint.rules import _TEMPLATES, _findings_at, _preprocessor_findings
from fieldsafe.findings import Finding
from fieldsafe.versions import DeviceOSVersion

# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

SOURCE_SUFFIXES = (".ino", ".cpp", ".c", ".h", ".hpp", ".cc", ".cxx", ".hh")

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
    own = _scan(text).defines
    macros = None if project_names is None else (project_names if own <= project_names else project_names | own)
    result = tuple(_lint(text, path, target, platform_id, target_reason, project_names or frozenset(), engine, macros))
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
    defines: frozenset[str]  # every macro name the text #defines (for #if outside this file)
    arduino: bool = False  # the text includes Arduino.h (its compatibility names are not in the index)


_DEFINE_RE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.M)
_ARDUINO_RE = re.compile(r"^[ \t]*#[ \t]*include[ \t]*[<\"]Arduino\.h[>\"]", re.M)
ARDUINO_MARK = "ARDUINO"  # Arduino.h defines it; a project file including Arduino.h puts it in the project's names


def defined_macros(masked: str) -> frozenset[str]:
    """Every macro name a (blanked) text ``#define``s, wherever it is."""
    return frozenset(_DEFINE_RE.findall(masked))


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
    defines = defined_macros(masked)
    arduino = "Arduino.h" in text and bool(_ARDUINO_RE.search(text))
    scan = _Scan(masked, _Lines(masked), groups, tokens, present, frozenset(shadowing_names(masked, tokens)), defines,
                 arduino)  # fmt: skip
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
    project_names: frozenset[str], engine: str, project_macros: frozenset[str] | None,
) -> list[Finding]:  # fmt: skip
    scan = _scan(text)
    masked, lines = scan.masked, scan.lines
    pre = preprocess(masked, target, platform_id, lines, project_macros)
    names = set(scan.shadowed) | pre.defined_names | (project_names & scan.present)
    var_types = _typed_variables_by_group(scan, names)
    if engine == "treesitter":
        located = [(0, u) for u in extract_uses_treesitter(text, masked, names, var_types, scan.tokens)]
    else:
        located = _resolved_uses(scan, names, var_types)
    arduino = scan.arduino or ARDUINO_MARK in project_names
    if "namespace" in masked and CHRONO_USING_RE.search(masked):
        located = [(b, u) for b, u in located if u.api != CHRONO_LITERALS]
    findings = _preprocessor_findings(pre, lines, path, target)
    seen: set[tuple[str, int]] = set()
    for base, use in located:
        start = base + use.start
        region = pre.state_at(start)
        if region.state is False or (use.api, start) in seen or pre.in_condition(start):
            continue
        seen.add((use.api, start))
        findings.extend(_findings_at(use, base, lines, path, target, platform_id, region.notes, target_reason, arduino))
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
    """Names some project source defines itself: Device OS names it shadows (across files) and every
    macro it ``#define``s.

    Shadowing: only names that could shadow a Device OS API are collected (``user_defined_names``
    restricted to the API and event names each file mentions). Macros: with them ``#if defined(X)`` for
    an X that neither Device OS nor any project file defines reads as false, as the preprocessor does;
    an X some project file defines stays unknown (its header may or may not be included).
    """
    out: set[str] = set()
    for text in texts:
        scan = _scan(text)
        out |= scan.shadowed | scan.defines
        if scan.arduino:
            out.add(ARDUINO_MARK)
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
    from fieldsafe.safeio import MAX_SOURCE_BYTES, read_text_regular

    texts = {rel: read_text_regular(root / rel, MAX_SOURCE_BYTES) for rel in rels}
    names = project_defined_names(texts.values())
    out: list[Finding] = []
    for rel, text in texts.items():
        out.extend(lint_source(text, rel, target, platform_id, target_reason=target_reason, project_names=names))
    return out


def source_files(root: Path) -> list[str]:
    """C/C++ sources of the project: exactly the files a compile uploads (``fieldsafe.project.select_files``)."""
    from fieldsafe.project import select_files

    return sorted(r for r in select_files(root) if r.lower().endswith(SOURCE_SUFFIXES))
