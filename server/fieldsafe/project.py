"""The project model: where a Particle project starts, which files a cloud compile sends, and the pin.

Why this module exists:

* **Root.** The CLI and the language server get a file or a folder and must agree on which project it
  belongs to, the same way Workbench and particle-cli would (``project.properties`` first).
* **File selection parity.** A cloud compile that sends different files than ``particle compile``
  gives different answers. ``select_files`` mirrors particle-cli 3.43.1 (``src/cmd/cloud.js``
  ``_processDirIncludes`` over node-glob 7 with ``nodir``), including its quirks (symlinked files are
  sent even without ``--followSymlinks``; ``**`` walks one level into a symlinked folder), with two
  deliberate safety differences: nothing outside the project root is ever selected, and files over
  10 MiB (or that are not regular files, e.g. a FIFO) are skipped (particle-cli only applies the size
  limit to files named on its command line).
* **The pin.** Workbench keeps ``particle.firmwareVersion`` / ``particle.targetPlatform`` /
  ``particle.targetDevice`` in ``.vscode/settings.json`` (JSONC). We read them and edit them with the
  smallest possible text edit, so the user's comments and formatting survive and Workbench keeps working.

Pure: no network, no editor imports. Lines and columns are 1-based, columns count Python characters
(code points); the LSP layer converts them with its position codec.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fieldsafe.safeio import NotRegularFile, TooLarge, read_regular, read_text_regular

# ---------------------------------------------------------------------------------------------------
# Constants (particle-cli 3.43.1: src/lib/file-types.js, settings.js, src/cmd/cloud.js)
# ---------------------------------------------------------------------------------------------------

SOURCE_PATTERNS: tuple[str, ...] = (
    "**/*.h",
    "**/*.hpp",
    "**/*.hh",
    "**/*.hxx",
    "**/*.ino",
    "**/*.cpp",
    "**/*.c",
    "**/build.mk",
    "project.properties",
)
DEFAULT_IGNORES: tuple[str, ...] = ("lib/*/examples/**/*.*",)
MAX_FILE_SIZE = 10 * 1024 * 1024
# A settings.json over 256 KiB is refused (FS401), never parsed: the JSONC parser is pure Python (~3 s per MB
# on a busy machine) and real Workbench settings files are a few KB.
MAX_SETTINGS_BYTES = 256 * 1024
INCLUDE_FILE = "particle.include"
IGNORE_FILE = "particle.ignore"

SETTINGS_RELPATH = ".vscode/settings.json"
KEY_FIRMWARE_VERSION = "particle.firmwareVersion"
KEY_TARGET_PLATFORM = "particle.targetPlatform"
KEY_TARGET_DEVICE = "particle.targetDevice"
PIN_KEYS: tuple[str, ...] = (KEY_FIRMWARE_VERSION, KEY_TARGET_PLATFORM, KEY_TARGET_DEVICE)
_PIN_EXAMPLES = {KEY_FIRMWARE_VERSION: '"6.2.1"', KEY_TARGET_PLATFORM: '"boron"', KEY_TARGET_DEVICE: '"field-unit-7"'}

Layout = Literal["extended", "legacy"]


class ProjectSettingsError(ValueError):
    """A project file (settings.json, project.properties) we cannot use; the message names file, place, fix."""

    def __init__(
        self, message: str, path: Path | None = None, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


# ---------------------------------------------------------------------------------------------------
# Project root discovery
# ---------------------------------------------------------------------------------------------------


def _has_particle_settings(directory: Path) -> bool:
    """True when ``.vscode/settings.json`` mentions a ``particle.*`` key (even if it is malformed JSON,
    so the user gets a settings error instead of silently losing the project)."""
    settings = directory / SETTINGS_RELPATH
    try:
        text = read_text_regular(settings, MAX_SETTINGS_BYTES)
    except TooLarge:
        return True  # the pin checks then say it is too large (FS401), instead of losing the project
    except OSError:
        return False
    try:
        doc = parse_jsonc(text)
    except ProjectSettingsError:
        return '"particle.' in text
    return isinstance(doc.value, dict) and any(str(k).startswith("particle.") for k in doc.value)


def _has_ino(directory: Path) -> bool:
    try:
        return any(
            e.is_file() and e.name.endswith(".ino") and not e.name.startswith(".") for e in os.scandir(directory)
        )
    except OSError:
        return False


def find_project_root(path: Path | str, stop_at: Path | str | None = None) -> Path | None:
    """The project a file or folder belongs to, or None.

    Precedence by kind (not by distance) so a library example inside a project resolves to the project:
    the nearest ancestor (or self) with ``project.properties``; else the nearest with a Workbench
    ``.vscode/settings.json`` holding ``particle.*`` keys; else the nearest legacy flat folder with ``*.ino``.
    ``stop_at`` (e.g. the editor's workspace folder) bounds the walk up, so a stray sketch in a parent
    folder such as the home directory never becomes the project.
    """
    start = Path(path).absolute()
    if not start.is_dir():
        start = start.parent
    chain = [start, *start.parents]
    if stop_at is not None:
        boundary = Path(stop_at).absolute()
        if boundary == start or boundary in start.parents:
            chain = chain[: chain.index(boundary) + 1]
    for test in ((lambda d: (d / "project.properties").is_file()), _has_particle_settings, _has_ino):
        for directory in chain:
            if test(directory):
                return directory
    return None


def find_projects(folder: Path | str) -> list[Path]:
    """All project roots under a workspace folder (sorted).

    A folder with ``project.properties`` is always a root (several projects may share a workspace, and
    may nest). Outside any project, a folder with Workbench particle settings or ``*.ino`` is a legacy
    root. Skipped: hidden folders, ``node_modules`` and a project's ``lib/<name>/`` libraries.
    """
    base = Path(folder).absolute()
    roots: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        inside = any(here == r or r in here.parents for r in roots)
        is_root = "project.properties" in filenames
        if not is_root and not inside:
            is_root = _has_particle_settings(here) or any(
                f.endswith(".ino") and not f.startswith(".") for f in filenames
            )
        if is_root and here not in roots:
            roots.append(here)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        if "project.properties" in filenames and "lib" in dirnames:
            dirnames.remove("lib")
    return sorted(roots)


# ---------------------------------------------------------------------------------------------------
# project.properties
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectProperties:
    """The keys of ``project.properties`` we use. ``problems`` lists lines we could not read (not fatal:
    particle-cli ignores them too, but the user should hear about them)."""

    path: Path
    name: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    asset_ota_dir: str | None = None
    raw: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def parse_project_properties(text: str, path: Path | str = "project.properties") -> ProjectProperties:
    """Parse ``key=value`` lines (``#`` comments); ``dependencies.<lib>=<version>`` become dependencies."""
    raw: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        if "=" not in stripped:
            problems.append(f"{path}:{number}: '{stripped}' is not key=value; write it as key=value or remove it")
            continue
        key, value = stripped.split("=", 1)
        raw[key.strip()] = value.strip()
    deps = {k[len("dependencies.") :]: v for k, v in raw.items() if k.startswith("dependencies.")}
    return ProjectProperties(
        path=Path(path),
        name=raw.get("name") or None,
        dependencies=deps,
        asset_ota_dir=raw.get("assetOtaDir") or None,
        raw=raw,
        problems=tuple(problems),
    )


def read_project_properties(root: Path | str) -> ProjectProperties | None:
    """``<root>/project.properties`` parsed, or None when the project has none (legacy layout)."""
    path = Path(root) / "project.properties"
    try:
        text = read_text_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProjectSettingsError(f"{path}: cannot read it ({exc.strerror}); {_read_fix(exc)}", path) from exc
    return parse_project_properties(text, path)


def detect_layout(root: Path | str) -> Layout:
    """``extended`` = ``project.properties`` + ``src/``; anything else is the legacy flat layout."""
    r = Path(root)
    return "extended" if (r / "project.properties").is_file() and (r / "src").is_dir() else "legacy"


# ---------------------------------------------------------------------------------------------------
# node-glob 7 / minimatch 3 semantics (the subset particle-cli's patterns and users' include files use)
# ---------------------------------------------------------------------------------------------------

_MAGIC = re.compile(r"[*?\[]")
_EXTGLOB = re.compile(r"[@?+*!]\(")
_RANGE = re.compile(r"^(-?\d+|[^\d])\.\.(-?\d+|[^\d])(?:\.\.(-?\d+))?$")


def _split_top(body: str) -> list[str]:
    """Split a brace body at top-level commas (nested braces and escapes respected)."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            cur.append(body[i : i + 2])
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _expand_range(body: str) -> list[str] | None:
    m = _RANGE.match(body)
    if not m:
        return None
    a, b, step_text = m.groups()
    step = abs(int(step_text)) if step_text else 1
    step = step or 1
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        x, y = int(a), int(b)
        width = (
            max(len(a), len(b))
            if (a.lstrip("-").startswith("0") and len(a) > 1) or (b.lstrip("-").startswith("0") and len(b) > 1)
            else 0
        )
        seq = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
        return [str(n).zfill(width) if width else str(n) for n in seq]
    if len(a) == 1 and len(b) == 1 and not a.isdigit() and not b.isdigit():
        x, y = ord(a), ord(b)
        seq = range(x, y + 1, step) if x <= y else range(x, y - 1, -step)
        return [chr(n) for n in seq]
    return None


def brace_expand(pattern: str) -> list[str]:
    """Expand ``{a,b}`` sets (nested) and ``{1..3}`` / ``{a..c}`` ranges like brace-expansion 1.x.

    A brace pair with neither a comma nor a range (``{a}``) stays literal, as in minimatch.
    """
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth, j = 0, i
            while j < len(pattern):
                if pattern[j] == "\\":
                    j += 2
                    continue
                if pattern[j] == "{":
                    depth += 1
                elif pattern[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(pattern):
                return [pattern]
            body, pre, post = pattern[i + 1 : j], pattern[:i], pattern[j + 1 :]
            options = _expand_range(body)
            if options is None:
                parts = _split_top(body)
                if len(parts) < 2:  # "{a}" stays literal; expand what follows it
                    return [pre + "{" + body + "}" + rest for rest in brace_expand(post)]
                options = [x for p in parts for x in brace_expand(p)]
            return [pre + o + rest for o in options for rest in brace_expand(post)]
        i += 1
    return [pattern]


def _segment_regex(seg: str) -> re.Pattern[str]:
    """Translate one path segment (``*``, ``?``, ``[...]``, ``\\`` escapes) to an anchored regex."""
    out: list[str] = []
    i = 0
    while i < len(seg):
        ch = seg[i]
        if ch == "\\" and i + 1 < len(seg):
            out.append(re.escape(seg[i + 1]))
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            j = i + 1
            if j < len(seg) and seg[j] in "!^":
                j += 1
            if j < len(seg) and seg[j] == "]":
                j += 1
            while j < len(seg) and seg[j] != "]":
                j += 1
            if j >= len(seg):
                out.append(re.escape("["))
                i += 1
                continue
            body = seg[i + 1 : j]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = j + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out), re.DOTALL)


_GLOBSTAR = object()


@dataclass(frozen=True)
class _Seg:
    raw: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Skipped:
    """A file (or pattern) not selected and why, so the CLI/LSP can explain a surprising file list."""

    path: str
    reason: str


@dataclass(frozen=True)
class SelectionReport:
    """What ``select_files`` decided: the files to send (project-relative POSIX, particle-cli order), the
    files or patterns skipped with reasons, and the ``particle.include``/``particle.ignore`` files used."""

    root: Path
    files: tuple[str, ...]
    skipped: tuple[Skipped, ...] = ()
    include_files: tuple[str, ...] = ()
    ignore_files: tuple[str, ...] = ()


class _Globber:
    """A port of glob 7's sync walker (``_process``/``_processGlobStar``/``_processReaddir``) with
    ``nodir: true, dot: false`` and a fence: nothing whose real path leaves the project root matches."""

    def __init__(self, root: str, follow: bool, skipped: dict[str, str]) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.follow = follow
        self.skipped = skipped
        self._readdir_cache: dict[str, list[str] | None] = {}
        self._symlinks: dict[str, bool] = {}
        self._real_cache: dict[str, str] = {}

    # -- filesystem helpers ------------------------------------------------------------------------
    def _real(self, abs_path: str) -> str:
        real = self._real_cache.get(abs_path)
        if real is None:
            real = os.path.realpath(abs_path)
            self._real_cache[abs_path] = real
        return real

    def _inside(self, abs_path: str) -> bool:
        real = self._real(abs_path)
        return real == self.real_root or real.startswith(self.real_root.rstrip("/") + "/")

    def _rel(self, abs_path: str) -> str:
        return posixpath.relpath(abs_path, self.root)

    def _readdir(self, abs_path: str, in_globstar: bool) -> list[str] | None:
        if in_globstar and not self.follow and abs_path not in self._symlinks:
            try:
                st = os.lstat(abs_path)
            except OSError:
                return None
            self._symlinks[abs_path] = stat.S_ISLNK(st.st_mode)
            if not stat.S_ISLNK(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                self._readdir_cache[abs_path] = None
                return None
        if abs_path in self._readdir_cache:
            return self._readdir_cache[abs_path]
        entries: list[str] | None
        if not self._inside(abs_path):
            if os.path.isdir(abs_path):
                self.skipped.setdefault(
                    self._rel(abs_path) + "/", "a symlinked folder that points outside the project; never sent"
                )
            entries = None
        elif self.follow and self._is_cycle(abs_path):
            self.skipped.setdefault(self._rel(abs_path) + "/", "a symlink cycle; not followed again")
            entries = None
        else:
            try:
                entries = sorted(os.listdir(abs_path))
            except OSError:
                entries = None
        self._readdir_cache[abs_path] = entries
        return entries

    def _is_cycle(self, abs_path: str) -> bool:
        """True when a folder's real path is also the real path of one of its lexical ancestors."""
        real = self._real(abs_path)
        parent = posixpath.dirname(abs_path)
        while parent.startswith(self.root) and parent != posixpath.dirname(parent):
            if self._real(parent) == real:
                return True
            if parent == self.root:
                break
            parent = posixpath.dirname(parent)
        return False

    def _emit(self, abs_path: str, out: set[str]) -> None:
        """glob's ``_processSimple`` + nodir: exists (lstat), is not a folder (stat follows links)."""
        try:
            lst = os.lstat(abs_path)
        except OSError:
            return
        if stat.S_ISLNK(lst.st_mode):
            try:
                st = os.stat(abs_path)
            except OSError:
                self.skipped[self._rel(abs_path)] = "a broken symlink; nothing to send"
                return
        else:
            st = lst
        if stat.S_ISDIR(st.st_mode):
            return
        if not self._inside(abs_path):
            self.skipped[self._rel(abs_path)] = "a symlink to a file outside the project; never sent"
            return
        out.add(abs_path)

    # -- the walker --------------------------------------------------------------------------------
    def glob(self, pattern: str) -> set[str]:
        """All files matching an absolute, normalised POSIX pattern."""
        out: set[str] = set()
        for expanded in brace_expand(pattern):
            parts: list[Any] = []
            for seg in expanded.split("/")[1:]:
                if seg == "**":
                    parts.append(_GLOBSTAR)
                elif _MAGIC.search(seg.replace("\\\\", "")):
                    parts.append(_Seg(seg, _segment_regex(seg)))
                else:
                    parts.append(seg.replace("\\", ""))
            self._process(["", *parts], False, out)
        return out

    def _process(self, pattern: list[Any], in_globstar: bool, out: set[str]) -> None:
        n = 0
        while n < len(pattern) and isinstance(pattern[n], str):
            n += 1
        prefix = "/".join(pattern[:n]) or "/"
        if n == len(pattern):
            self._emit(prefix, out)
            return
        remain = pattern[n:]
        if remain[0] is _GLOBSTAR:
            self._globstar(prefix, remain, in_globstar, out)
        else:
            self._readdir_match(prefix, remain, in_globstar, out)

    def _globstar(self, prefix: str, remain: list[Any], in_globstar: bool, out: set[str]) -> None:
        entries = self._readdir(prefix, in_globstar)
        if entries is None:
            return
        rest = remain[1:]
        self._process([prefix, *rest], False, out)
        if in_globstar and self._symlinks.get(prefix):
            return  # glob 7 without `follow`: ** does not descend below a symlinked folder
        base = prefix.rstrip("/")
        for e in entries:
            if e.startswith("."):
                continue
            self._process([base, e, *rest], True, out)
            self._process([base, e, *remain], True, out)

    def _readdir_match(self, prefix: str, remain: list[Any], in_globstar: bool, out: set[str]) -> None:
        entries = self._readdir(prefix, in_globstar)
        if not entries:
            return
        seg: _Seg = remain[0]
        dot_ok = seg.raw.startswith(".")
        base = prefix.rstrip("/")
        for e in entries:
            if (not e.startswith(".") or dot_ok) and seg.regex.fullmatch(e):
                self._process([base, e, *remain[1:]], in_globstar, out)


def _read_pattern_lines(path: str, skipped: dict[str, str] | None = None, rel: str = "") -> list[str]:
    """particle-cli's ``readAndTrimLines`` + ``trimBlankLinesAndComments``: one glob per trimmed line.

    A listing that is not a regular file (a FIFO would block forever) or is over 1 MiB is not read;
    ``skipped`` says so, so the CLI and the editor warn that its patterns were not applied.
    """
    try:
        text = read_text_regular(path)
    except OSError as exc:
        if skipped is not None and not isinstance(exc, FileNotFoundError):
            skipped[rel or path] = f"{exc.strerror}: its patterns are NOT applied; {_read_fix(exc)}"
        return []
    return [line.strip() for line in text.split("\n") if line.strip() and not line.strip().startswith("#")]


def _anchor(base: str, line: str, root: str, listing: str, skipped: dict[str, str]) -> str | None:
    """``path.join(base, line)`` (normalising ``..``), refusing patterns that leave the project."""
    if line.endswith("/"):
        return None  # a folder-only pattern never matches with nodir
    if _EXTGLOB.search(line):
        skipped[f"{listing}: {line}"] = "extglob patterns like @(a|b) are not supported by fieldsafe; ignored"
        return None
    joined = posixpath.normpath(base + "/" + line)
    if joined.startswith("//"):
        joined = joined[1:]
    if joined != root and not joined.startswith(root.rstrip("/") + "/"):
        skipped[f"{listing}: {line}"] = "the pattern reaches outside the project root; ignored"
        return None
    return joined


def _utf16_key(text: str) -> bytes:
    """JavaScript's default sort order (UTF-16 code units), which particle-cli uses for the file list."""
    return text.encode("utf-16-be", errors="surrogatepass")


def select_files_report(
    root: Path | str, follow_symlinks: bool = False, max_file_size: int | None = MAX_FILE_SIZE
) -> SelectionReport:
    """The files ``particle compile <platform> <root>`` would send, with reasons for what was left out.

    Order of operations is particle-cli's: default globs, minus ``lib/*/examples/**/*.*``, plus every
    ``particle.include``'s globs, minus every ``particle.ignore``'s globs (globs relative to the listing
    file's folder). ``max_file_size=None`` disables our 10 MiB safety limit (used by the parity test).
    """
    root_abs = posixpath.normpath(Path(root).absolute().as_posix())
    skipped: dict[str, str] = {}
    g = _Globber(root_abs, follow_symlinks, skipped)
    base = root_abs.rstrip("/")

    files: set[str] = set()
    for pat in SOURCE_PATTERNS:
        files |= g.glob(f"{base}/{pat}")
    for pat in DEFAULT_IGNORES:
        files -= g.glob(f"{base}/{pat}")

    include_files = sorted(g.glob(f"{base}/**/{INCLUDE_FILE}"), key=_utf16_key)
    for listing in include_files:
        for line in _read_pattern_lines(listing, skipped, g._rel(listing)):
            anchored = _anchor(posixpath.dirname(listing), line, root_abs, g._rel(listing), skipped)
            if anchored:
                files |= g.glob(anchored)
    ignore_files = sorted(g.glob(f"{base}/**/{IGNORE_FILE}"), key=_utf16_key)
    for listing in ignore_files:
        for line in _read_pattern_lines(listing, skipped, g._rel(listing)):
            anchored = _anchor(posixpath.dirname(listing), line, root_abs, g._rel(listing), skipped)
            if anchored:
                files -= g.glob(anchored)

    selected: list[str] = []
    for abs_path in sorted(files, key=_utf16_key):
        rel = g._rel(abs_path)
        name_problem = upload_name_problem(rel)
        if name_problem:
            skipped[_printable(rel)] = name_problem
            continue
        if max_file_size is not None:
            try:
                info = os.stat(abs_path)
            except OSError:
                skipped[rel] = "cannot be read"
                continue
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):  # a FIFO named x.cpp would block the read forever
                skipped[rel] = "not a regular file (a pipe, socket or device); remove it or add it to particle.ignore"
                continue
            if size > max_file_size:
                skipped[rel] = (
                    f"{size} bytes is over the {max_file_size // (1024 * 1024)} MiB limit; "
                    "add it to particle.ignore or make it smaller"
                )
                continue
        selected.append(rel)
    return SelectionReport(
        root=Path(root_abs),
        files=tuple(selected),
        skipped=tuple(Skipped(p, r) for p, r in sorted(skipped.items())),
        include_files=tuple(g._rel(p) for p in include_files),
        ignore_files=tuple(g._rel(p) for p in ignore_files),
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def upload_name_problem(rel: str) -> str | None:
    """Why a file cannot be uploaded under its name, or None.

    A name that is not valid UTF-8 (Python keeps the raw bytes as surrogates) cannot be put in the
    multipart form, and one with a newline or another control character would be printed across lines
    and uploaded percent-encoded. Both are skipped, with this reason, the same way in the CLI and the
    editor.
    """
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8, so it cannot be uploaded; rename the file"
    if _CONTROL.search(rel):
        return "the file name contains a newline or another control character; rename the file"
    return None


def _printable(rel: str) -> str:
    """A file name safe to print on one line: undecodable bytes as ``\\xff``, control characters escaped."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def select_files(root: Path | str, follow_symlinks: bool = False) -> list[str]:
    """Project-relative POSIX paths a cloud compile sends, exactly as particle-cli selects them (see
    ``select_files_report`` for the two safety differences and the reasons behind skipped files)."""
    return list(select_files_report(root, follow_symlinks).files)


# ---------------------------------------------------------------------------------------------------
# JSONC (VS Code settings.json): tokenizer with positions, parser, minimal edits
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditSpan:
    """One exact text edit: replace ``[start, end)`` with ``new_text``.

    Lines and columns are 1-based; columns count characters (code points) within the line. ``start_offset``
    and ``end_offset`` index the original text, so ``text[:start_offset] + new_text + text[end_offset:]``
    is the edited text. For ``value_span`` the ``new_text`` is the current token text.
    """

    start_line: int
    start_column: int
    end_line: int
    end_column: int
    start_offset: int
    end_offset: int
    new_text: str

    def apply(self, text: str) -> str:
        return text[: self.start_offset] + self.new_text + text[self.end_offset :]


TextEditSpan = EditSpan  # the name used in docs/architecture.md


@dataclass(frozen=True)
class _Token:
    kind: str  # "{", "}", "[", "]", ":", ",", "string", "number", "literal", "eof"
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Member:
    key: str
    key_token: _Token
    value_start: int
    value_end: int
    value: Any
    comma_end: int | None  # offset after a following comma, if any


@dataclass(frozen=True)
class JsoncDocument:
    """A parsed JSONC text: the value, and for a top-level object its members with their offsets."""

    text: str
    value: Any
    members: tuple[_Member, ...]
    open_brace: int | None
    close_brace: int | None


class _LineIndex:
    """Offset -> (line, column), 1-based; line breaks are ``\\r\\n``, ``\\n`` or ``\\r`` as in LSP."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\r":
                if i + 1 < len(text) and text[i + 1] == "\n":
                    i += 1
                self.starts.append(i + 1)
            elif ch == "\n":
                self.starts.append(i + 1)
            i += 1

    def position(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.starts[lo] + 1


_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)
_LITERAL = re.compile(r"true|false|null")
MAX_DEPTH = 64  # objects/arrays nested deeper are refused (recursion); VS Code settings nest a few levels
MAX_NUMBER_CHARS = 400  # Python refuses integers over 4,300 digits; no setting needs a fraction of that
MAX_PIN_CHARS = 100  # a Workbench value longer than this is a mistake (releases, platforms, device names)


class _JsoncParser:
    def __init__(self, text: str, path: Path | None) -> None:
        self.text = text
        self.path = path
        self.depth = 0
        self.pos = 0
        self.lines = _LineIndex(text)
        self.tok = self._next()

    def error(self, offset: int, what: str) -> ProjectSettingsError:
        line, col = self.lines.position(offset)
        where = f"{self.path or 'settings.json'}:{line}:{col}"
        return ProjectSettingsError(
            f"{where}: {what}. Fix the JSON at that place (comments and trailing commas are allowed)",
            self.path,
            line,
            col,
        )

    def _skip_trivia(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                nl = re.compile(r"[\r\n]").search(text, self.pos)
                self.pos = nl.start() if nl else n
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error(self.pos, "a /* comment is never closed with */")
                self.pos = end + 2
            else:
                return

    def _next(self) -> _Token:
        self._skip_trivia()
        text, start = self.text, self.pos
        if start >= len(text):
            return _Token("eof", start, start, "")
        ch = text[start]
        if ch in "{}[]:,":
            self.pos += 1
            return _Token(ch, start, start + 1, ch)
        if ch == '"':
            i = start + 1
            while i < len(text):
                c = text[i]
                if c == "\\":
                    i += 2
                    continue
                if c == '"':
                    break
                if c in "\r\n":
                    raise self.error(start, "a string is not closed before the end of the line")
                i += 1
            if i >= len(text):
                raise self.error(start, "a string is never closed")
            self.pos = i + 1
            return _Token("string", start, i + 1, text[start : i + 1])
        for kind, rx in (("number", _NUMBER), ("literal", _LITERAL)):
            m = rx.match(text, start)
            if m:
                self.pos = m.end()
                return _Token(kind, start, m.end(), m.group())
        bad = re.match(r"[^\s{}\[\]:,\"]+", text[start:])
        raise self.error(
            start, f"unexpected '{bad.group() if bad else ch}'" + (" (strings need double quotes)" if ch == "'" else "")
        )

    def _advance(self) -> _Token:
        tok, self.tok = self.tok, self._next()
        return tok

    def _expect(self, kind: str, what: str) -> _Token:
        if self.tok.kind != kind:
            found = "the end of the file" if self.tok.kind == "eof" else f"'{self.tok.text}'"
            raise self.error(self.tok.start, f"expected {what} but found {found}")
        return self._advance()

    def _string_value(self, tok: _Token) -> str:
        try:
            return json.loads(tok.text)
        except json.JSONDecodeError as exc:
            raise self.error(tok.start + exc.pos, f"bad string ({exc.msg})") from exc

    def value(self) -> tuple[Any, int, int, list[_Member] | None, int | None, int | None]:
        tok = self.tok
        if tok.kind in ("{", "[") and self.depth >= MAX_DEPTH:
            raise self.error(tok.start, f"objects and arrays are nested more than {MAX_DEPTH} levels deep")
        if tok.kind == "{":
            self.depth += 1
            try:
                return self._object()
            finally:
                self.depth -= 1
        if tok.kind == "[":
            self.depth += 1
            start = self._advance().start
            items: list[Any] = []
            while self.tok.kind != "]":
                items.append(self.value()[0])
                if self.tok.kind != ",":
                    break
                self._advance()
            end = self._expect("]", "',' or ']'").end
            self.depth -= 1
            return items, start, end, None, None, None
        if tok.kind == "string":
            self._advance()
            return self._string_value(tok), tok.start, tok.end, None, None, None
        if tok.kind in ("number", "literal"):
            if len(tok.text) > MAX_NUMBER_CHARS:
                raise self.error(tok.start, f"a number of {len(tok.text):,} characters is too long to be a setting")
            self._advance()
            return json.loads(tok.text), tok.start, tok.end, None, None, None
        found = "the end of the file" if tok.kind == "eof" else f"'{tok.text}'"
        raise self.error(tok.start, f"expected a value but found {found}")

    def _object(self) -> tuple[Any, int, int, list[_Member], int, int]:
        open_tok = self._advance()
        result: dict[str, Any] = {}
        members: list[_Member] = []
        while self.tok.kind != "}":
            key_tok = self._expect("string", "a \"key\" in double quotes or '}'")
            key = self._string_value(key_tok)
            self._expect(":", "':' after the key")
            value, v_start, v_end, _, _, _ = self.value()
            comma_end = None
            if self.tok.kind == ",":
                comma_end = self._advance().end
            result[key] = value
            members.append(_Member(key, key_tok, v_start, v_end, value, comma_end))
            if comma_end is None:
                if self.tok.kind == "string":
                    raise self.error(self.tok.start, f"a ',' is missing before {self.tok.text}")
                break
        close = self._expect("}", "',' or '}'")
        return result, open_tok.start, close.end, members, open_tok.start, close.start

    def document(self) -> JsoncDocument:
        if self.tok.kind == "eof":
            return JsoncDocument(self.text, None, (), None, None)
        value, _, _, members, open_b, close_b = self.value()
        if self.tok.kind != "eof":
            raise self.error(self.tok.start, f"unexpected '{self.tok.text}' after the end of the settings object")
        return JsoncDocument(self.text, value, tuple(members or ()), open_b, close_b)


def parse_jsonc(text: str, path: Path | None = None) -> JsoncDocument:
    """Parse JSONC as VS Code reads settings.json: ``//`` and ``/* */`` comments, trailing commas.

    An empty (or comment-only) text has value None. Errors raise ``ProjectSettingsError`` naming
    ``path:line:column``.
    """
    return _JsoncParser(text, path).document()


def _span(text: str, start: int, end: int, new_text: str) -> EditSpan:
    idx = _LineIndex(text)
    sl, sc = idx.position(start)
    el, ec = idx.position(end)
    return EditSpan(sl, sc, el, ec, start, end, new_text)


def _object_doc(text: str, path: Path | None = None) -> JsoncDocument:
    too_large = settings_too_large(text, path or Path(SETTINGS_RELPATH))
    if too_large is not None:
        raise too_large
    doc = parse_jsonc(text, path)
    if doc.value is not None and not isinstance(doc.value, dict):
        where = path or "settings.json"
        raise ProjectSettingsError(
            f"{where}: the settings file must hold one JSON object {{ ... }}; wrap the settings in braces", path, 1, 1
        )
    return doc


def value_span(text: str, key: str) -> EditSpan | None:
    """Where the value of a top-level key is (its token), e.g. to put a diagnostic on the pinned version.

    Duplicate keys: the last one, which is the one VS Code uses. None when the key is absent.
    """
    doc = _object_doc(text)
    for member in reversed(doc.members):
        if member.key == key:
            return _span(text, member.value_start, member.value_end, text[member.value_start : member.value_end])
    return None


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _line_start(text: str, offset: int) -> int:
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def _indent_unit(text: str, doc: JsoncDocument) -> str:
    """The indentation members use: copied from the last member's line, else guessed from the file."""
    for member in reversed(doc.members):
        start = _line_start(text, member.key_token.start)
        lead = text[start : member.key_token.start]
        if lead.strip() == "" and lead:
            return lead
    return "\t" if re.search(r"^\t", text, re.MULTILINE) else "    "


def edit_setting_text(text: str, key: str, value: str, path: Path | None = None) -> tuple[str, EditSpan]:
    """Set a string setting with the smallest edit, keeping comments and formatting.

    * key present (last occurrence): replace only its value token;
    * key absent: insert ``"key": "value"`` as the last member, in the file's indentation and line
      endings, adding a comma after the previous member when it has none;
    * empty file: write a fresh object.
    Raises ``ProjectSettingsError`` when the text cannot be parsed (never guess at a broken file).
    """
    encoded = json.dumps(value, ensure_ascii=False)
    member_text = f"{json.dumps(key, ensure_ascii=False)}: {encoded}"
    try:
        doc = _object_doc(text, path)
    except ProjectSettingsError as exc:  # said only where a write was asked for (check/compile only read)
        raise ProjectSettingsError(
            f"{exc}; fieldsafe will not rewrite a settings file it cannot parse", exc.path, exc.line, exc.column
        ) from None
    nl = _newline_of(text)
    if doc.value is None:
        fresh = "{" + nl + "    " + member_text + nl + "}" + nl
        if text.strip():  # only comments: keep them, append the object after them
            lead = "" if text.endswith(("\n", "\r")) else nl
            span = _span(text, len(text), len(text), lead + fresh)
        else:
            span = _span(text, 0, len(text), fresh)
        return span.apply(text), span
    for member in reversed(doc.members):
        if member.key == key:
            span = _span(text, member.value_start, member.value_end, encoded)
            return span.apply(text), span
    assert doc.close_brace is not None
    close = doc.close_brace
    indent = _indent_unit(text, doc)
    close_line = _line_start(text, close)
    if text[close_line:close].strip() == "" and close_line > (doc.open_brace or 0):
        insert_at, addition = close_line, indent + member_text + nl
    else:
        insert_at, addition = close, nl + indent + member_text + nl
    last = doc.members[-1] if doc.members else None
    if last is not None and last.comma_end is None:
        start = last.value_end
        span = _span(text, start, insert_at, "," + text[start:insert_at] + addition)
    else:
        span = _span(text, insert_at, insert_at, addition)
    return span.apply(text), span


# ---------------------------------------------------------------------------------------------------
# Workbench settings
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkbenchSettings:
    """The Workbench pin: Device OS version, platform and device for this project (all optional)."""

    firmware_version: str | None
    target_platform: str | None
    target_device: str | None
    path: Path
    fleet: Any = None  # fieldsafe.fleettarget.FleetTarget when fieldsafe.targetProduct is set

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def read_settings_text(path: Path) -> str | None:
    """The text of a settings file exactly as the CLI reads it (a regular file, at most 256 KiB, UTF-8),
    or None when there is none; raises ProjectSettingsError naming the problem and the fix.

    The language server checks the file on disk with this too, so a settings.json the CLI refuses
    (not UTF-8, too large, a FIFO) is refused in the editor the same way, even while a buffer is open.
    """
    if not path.exists():
        return None
    return _read_text_exact(path)


def _read_text_exact(path: Path) -> str:
    """The file's text with line endings untouched (so edits keep CRLF)."""
    if path.exists() and not path.is_file():
        raise ProjectSettingsError(f"{path}: is not a regular file; replace it with a JSON settings file", path)
    try:
        data = read_regular(path, MAX_SETTINGS_BYTES)
    except OSError as exc:
        raise ProjectSettingsError(f"{path}: cannot read it ({exc.strerror}); {_read_fix(exc)}", path) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectSettingsError(f"{path}: byte {exc.start} is not UTF-8; save the file as UTF-8", path) from exc


def _read_fix(exc: OSError) -> str:
    """What to do about a file :func:`fieldsafe.safeio.read_regular` refused or could not read."""
    if isinstance(exc, TooLarge):
        return "make it smaller (fieldsafe reads at most 1 MiB of a listing file, 256 KiB of settings.json)"
    if isinstance(exc, NotRegularFile):
        return "replace it with a regular file"
    return "check its permissions"


def settings_too_large(text: str, path: Path) -> ProjectSettingsError | None:
    """The error for a settings text over :data:`MAX_SETTINGS_BYTES` (a buffer the editor sent), or None."""
    if len(text) <= MAX_SETTINGS_BYTES // 4 or len(text.encode("utf-8", "surrogatepass")) <= MAX_SETTINGS_BYTES:
        return None
    return ProjectSettingsError(
        f"{path}: is {len(text):,} characters; fieldsafe reads at most {MAX_SETTINGS_BYTES:,} bytes of a settings "
        "file (keep the Workbench keys in a smaller .vscode/settings.json)",
        path,
        1,
        1,
    )


def settings_from_text(text: str, path: Path) -> WorkbenchSettings:
    """Read the three Workbench keys from settings.json text; non-string values are errors naming the key."""
    doc = _object_doc(text, path)
    values: dict[str, str | None] = {}
    data: dict[str, Any] = doc.value or {}
    for key in PIN_KEYS:
        raw = data.get(key)
        if raw is not None and not isinstance(raw, str):
            member = next(m for m in reversed(doc.members) if m.key == key)
            line, col = _LineIndex(text).position(member.value_start)
            raise ProjectSettingsError(
                f'{path}:{line}:{col}: "{key}" must be a string like {_PIN_EXAMPLES[key]}, not {json.dumps(raw)}; '
                "put the value in double quotes",
                path,
                line,
                col,
            )
        if isinstance(raw, str) and len(raw) > MAX_PIN_CHARS:
            member = next(m for m in reversed(doc.members) if m.key == key)
            line, col = _LineIndex(text).position(member.value_start)
            raise ProjectSettingsError(
                f'{path}:{line}:{col}: "{key}" is {len(raw):,} characters long; expected a value like '
                f"{_PIN_EXAMPLES[key]} (at most {MAX_PIN_CHARS} characters)",
                path,
                line,
                col,
            )
        values[key] = raw.strip() if isinstance(raw, str) and raw.strip() else None
    return WorkbenchSettings(
        values[KEY_FIRMWARE_VERSION],
        values[KEY_TARGET_PLATFORM],
        values[KEY_TARGET_DEVICE],
        path,
        _fleet_target(text, path),
    )


def _fleet_target(text: str, path: Path) -> Any:
    """``fieldsafe.targetProduct`` / ``targetGroups`` / ``allowHealedUpdates`` (``fieldsafe.fleettarget``)."""
    from fieldsafe import fleettarget

    try:
        return fleettarget.from_settings_text(text, path)
    except fleettarget.FleetTargetError as exc:
        raise ProjectSettingsError(str(exc), path, exc.line, exc.column) from None


def read_settings(root: Path | str) -> WorkbenchSettings:
    """``<root>/.vscode/settings.json`` as Workbench settings; a missing file means no pin (not an error)."""
    path = Path(root) / SETTINGS_RELPATH
    if not path.exists():  # a directory (or FIFO) of that name is an error, not "no pin"
        return WorkbenchSettings(None, None, None, path)
    return settings_from_text(_read_text_exact(path), path)


def write_setting(root: Path | str, key: str, value: str) -> None:
    """Set one key in ``<root>/.vscode/settings.json`` with a minimal edit, written atomically.

    Creates ``.vscode/`` when needed. Refuses (``ProjectSettingsError``) to touch a file it cannot
    parse, so a user's half-typed settings are never replaced.
    """
    path = Path(root) / SETTINGS_RELPATH
    text = _read_text_exact(path) if path.is_file() else ""
    new_text, _ = edit_setting_text(text, key, value, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(new_text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------------
# The project
# ---------------------------------------------------------------------------------------------------


@dataclass
class Project:
    """A Particle project as fieldsafe sees it: where it is, its layout, its name and its pin."""

    root: Path
    layout: Layout
    name: str | None
    settings: WorkbenchSettings
    properties: ProjectProperties | None = None

    def select_files(self, follow_symlinks: bool = False) -> list[str]:
        return select_files(self.root, follow_symlinks)


def load_project(root: Path | str) -> Project:
    """Read a project's layout, ``project.properties`` and Workbench settings (errors name the file)."""
    r = Path(root).absolute()
    props = read_project_properties(r)
    return Project(
        root=r, layout=detect_layout(r), name=props.name if props else None, settings=read_settings(r), properties=props
    )


def iter_pin_keys() -> Iterable[str]:
    """The Workbench keys fieldsafe treats as the project's one pin."""
    return iter(PIN_KEYS)
