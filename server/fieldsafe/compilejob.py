"""One pinned cloud compile, from project files to checked findings.

Shared by ``fieldsafe compile``, ``fieldsafe demo`` and the language server's compile-on-save, so all
three agree on what was uploaded, how the log is read and how the built binary is checked:

1. gather the files particle-cli would upload (``project.select_files``), optionally overlaid with
   unsaved editor buffers;
2. compile in the cloud against exactly the pinned release (never ``latest``);
3. parse the build log into findings (``gccout``);
4. on success, download the binary, parse it (``modules``) and check that its real dependency is
   what the pin promised (``compat.check_binary_against_pin``).

Blocking (requests); callers that must stay responsive run it in a thread and pass ``should_stop``
so a superseded compile stops before its next network step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldsafe.findings import Finding, Severity, Span
from fieldsafe.versions import catalog

if TYPE_CHECKING:
    from fieldsafe.cloud import ParticleCloud
    from fieldsafe.modules import ModuleInfo
    from fieldsafe.project import Skipped


class CompileCancelled(Exception):
    """The caller asked the compile to stop (a newer save superseded it)."""


@dataclass(frozen=True)
class MemoryUse:
    """Flash and RAM use as particle-cli computes them from ``sizeInfo`` (flash = text + data, ram = bss + data)."""

    flash: int
    ram: int
    text: int
    data: int
    bss: int


@dataclass
class CompileOutcome:
    """Everything one compile produced; ``findings`` holds compiler and dependency findings together."""

    ok: bool
    platform_id: int
    release: str
    files: list[str]
    content_key: str
    findings: list[Finding] = field(default_factory=list)
    log: str = ""
    binary: bytes | None = None
    module: ModuleInfo | None = None
    size_info: str | None = None
    memory: MemoryUse | None = None
    binary_id: str | None = None
    from_cache: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    def to_json(self) -> dict[str, Any]:
        """The ``fieldsafe compile --json`` contract."""
        dependency = None
        if self.module is not None and self.module.dependencies:
            dep = self.module.dependencies[0]
            hits = catalog().releases_for_module(dep.version, self.platform_id)
            dependency = {
                "function": dep.function,
                "index": dep.index,
                "version": dep.version,
                "device_os": [str(r.version) for r in hits] or None,
            }
        return {
            "ok": self.ok,
            "platform_id": self.platform_id,
            "release": self.release,
            "files": self.files,
            "binary_id": self.binary_id,
            "memory": None if self.memory is None else {"flash": self.memory.flash, "ram": self.memory.ram},
            "dependency": dependency,
            "findings": [f.to_json() for f in self.findings],
        }


# Files the compiler translates (headers, build.mk and project.properties alone build nothing).
COMPILE_UNIT_SUFFIXES = (".ino", ".cpp", ".c", ".cc", ".cxx", ".s")


def gather_files(
    root: Path,
    *,
    overrides: Mapping[str, bytes] | None = None,
    follow_symlinks: bool = False,
    skipped: list[Skipped] | None = None,
) -> dict[str, bytes]:
    """The files particle-cli would upload (relative POSIX path -> bytes), with editor buffers overlaid.

    Overrides only replace files that are selected anyway: an unsaved buffer of a file the CLI would not
    upload must not sneak into the build. ``skipped``, when given, receives the files the selection left
    out and why (e.g. over the size limit), so a caller can say so instead of building without them.
    Raises OSError (with ``filename`` set) when a selected file cannot be read.
    """
    from fieldsafe.project import select_files_report

    report = select_files_report(root, follow_symlinks=follow_symlinks)
    if skipped is not None:
        skipped.extend(report.skipped)
    from fieldsafe.project import MAX_FILE_SIZE
    from fieldsafe.safeio import read_regular

    # bounded, and never a FIFO even if one replaced a file since the selection looked at it
    files = {rel: read_regular(root / rel, MAX_FILE_SIZE) for rel in report.files}
    for rel, data in (overrides or {}).items():
        if rel in files:
            files[rel] = data
    return files


def has_compile_units(files: Mapping[str, bytes]) -> bool:
    """True when ``files`` holds at least one source the compiler translates (not just headers)."""
    return any(rel.lower().endswith(COMPILE_UNIT_SUFFIXES) for rel in files)


def content_key(files: Mapping[str, bytes], platform_id: int, release: str) -> str:
    """A hash of everything that decides a compile's result, for the "identical inputs" cache."""
    digest = hashlib.sha256(f"{platform_id}\0{release}\0".encode())
    for rel in sorted(files):
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(files[rel]).digest())
    return digest.hexdigest()


_SIZE_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[0-9a-fA-F]+", re.MULTILINE)


def parse_size_info(text: str | None) -> MemoryUse | None:
    """Read ``arm-none-eabi-size`` output (the cloud's ``sizeInfo``); None when it has no values line."""
    match = _SIZE_RE.search(text or "")
    if not match:
        return None
    text_b, data_b, bss_b = (int(match[i]) for i in (1, 2, 3))
    return MemoryUse(flash=text_b + data_b, ram=bss_b + data_b, text=text_b, data=data_b, bss=bss_b)


def compile_project(
    files: Mapping[str, bytes],
    platform_id: int,
    release: str,
    cloud: ParticleCloud,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> CompileOutcome:
    """Compile ``files`` in the cloud against exactly ``release`` and check what comes back.

    Cloud errors other than a compile failure (offline, not logged in, rate limited) propagate as the
    cloud module's typed errors: they are not findings about the code.
    """
    from fieldsafe.cloud import CompileFailed
    from fieldsafe.gccout import parse_build_log

    outcome = CompileOutcome(
        ok=False,
        platform_id=platform_id,
        release=release,
        files=sorted(files),
        content_key=content_key(files, platform_id, release),
    )
    _check_stop(should_stop)
    try:
        body = cloud.compile(dict(files), platform_id, release)
    except CompileFailed as failure:
        outcome.log = failure.log
        outcome.findings = explain_with_api_check(
            parse_build_log(failure.log, outcome.files), files, platform_id, release
        )
        return outcome
    outcome.ok = True
    outcome.binary_id = body.get("binary_id")
    outcome.size_info = body.get("sizeInfo")
    outcome.memory = parse_size_info(outcome.size_info)
    outcome.log = str(body.get("output") or "")
    _check_stop(should_stop)
    outcome.binary = cloud.download_binary(body.get("binary_url") or str(outcome.binary_id))
    outcome.findings = _check_binary(outcome)
    return outcome


def explain_with_api_check(
    findings: list[Finding], files: Mapping[str, bytes], platform_id: int, release: str
) -> list[Finding]:
    """Put the API check's explanation next to a compiler error on the same line.

    Why: for an API the release lacks, gcc only says "'Ledger' was not declared in this scope; did you
    mean 'Logger'?", which sends the user after a typo. The API check knows the real reason (it needs
    Device OS 5.8.0); the compiler error keeps its code and place and carries that reason in its message
    and facts, in the CLI and the editor alike.
    """
    from fieldsafe import apilint

    errors = [f for f in findings if f.code == "FS301" and f.span is not None and f.span.file and f.span.line]
    if not errors:
        return findings
    explained: dict[tuple[str, int], Finding] = {}
    for rel in sorted({f.span.file for f in errors if f.span is not None and f.span.file}):
        data = files.get(rel)
        if data is None:
            continue
        try:
            lints = apilint.lint_source(data.decode("utf-8", errors="replace"), rel, release, platform_id)
        except ValueError:  # a release the lint cannot parse: the compiler error stands alone
            continue
        for lint in lints:
            if lint.code.startswith("FS2") and lint.severity == Severity.ERROR and lint.span and lint.span.line:
                explained.setdefault((rel, lint.span.line), lint)
    out = []
    for f in findings:
        lint = explained.get((f.span.file, f.span.line)) if f in errors and f.span is not None else None
        if lint is None or not f.span:
            out.append(f)
            continue
        out.append(
            dataclasses.replace(
                f,
                message=f"{f.message} (fieldsafe [{lint.code}]: {lint.message})",
                facts={**f.facts, "api_check": {"code": lint.code, "message": lint.message, **lint.facts}},
                fixes=f.fixes + lint.fixes,
            )
        )
    return out


def _check_stop(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise CompileCancelled()


def _check_binary(outcome: CompileOutcome) -> list[Finding]:
    """Parse the downloaded module and compare its real dependency with the pin."""
    from fieldsafe.compat import check_binary_against_pin
    from fieldsafe.modules import ModuleParseError, parse_module

    assert outcome.binary is not None
    try:
        outcome.module = parse_module(outcome.binary)
    except ModuleParseError as exc:
        return [
            Finding(
                code="FS307",
                severity=Severity.ERROR,
                message=f"the cloud returned a binary fieldsafe cannot read ({exc}); do not flash it, compile again",
                span=Span(file=None),
                facts={"binary_id": outcome.binary_id, "bytes": len(outcome.binary)},
            )
        ]
    return list(check_binary_against_pin(outcome.module, outcome.release, outcome.platform_id))
