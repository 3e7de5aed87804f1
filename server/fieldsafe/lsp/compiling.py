"""Compile on save: one run of the per-project scheduler (see ``scheduler.py`` and docs/lsp.md).

A run: fresh progress token -> gather the files particle-cli would upload -> content-hash cache ->
``compilejob.compile_project`` in a worker thread, raced against the editor's Cancel button ->
publish only if the run's generation is still current -> after a successful build, check the
binary's real dependency against the target device.

Why files on disk by default: the cloud builds what would be flashed, and a compile triggered by a
save should describe the saved state. ``uploadUnsavedBuffers`` overlays open, modified buffers
(selected files only) for users who want "what I see" builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types

from fieldsafe import compat, compilejob
from fieldsafe.cloud import CloudError, TokenExpired
from fieldsafe.findings import Finding, Severity, Span
from fieldsafe.lsp.diagnostics import Located
from fieldsafe.lsp.documents import range_of_span
from fieldsafe.lsp.pin import place_on_pin, read_pin_async
from fieldsafe.lsp.projects import ProjectState
from fieldsafe.targets import TargetError, resolve_target

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

log = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_SIZE = 16
NO_TARGET = "FS402"
UNREADABLE_BINARY = "FS307"


class ClientCancelled(Exception):
    """The user pressed Cancel on the progress notification."""


class Superseded(Exception):
    """A newer request overtook this compile; it stopped before its next network step."""


def main_source(project: ProjectState, files: list[str]) -> str | None:
    """The file a project summary goes on: the first ``.ino`` (src/ first), else the first ``.cpp``."""
    for suffix in (".ino", ".cpp"):
        cands = sorted((f for f in files if f.endswith(suffix)), key=lambda f: (not f.startswith("src/"), f))
        if cands:
            return cands[0]
    return None


def unsaved_overrides(ls: FieldsafeServer, project: ProjectState) -> dict[str, bytes]:
    """Open buffers of this project as upload overrides (only used with ``uploadUnsavedBuffers``)."""
    out: dict[str, bytes] = {}
    for uri, doc in ls.workspace.text_documents.items():
        rel = project.rel(uri)
        if rel is not None:
            out[rel] = doc.source.encode("utf-8")
    return out


class Progress:
    """Work-done progress for one compile; degrades to nothing when the client cannot show it."""

    def __init__(self, ls: FieldsafeServer, title: str) -> None:
        self.ls = ls
        self.title = title
        self.token: str | None = None
        self.cancelled: asyncio.Future | None = None

    async def begin(self) -> None:
        if not self.ls.supports_progress():
            return
        token = str(uuid.uuid4())  # fresh per compile: pygls never forgets tokens
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception as exc:  # client refused: run without progress
            log.debug("progress create failed: %s", exc)
            return
        self.token = token
        self.ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=self.title, cancellable=True, message="uploading")
        )
        future = self.ls.work_done_progress.tokens.get(token)
        if future is not None:
            self.cancelled = asyncio.wrap_future(future)

    def report(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(message=message))

    def end(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.token = None


async def run_compile(ls: FieldsafeServer, project: ProjectState, gen: int) -> None:
    """One scheduled compile (generation ``gen``); see the module docstring.

    A cache hit (identical inputs) is answered without any round trip to the client: progress is only
    created when there is an upload to wait for.
    """
    scheduler = project.scheduler
    assert scheduler is not None
    await ls.wait_configured()
    target = await _resolve_target(ls, project)
    if target is None:  # settings.json unreadable: FS401 is already on it, nothing to compile
        ls.set_status(project, "failed", "cannot compile: .vscode/settings.json cannot be read")
        return
    if isinstance(target, Finding):
        ls.publish_compile(
            project, [Located(target, project.settings_uri, place_on_pin(ls, project, [target])[0].range)], []
        )
        ls.set_status(project, "failed", target.message)
        return
    platform_id, release = target
    overrides = unsaved_overrides(ls, project) if project.options.upload_unsaved_buffers else None
    skipped: list[Any] = []
    try:
        files = await asyncio.to_thread(compilejob.gather_files, project.root, overrides=overrides, skipped=skipped)
    except OSError as exc:  # a project file vanished, changed kind or grew between selection and read
        _cannot_read(ls, project, exc)
        return
    report_skipped(ls, project, skipped)
    key = compilejob.content_key(files, platform_id, release)
    if not scheduler.is_current(gen):
        return  # a newer save arrived while the files were read: the trailing run covers it
    outcome = project.compile_cache.get(key)
    if outcome is not None:
        project.last_outcome = outcome
        ls.publish_outcome(project, outcome, cached=True)
        return
    await _upload(ls, project, gen, files, platform_id, release, key)


def _cannot_read(ls: FieldsafeServer, project: ProjectState, exc: OSError) -> None:
    text = f"cannot read {exc.filename or project.root}: {exc.strerror or exc}"
    ls.window_log_message(types.LogMessageParams(types.MessageType.Error, f"fieldsafe: compile: {text}"))
    ls.set_status(project, "failed", f"cannot compile: {text}")


async def _upload(
    ls: FieldsafeServer,
    project: ProjectState,
    gen: int,
    files: dict[str, bytes],
    platform_id: int,
    release: str,
    key: str,
) -> None:
    """The cloud compile of a run, with progress that always ends (done, cancelled or failed)."""
    scheduler = project.scheduler
    assert scheduler is not None
    progress = Progress(ls, f"fieldsafe: compiling {project.root.name}")
    ending = "failed"
    ls.set_status(project, "compiling", f"compiling for {release}")
    await progress.begin()
    try:
        progress.report(f"compiling {len(files)} files for Device OS {release}")
        outcome = await _compile_in_thread(ls, project, files, platform_id, release, gen, progress)
        _remember(project, key, outcome)
        if not scheduler.is_current(gen):
            ending = "cancelled"  # superseded while in the thread: never publish a stale result
            return
        project.last_outcome = outcome
        ls.publish_outcome(project, outcome)
        ending = "done"
    except asyncio.CancelledError:
        ending = "cancelled"
        raise
    except Superseded:
        ending = "cancelled"  # a newer save overtook it; the trailing run publishes
    except ClientCancelled:
        ending = "cancelled"
        ls.set_status(project, "idle", "compile cancelled")
    except OSError as exc:
        _cannot_read(ls, project, exc)
    except CloudError as exc:
        if not scheduler.is_current(gen):
            ending = "cancelled"
            return
        ls.report_failure(exc, f"compiling {project.root.name}")
        if isinstance(exc, TokenExpired):
            ls.devices.forget_credentials()  # a new `particle login` is picked up by the next compile
        stale = mark_stale(ls, project, key, exc)
        ls.set_status(project, "failed", str(exc) + (f"; {stale}" if stale else ""))
    finally:
        progress.end(ending)


def _remember(project: ProjectState, key: str, outcome: compilejob.CompileOutcome) -> None:
    project.compile_cache[key] = outcome
    while len(project.compile_cache) > CACHE_SIZE:
        project.compile_cache.pop(next(iter(project.compile_cache)))


async def _resolve_target(ls: FieldsafeServer, project: ProjectState) -> tuple[int, str] | Finding | None:
    """(platform id, exact release) from the pin, a finding saying what is missing, or None when unreadable."""
    read = await read_pin_async(ls, project)  # parsed off the event loop
    settings = read.settings
    if settings is None:
        return None
    if not settings.firmware_version or not settings.target_platform:
        # the platform is never guessed from the device: the build target is what is pinned
        missing = "particle.firmwareVersion" if not settings.firmware_version else "particle.targetPlatform"
        return Finding(
            NO_TARGET,
            Severity.WARNING,
            f'cannot compile: set "{missing}" in .vscode/settings.json (fieldsafe compiles against exactly '
            "the pinned Device OS)",
        )
    try:
        target = resolve_target(project.root, settings=settings)
    except TargetError as exc:
        return Finding(NO_TARGET, Severity.ERROR, f"cannot compile: {exc}")
    return target.platform.id, str(target.release.version)


async def _compile_in_thread(
    ls: FieldsafeServer,
    project: ProjectState,
    files: dict[str, bytes],
    platform_id: int,
    release: str,
    gen: int,
    progress: Progress,
) -> compilejob.CompileOutcome:
    """The blocking compile in a worker thread, raced against the client's Cancel."""
    scheduler = project.scheduler
    assert scheduler is not None
    client_cancel = progress.cancelled
    cloud = ls.devices.cloud(project.options.api_url)

    def should_stop() -> bool:
        return not scheduler.is_current(gen) or (client_cancel is not None and client_cancel.done())

    job = in_daemon_thread(
        lambda: compilejob.compile_project(files, platform_id, release, cloud, should_stop=should_stop)
    )
    waiters: set[asyncio.Future] = {job}
    if client_cancel is not None:
        waiters.add(client_cancel)
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.add_done_callback(_swallow)  # the thread finishes on its own; its result is dropped
        raise
    if not job.done():
        job.add_done_callback(_swallow)
        raise ClientCancelled()
    try:
        return job.result()
    except compilejob.CompileCancelled:
        if client_cancel is not None and client_cancel.done():
            raise ClientCancelled() from None
        raise Superseded() from None


def in_daemon_thread(func: Callable[[], T]) -> asyncio.Future[T]:
    """Run a blocking call in a daemon thread and return a future for its result.

    Why not ``asyncio.to_thread``: the default executor's threads are joined when the event loop
    closes and at interpreter exit, so an editor that quits (or dies) mid-compile would leave the
    server process waiting for the upload to time out. A daemon thread never holds up the exit.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, exc = func(), None
        except BaseException as err:  # handed to the awaiting coroutine, as to_thread would
            result, exc = None, err
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody wants the result
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=target, name="fieldsafe-compile", daemon=True).start()
    return future


def _swallow(future: asyncio.Future) -> None:
    with contextlib.suppress(BaseException):
        future.result()


def compile_layers(
    ls: FieldsafeServer, project: ProjectState, outcome: compilejob.CompileOutcome
) -> tuple[list[Located], list[Located]]:
    """Place an outcome's findings: compiler ones on their files, dependency ones on the pin.

    Returns (compile layer, binary layer). The binary layer also carries the target-device check of
    the built binary's real dependency, plus a summary on the main source file.
    """
    compiled: list[Located] = []
    pin_findings: list[Finding] = []
    for finding in outcome.findings:
        span = finding.span
        if span is not None and span.file:
            uri = project.file_uri(span.file)
            compiled.append(Located(finding, uri, range_of_span(ls.workspace, uri, span)))
        elif finding.code.startswith("FS3"):
            rel = main_source(project, outcome.files)
            if rel is not None:
                uri = project.file_uri(rel)
                compiled.append(Located(finding, uri, range_of_span(ls.workspace, uri, Span(rel, 1, 1))))
        else:
            pin_findings.append(finding)
    pin_findings.extend(binary_vs_device(project, outcome))
    binary = place_on_pin(ls, project, pin_findings)
    rel = main_source(project, outcome.files)
    if rel is not None:
        uri = project.file_uri(rel)
        rng = range_of_span(ls.workspace, uri, Span(rel, 1, 1))
        for finding in pin_findings:
            if finding.severity <= Severity.WARNING:
                summary = Finding(
                    finding.code,
                    finding.severity,
                    f"Built binary: {finding.message}",
                    span=Span(rel, 1, 1),
                    facts=finding.facts,
                    fixes=finding.fixes,
                    related=finding.related,
                )
                binary.append(Located(summary, uri, rng))
    return compiled, binary


def binary_vs_device(project: ProjectState, outcome: compilejob.CompileOutcome) -> list[Finding]:
    """The built binary's dependency against the target device (last known state)."""
    view = project.target
    module = outcome.module
    if not outcome.ok or module is None or view.device is None or not module.dependencies:
        return []
    req = compat.binary_requirement(module)
    if req.dependency is None:
        return []
    state = compat.device_state_from_cloud(view.device, view.device_age, view.device_name or "device")
    needs = compat.BuildNeeds(
        platform_id=module.platform_id, dependency_version=req.dependency.version, source="binary"
    )
    return compat.check_build_against_device(needs, state)


STALE_PREFIX = "[stale] "


def mark_stale(ls: FieldsafeServer, project: ProjectState, key: str | None, error: CloudError) -> str | None:
    """After a compile failed for a cloud reason, mark the last compile's diagnostics that no longer
    describe the files (the inputs changed since); returns a note for the status, or None.

    Why marked and not kept or cleared: an FS301 left on a line the user has since fixed is a lie, and
    clearing it would hide errors that may still be there. Compiler findings are lowered to
    information with a ``[stale]`` prefix; findings about the built binary vs the device keep their
    severity (a dangerous one must never disappear because of a fault) and get the prefix too.
    """
    outcome = project.last_outcome
    if outcome is None or key is None or outcome.content_key == key:
        return None
    reason = str(error).split(";")[0]
    compiled, binary = compile_layers(ls, project, outcome)
    compiled = [
        _stale(item, f"the files changed since this compile and the new one failed ({reason})", True)
        for item in compiled
    ]
    binary = [_stale(item, "from the last successful build; the new compile failed", False) for item in binary]
    ls.publish_compile(project, compiled, binary)
    return "diagnostics of the last compile are marked [stale]"


def _stale(item: Located, why: str, lower: bool) -> Located:
    finding = item.finding
    if finding.message.startswith(STALE_PREFIX):
        return item
    severity = max(finding.severity, Severity.INFO) if lower else finding.severity
    stale = dataclasses.replace(
        finding,
        message=f"{STALE_PREFIX}{finding.message} ({why})",
        severity=severity,
        facts={**finding.facts, "stale": True},
    )
    return Located(stale, item.uri, item.range)


def report_skipped(ls: FieldsafeServer, project: ProjectState, skipped: list[Any]) -> None:
    """Files the selection left out (odd names, FIFOs, size, unreadable listings): said, never silent.

    Every compile logs them; each distinct one is shown once (the CLI prints the same warnings).
    """
    for skip in skipped:
        text = f"fieldsafe: {project.root.name}: not uploading {skip.path}: {skip.reason}"
        ls.window_log_message(types.LogMessageParams(types.MessageType.Warning, text))
        if text not in ls.failures_shown:
            ls.failures_shown.add(text)
            ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, text))
