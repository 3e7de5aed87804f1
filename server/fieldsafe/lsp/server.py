"""The fieldsafe language server: pygls 2 wiring over the domain modules.

This module holds the server state (projects, diagnostics store, device resolver) and registers the
LSP features; every handler delegates. Domain decisions (what is a mismatch, its message and fixes)
come from ``compat``/``apilint``/``gccout`` findings; here they only become diagnostics, code actions,
hovers and commands. See docs/lsp.md for the capabilities, options, commands and scheduling design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from fieldsafe import __version__
from fieldsafe._lazy import lazy_module
from fieldsafe.findings import Severity
from fieldsafe.lsp import commands, features
from fieldsafe.lsp.config import SECTION, ServerOptions, build_options
from fieldsafe.lsp.diagnostics import DiagnosticStore, Located, to_diagnostic
from fieldsafe.lsp.projects import WATCHED_NAMES, ProjectRegistry, ProjectState, path_of
from fieldsafe.lsp.protocol import FieldsafeProtocol
from fieldsafe.lsp.scheduler import GenerationScheduler, KeyedDebouncer

if TYPE_CHECKING:
    from fieldsafe.cloud import CloudError
    from fieldsafe.lsp.devices import DeviceResolver
    from fieldsafe.lsp.fleets import FleetResolver

# Start-up budget (issue 12): ``initialize`` is answered before these load; the first handler that
# needs one imports it (``fieldsafe._lazy``), and ``initialized`` warms them in a thread meanwhile.
actions = lazy_module("fieldsafe.lsp.actions")
compiling = lazy_module("fieldsafe.lsp.compiling")
hover = lazy_module("fieldsafe.lsp.hover")
linting = lazy_module("fieldsafe.lsp.linting")
pin = lazy_module("fieldsafe.lsp.pin")
projectmod = lazy_module("fieldsafe.project")
compat = lazy_module("fieldsafe.compat")
WARM_MODULES = ("fieldsafe.lsp.pin", "fieldsafe.lsp.devices", "fieldsafe.cloud", "fieldsafe.lsp.fleets", "fieldsafe.lsp.compiling",
                "fieldsafe.gccout", "requests", "fieldsafe.lsp.linting", "fieldsafe.lsp.hover", "fieldsafe.lsp.actions")  # fmt: skip

log = logging.getLogger("fieldsafe.lsp")

STATUS_NOTIFICATION = "fieldsafe/status"
_MESSAGE_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
    "log": types.MessageType.Log,
}
SETTINGS_DEBOUNCE_S = 0.15
BUILD_CONFIG_FILES = frozenset({"project.properties", "particle.include", "particle.ignore", "library.properties"})


class FieldsafeServer(LanguageServer):
    """Holds per-project state; see the module docstring."""

    def __init__(self, *, hard_exit: bool = False) -> None:
        super().__init__(
            "fieldsafe",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=FieldsafeProtocol,
        )
        self.hard_exit = hard_exit  # the process ends at ``exit`` even while a compile thread still runs
        self.registry = ProjectRegistry()
        self.store = DiagnosticStore(self._publish)
        self._devices: DeviceResolver | None = None
        self._fleets: FleetResolver | None = None
        self.debouncer = KeyedDebouncer()
        self.init_options: Any = None
        self.failures_shown: set[str] = set()
        self.config_problems_shown: set[str] = set()
        self.background: set[asyncio.Task[Any]] = set()
        self.configured = asyncio.Event()  # set once the first workspace/configuration pull is done
        self.initial_folders: list[str] = []
        self.warm: asyncio.Future[None] | None = None  # the start-up import warm-up (see _warm_imports)
        self.features: list[features.LanguageFeature] = []

    @property
    def devices(self) -> DeviceResolver:
        """The device resolver, created (with the cloud module) on first use, not at start-up."""
        if self._devices is None:
            from fieldsafe.lsp.devices import DeviceResolver

            self._devices = DeviceResolver()
        return self._devices

    @property
    def fleets(self) -> FleetResolver:
        """The fleet resolver (listings, histograms), created on first use, not at start-up."""
        if self._fleets is None:
            from fieldsafe.lsp.fleets import FleetResolver

            self._fleets = FleetResolver()
        return self._fleets

    # ---- client capabilities ---------------------------------------------------------------------

    def _cap(self, path: str) -> Any:
        node: Any = self.client_capabilities
        for part in path.split("."):
            node = getattr(node, part, None) if node is not None else None
        return node

    def supports_progress(self) -> bool:
        return bool(self._cap("window.work_done_progress"))

    def supports_configuration(self) -> bool:
        return bool(self._cap("workspace.configuration"))

    def supports_apply_edit(self) -> bool:
        return bool(self._cap("workspace.apply_edit"))

    def markdown_hover(self) -> bool:
        formats = self._cap("text_document.hover.content_format") or []
        return types.MarkupKind.Markdown in formats

    # ---- background tasks --------------------------------------------------------------------------

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a coroutine in the background, keeping a reference (asyncio only holds weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def stop_work(self, timeout_s: float = 2.0) -> None:
        """``shutdown``: cancel compiles, lints and checks while the client still listens.

        Why: cancelled runs end their progress and publish nothing; left alone, ``exit`` would close
        stdout under them (tracebacks on stderr) and the interpreter would wait for the compile thread.
        """
        waits: list[Any] = list(self.background)
        for task in self.background:
            task.cancel()
        waits.extend(self.debouncer.cancel_all())
        for project in self.registry.all():
            if project.scheduler is not None:
                project.scheduler.cancel()
                waits.append(asyncio.ensure_future(project.scheduler.wait_idle()))
        if waits:
            await asyncio.wait(waits, timeout=timeout_s)

    def exit_process(self) -> None:
        """``exit``: end the process now; a compile thread cannot be killed and must not hold it up."""
        code = 0 if getattr(self.protocol, "_shutdown", False) else 1
        logging.shutdown()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os._exit(code)

    # ---- feature host (the interface fieldsafe.lsp.features gives its features) ---------------------

    def resolve_project(self, arg: Any, *, required: bool = True) -> ProjectState | None:
        """The project a command argument names (``projectUri``; the only one when omitted)."""
        return commands.project_arg(self, arg, required=required)

    def cloud_for(self, project: ProjectState | None) -> Any:
        """The cloud client for the project's API URL option (shared with the device resolver)."""
        options = project.options if project else (self.registry.all()[0].options if self.registry.all() else None)
        return self.devices.cloud(options.api_url if options else None)

    def show_message(self, text: str, *, level: str = "info") -> None:
        self.window_show_message(types.ShowMessageParams(_MESSAGE_TYPES.get(level, types.MessageType.Info), text))

    def log_message(self, text: str, *, level: str = "info") -> None:
        self.window_log_message(types.LogMessageParams(_MESSAGE_TYPES.get(level, types.MessageType.Info), text))

    def notify(self, method: str, payload: Any) -> None:
        self.protocol.notify(method, payload)

    async def ask(self, question: str, choices: list[str]) -> str | None:
        if not choices:
            return None
        params = types.ShowMessageRequestParams(
            type=types.MessageType.Warning,
            message=question,
            actions=[types.MessageActionItem(title=c) for c in choices],
        )
        try:
            answer = await self.window_show_message_request_async(params)
        except Exception as exc:  # the client cannot ask: treat as "no"
            log.info("showMessageRequest failed: %s", exc)
            return None
        return answer.title if answer is not None else None

    def progress(self, title: str, *, cancellable: bool = True) -> features.FeatureProgress:
        return features.FeatureProgress(self, title, cancellable=cancellable, enabled=self.supports_progress())

    # ---- projects ----------------------------------------------------------------------------------

    def discover(self, folder_uris: list[str]) -> list[ProjectState]:
        """Register every project under the given workspace folders."""
        created = []
        for folder_uri in folder_uris:
            folder = path_of(folder_uri)
            if folder is None or not folder.is_dir():
                continue
            for root in projectmod.find_projects(folder):
                state, new = self.registry.add(root, folder_uri)
                if new:
                    self._setup(state)
                    created.append(state)
        return created

    def _folder_of(self, path: Path) -> Path | None:
        """The workspace folder holding ``path`` (so a project root is never looked for above it), if any."""
        for folder in self.workspace.folders.values():
            folder_path = path_of(folder.uri)
            if folder_path is not None and (path == folder_path or folder_path in path.parents):
                return folder_path
        return None

    def project_for(self, uri: str) -> ProjectState | None:
        """The project of a document, registering it on the fly for files outside known folders."""
        project = self.registry.for_uri(uri)
        if project is not None:
            return project
        path = path_of(uri)
        if path is None:
            return None
        if path.name == "settings.json" and path.parent.name == ".vscode":
            path = path.parent.parent
        root = projectmod.find_project_root(path, stop_at=self._folder_of(path))
        if root is None:
            return None
        state, new = self.registry.add(root, None)
        if new:
            self._setup(state)
            self.spawn(self.start_project(state))
        return state

    def _setup(self, project: ProjectState) -> None:
        project.options, _ = build_options(self.init_options, None)

        async def runner(gen: int) -> None:
            await compiling.run_compile(self, project, gen)

        project.scheduler = GenerationScheduler(runner, name=f"compile {project.root.name}")

    async def start_project(self, project: ProjectState) -> None:
        """Pull options, then run the pin checks of a newly found project."""
        await self.pull_configuration([project])
        await self.refresh_pin(project)

    # ---- configuration -----------------------------------------------------------------------------

    async def wait_configured(self, timeout_s: float = 2.0) -> None:
        """Wait (bounded) for the first configuration pull: a save right after start-up must use the
        user's options (e.g. ``uploadUnsavedBuffers``), not the defaults."""
        if not self.configured.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.configured.wait(), timeout_s)

    async def pull_configuration(self, projects: list[ProjectState]) -> None:
        """``workspace/configuration`` per project folder (falls back to initializationOptions)."""
        values: list[Any] = [None] * len(projects)
        if self.supports_configuration() and projects:
            items = [types.ConfigurationItem(section=SECTION, scope_uri=p.folder_uri or p.uri) for p in projects]
            try:
                values = list(await self.workspace_configuration_async(types.ConfigurationParams(items=items)))
            except Exception as exc:
                log.warning("workspace/configuration failed: %s", exc)
        problems: list[str] = []
        for project, value in zip(projects, values, strict=False):
            project.options, found = build_options(self.init_options, value)
            problems.extend(found)
        new = [p for p in dict.fromkeys(problems) if p not in self.config_problems_shown]
        if new:
            self.config_problems_shown.update(new)
            self.window_show_message(
                types.ShowMessageParams(
                    types.MessageType.Warning, "fieldsafe: invalid settings, using defaults: " + "; ".join(new)
                )
            )

    async def register_dynamic(self) -> None:
        """Register didChangeConfiguration and the file watchers where the client allows it."""
        registrations = []
        if self._cap("workspace.did_change_configuration.dynamic_registration"):
            registrations.append(
                types.Registration(id="fieldsafe-config", method=types.WORKSPACE_DID_CHANGE_CONFIGURATION)
            )
        if self._cap("workspace.did_change_watched_files.dynamic_registration"):
            watchers = [types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in WATCHED_NAMES]
            registrations.append(
                types.Registration(
                    id="fieldsafe-watch",
                    method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
                )
            )
        if not registrations:
            return
        try:
            await self.client_register_capability_async(types.RegistrationParams(registrations=registrations))
        except Exception as exc:
            log.info("dynamic registration refused: %s", exc)

    # ---- failures and status -----------------------------------------------------------------------

    def report_failure(self, exc: CloudError, doing: str) -> None:
        """One showMessage per failure kind (never spam); every occurrence goes to logMessage."""
        kind = type(exc).__name__
        hint = getattr(exc, "hint", "") or ""
        detail = f"fieldsafe: {doing}: {exc}" + (f" ({hint})" if hint and hint not in str(exc) else "")
        self.window_log_message(types.LogMessageParams(types.MessageType.Warning, detail))
        if kind not in self.failures_shown:
            self.failures_shown.add(kind)
            self.window_show_message(types.ShowMessageParams(types.MessageType.Error, detail))

    def set_status(self, project: ProjectState, state: str, message: str | None = None) -> None:
        """Send ``fieldsafe/status`` for a project (the VS Code status item and any client may use it)."""
        project.state, project.message = state, message
        view = project.target
        device = view.device or {}
        self.protocol.notify(
            STATUS_NOTIFICATION,
            {
                "projectUri": project.uri,
                "state": state,
                "pinnedRelease": view.pin,
                "platform": view.platform,
                "device": view.device_name,
                "deviceRelease": device.get("system_firmware_version"),
                "deviceAgeSeconds": view.device_age,
                "fleet": view.fleet.describe() if view.fleet is not None else None,
                "fleetError": view.fleet_error,
                "message": message,
            },
        )

    # ---- publishing --------------------------------------------------------------------------------

    def _publish(self, uri: str, diagnostics: list[types.Diagnostic]) -> None:
        # No version: compile results describe the files on disk, which may differ from the buffer.
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))

    def _items(self, project: ProjectState, located: list[Located]) -> dict[str, list]:
        per_uri: dict[str, list] = {}
        for item in located:
            related = pin.related_locations(self, project, item.finding)
            per_uri.setdefault(item.uri, []).append((to_diagnostic(item, related, project.uri), item.finding))
        return per_uri

    def publish_layer(self, project: ProjectState, layer: str, located: list[Located]) -> None:
        self.store.set_layer(project.layer(layer), self._items(project, located))

    def publish_compile(self, project: ProjectState, compiled: list[Located], binary: list[Located]) -> None:
        """Replace the project's compile and binary layers (files no longer mentioned are cleared)."""
        self.publish_layer(project, "compile", compiled)
        self.publish_layer(project, "binary", binary)

    def publish_outcome(self, project: ProjectState, outcome: Any, *, cached: bool = False) -> None:
        """Publish a compile outcome (stale runs never get here) and update the status."""
        compiled, binary = compiling.compile_layers(self, project, outcome)
        self.publish_compile(project, compiled, binary)
        unreadable = [x for x in compiled if x.finding.code == compiling.UNREADABLE_BINARY]
        errors = [x for x in compiled if x.finding.severity == Severity.ERROR and x not in unreadable]
        mismatch = [x for x in binary if x.finding.severity <= Severity.WARNING]
        if errors or not outcome.ok:
            self.set_status(project, "failed", f"{len(errors)} compiler error(s)")
        elif unreadable:
            self.set_status(project, "failed", unreadable[0].finding.message)
        elif mismatch or self._pin_mismatch(project):
            self.set_status(project, "mismatch", mismatch[0].finding.message if mismatch else project.target.problem)
        elif self.unchecked_target(project):
            self.set_status(project, "mismatch", self.unchecked_target(project))
        else:
            note = " (unchanged inputs: cached result)" if cached else ""
            self.set_status(project, "ok", f"built for {outcome.release}{note}{self._stale_note(project)}")

    def _pin_mismatch(self, project: ProjectState) -> bool:
        worst = project.target.findings_worst
        return worst is not None and worst <= Severity.WARNING

    def unchecked_target(self, project: ProjectState) -> str | None:
        """Why the target device is not checked (named but no state at all), else None.

        Fail safe: a build whose device could not be looked at is never reported "ok".
        """
        view = project.target
        if not view.device_name or view.device is not None or view.settings_error:
            return None
        why = view.device_error or "its state is unknown"
        return f"device {view.device_name} could not be checked: {why}"

    def _stale_note(self, project: ProjectState) -> str:
        """The status note for a device checked against its last known state because a lookup failed."""
        view = project.target
        if view.device is None or view.device_age is None or not view.device_error:
            return ""
        return (
            f"; device {view.device_name} checked against its last known state "
            f"({compat.age_phrase(view.device_age)} old): {view.device_error}"
        )

    # ---- flows -------------------------------------------------------------------------------------

    async def refresh_pin(self, project: ProjectState, *, recompile_if_changed: bool = False) -> None:
        """Re-read the pin, re-check it against the device, re-lint open files if it changed."""
        before = (project.target.pin, project.target.platform, project.target.device_name)
        project.check_generation += 1
        gen = project.check_generation
        view, findings, _read = await pin.check_pin(self, project)
        if gen != project.check_generation:
            return  # a newer check started while this one waited for the cloud: its result wins
        judged = [f for f in findings if f.code != pin.TARGET_UNCHECKED]  # "not checked" is no mismatch
        view.findings_worst = min((f.severity for f in judged), default=None)
        view.problem = min(judged, key=lambda f: f.severity).message if judged else None
        project.target = view
        self.publish_layer(project, "target", pin.place_on_pin(self, project, findings))
        changed = before != (view.pin, view.platform, view.device_name)
        if changed:
            self.relint_project(project)
        worst = view.findings_worst
        if project.state == "compiling" and project.scheduler is not None and project.scheduler.busy:
            pass  # the compile in flight sets the final state when it ends; "compiling" must stay visible
        elif worst is not None and worst <= Severity.WARNING:
            first = min(judged, key=lambda f: f.severity)
            self.set_status(project, "mismatch", first.message)
        elif self.unchecked_target(project):
            self.set_status(project, "mismatch", self.unchecked_target(project))
        elif project.state in ("mismatch", "idle") or changed or view.device_error:
            note = self._stale_note(project).lstrip("; ") or None
            self.set_status(project, "idle" if project.last_outcome is None else "ok", note)
        if recompile_if_changed and self._compiled_for_other_target(project):
            self.schedule_compile(project)

    def _compiled_for_other_target(self, project: ProjectState) -> bool:
        """True when the last compile used another pin/platform than the (saved) settings now say.

        Compared with the last *compile*, not the last check: the buffer edits before the save already
        updated the view, and the save is what should trigger the rebuild.
        """
        outcome = project.last_outcome
        view = project.target
        if outcome is None or not project.options.compile_on_save or not view.pin:
            return False
        return (view.pin, view.platform_id) != (outcome.release, outcome.platform_id)

    def schedule_compile(self, project: ProjectState, *, immediate: bool = False) -> int:
        assert project.scheduler is not None
        delay = 0.0 if immediate else project.options.compile_debounce_ms / 1000
        return project.scheduler.request(delay)

    def relint_project(self, project: ProjectState) -> None:
        for uri in list(self.workspace.text_documents):
            if self.registry.for_uri(uri) is project and linting.is_source(uri):
                self.debouncer.call(uri, 0, lambda u=uri: linting.lint_document(self, u))

    def is_build_input(self, project: ProjectState, uri: str) -> bool:
        """Whether saving ``uri`` can change the build (so a README save does not start a compile)."""
        rel = project.rel(uri)
        if rel is None:
            return False
        name = rel.rsplit("/", 1)[-1]
        if linting.is_source(uri) or name in BUILD_CONFIG_FILES:
            return True
        return project.last_outcome is not None and rel in project.last_outcome.files

    def is_settings(self, uri: str) -> bool:
        path = path_of(uri)
        return path is not None and path.name == "settings.json" and path.parent.name == ".vscode"

    def on_settings_edit(self, uri: str, *, saved: bool) -> None:
        project = self.project_for(uri)
        if project is None:
            return
        if saved:
            self.spawn(self.refresh_pin(project, recompile_if_changed=True))
        else:
            self.debouncer.call(uri, SETTINGS_DEBOUNCE_S, lambda: self.refresh_pin(project))

    async def on_watched(self, changes: list[types.FileEvent]) -> None:
        """Pin files changed on disk (git checkout, another editor, write_setting fallback)."""
        touched: dict[Path, tuple[ProjectState, bool]] = {}
        for change in changes:
            path = path_of(change.uri)
            if path is None:
                continue
            if path.name == "project.properties" and change.type == types.FileChangeType.Created:
                for folder in self.workspace.folders.values():
                    folder_path = path_of(folder.uri)
                    if folder_path and (folder_path == path.parent or folder_path in path.parents):
                        for state in self.discover([folder.uri]):
                            await self.start_project(state)
            project = self.project_for(change.uri)
            if project is None:
                continue
            is_pin = path.name == "settings.json"
            prev = touched.get(project.root, (project, False))
            touched[project.root] = (project, prev[1] or not is_pin)
        for project, selection_changed in touched.values():
            if self.workspace.text_documents.get(project.settings_uri) is None:
                await self.refresh_pin(project, recompile_if_changed=True)
            if selection_changed and project.options.compile_on_save and project.last_outcome is not None:
                self.schedule_compile(project)


def _warm_imports() -> None:
    """Import (and load the tables of) what the first pin check and compile need, off the event loop.

    Started when ``initialize`` has been handled, so it overlaps the client's ``initialized`` and the
    configuration round trips instead of delaying the first diagnostic.
    """
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    from fieldsafe import platforms, versions

    versions.catalog()
    platforms.all_platforms()


def create_server(*, hard_exit: bool = False) -> FieldsafeServer:
    """Build the server with every feature registered (capabilities derive from these).

    ``hard_exit``: end the process on ``exit`` (what ``fieldsafe lsp`` wants; embedders keep theirs).
    """
    server = FieldsafeServer(hard_exit=hard_exit)

    @server.feature(types.INITIALIZE)
    def initialize(ls: FieldsafeServer, params: types.InitializeParams) -> None:
        """initialize: remember initializationOptions and find the projects."""
        ls.init_options = params.initialization_options
        folders = [f.uri for f in params.workspace_folders or []]
        if not folders and params.root_uri:
            folders = [params.root_uri]
        ls.initial_folders = folders  # discovered at ``initialized``: the answer to initialize needs no project
        ls.warm = asyncio.ensure_future(asyncio.to_thread(_warm_imports))  # runs once the answer is sent

    @server.feature(types.INITIALIZED)
    async def initialized(ls: FieldsafeServer, params: types.InitializedParams) -> None:
        """initialized: dynamic registrations, options, first pin checks."""
        ls.discover(ls.initial_folders)
        await ls.register_dynamic()
        projects = ls.registry.all()
        try:
            await ls.pull_configuration(projects)
        finally:
            ls.configured.set()
        if ls.warm is not None:
            await ls.warm
        await asyncio.gather(*(ls.refresh_pin(p) for p in projects))
        for feature in ls.features:
            await feature.initialized()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: FieldsafeServer, params: Any) -> None:
        """shutdown: stop in-flight work (its progress ends, nothing more is published)."""
        for feature in ls.features:
            try:
                await feature.shutdown()
            except Exception:
                log.exception("feature %s failed to shut down", feature.name)
        await ls.stop_work()

    @server.feature(types.EXIT)
    def exit_(ls: FieldsafeServer, params: Any) -> None:
        """exit: leave promptly, also with a compile thread still blocked on the network."""
        if ls.hard_exit:
            ls.exit_process()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: FieldsafeServer, params: types.DidChangeConfigurationParams) -> None:
        """workspace/didChangeConfiguration: pull again (the notification's payload is not trusted)."""
        projects = ls.registry.all()
        before = {p.root: p.options for p in projects}
        await ls.pull_configuration(projects)
        for project in projects:
            old: ServerOptions = before[project.root]
            if (old.offline, old.api_url) != (project.options.offline, project.options.api_url):
                await ls.refresh_pin(project)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(ls: FieldsafeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        """workspace/didChangeWorkspaceFolders: add/remove projects."""
        for folder in params.event.removed:
            path = path_of(folder.uri)
            for gone in ls.registry.remove_under(path) if path else []:
                for layer in ("target", "compile", "binary"):
                    ls.store.clear_layer(gone.layer(layer))
        for state in ls.discover([f.uri for f in params.event.added]):
            await ls.start_project(state)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched(ls: FieldsafeServer, params: types.DidChangeWatchedFilesParams) -> None:
        """workspace/didChangeWatchedFiles: the pin or the file selection changed on disk."""
        await ls.on_watched(params.changes)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FieldsafeServer, params: types.DidOpenTextDocumentParams) -> None:
        """textDocument/didOpen: lint sources now; re-read the pin from a settings.json buffer."""
        uri = params.text_document.uri
        if ls.is_settings(uri):
            ls.on_settings_edit(uri, saved=False)
        elif linting.is_source(uri) and ls.project_for(uri) is not None:
            ls.debouncer.call(uri, 0, lambda: linting.lint_document(ls, uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FieldsafeServer, params: types.DidChangeTextDocumentParams) -> None:
        """textDocument/didChange: debounced API lint (no compile), or pin re-check for settings.json."""
        uri = params.text_document.uri
        if ls.is_settings(uri):
            ls.on_settings_edit(uri, saved=False)
            return
        project = ls.project_for(uri)
        if project is not None and linting.is_source(uri):
            ls.debouncer.call(uri, project.options.lint_debounce_ms / 1000, lambda: linting.lint_document(ls, uri))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: FieldsafeServer, params: types.DidSaveTextDocumentParams) -> None:
        """textDocument/didSave: compile on save (coalesced, superseding); settings.json: re-check pin."""
        uri = params.text_document.uri
        if ls.is_settings(uri):
            ls.on_settings_edit(uri, saved=True)
            return
        project = ls.project_for(uri)
        if project is not None and project.options.compile_on_save and ls.is_build_input(project, uri):
            ls.schedule_compile(project)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FieldsafeServer, params: types.DidCloseTextDocumentParams) -> None:
        """textDocument/didClose: API lint is for open files only; settings.json falls back to disk."""
        uri = params.text_document.uri
        ls.debouncer.cancel(uri)
        if ls.is_settings(uri):
            project = ls.project_for(uri)
            if project is not None:
                ls.spawn(ls.refresh_pin(project))
            return
        project = ls.registry.for_uri(uri)
        if project is not None:
            ls.store.set_uri(project.layer("api"), uri, [])

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=False),
    )
    async def code_action(ls: FieldsafeServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        """textDocument/codeAction: quick-fixes from the findings' Fix objects."""
        return await actions.code_actions(ls, params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: FieldsafeServer, params: types.HoverParams) -> types.Hover | None:
        """textDocument/hover: release facts on the pin, API availability on Device OS tokens."""
        return hover.hover(ls, params)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=['"', "."], resolve_provider=False)
    )
    def on_completion(ls: FieldsafeServer, params: types.CompletionParams) -> types.CompletionList | None:
        """textDocument/completion: release strings inside the pinned value."""
        return hover.complete(ls, params)

    for name, func in commands.TABLE:
        server.command(name)(_command(func))
    server.features = features.load_features(server)
    for feature in server.features:
        for name, handler in feature.commands().items():
            server.command(name)(_feature_command(handler))
    return server


def _command(func: Any) -> Any:
    """Wrap a command so pygls can resolve its annotations here (it calls get_type_hints on handlers)."""

    async def handler(ls: FieldsafeServer, *args: Any) -> Any:
        return await func(ls, *args)

    handler.__name__, handler.__doc__ = func.__name__, func.__doc__
    return handler


def _feature_command(func: features.CommandHandler) -> Any:
    """A feature's handler as a pygls command (the feature holds its host; pygls passes the server)."""

    async def handler(ls: FieldsafeServer, *args: Any) -> Any:
        return await func(*args)

    handler.__name__, handler.__doc__ = getattr(func, "__name__", "command"), func.__doc__
    return handler
