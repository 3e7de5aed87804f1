"""Shared pieces for the language-server tests (tests/test_lsp_*.py).

Each test starts the real server (``python -m fieldsafe lsp``) with pytest-lsp's client, emulating
VS Code's or Neovim's capabilities, against a real emulator (``fieldsafe.emulator.EmulatorServer``
on 127.0.0.1) and a temporary copy of a small Particle project. HOME and XDG_CACHE_HOME point into
the test's temp dir, so the cloud module's offline cache and particle-cli profile are isolated.

Why not ``@pytest_lsp.fixture``: its ``server_env`` is fixed at import time, but the emulator's
port is only known once it runs; ``ClientServerConfig`` is used directly instead (same client).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from fieldsafe.emulator import DEFAULT_TOKEN, EmulatorServer

CLIENTS = ["visual_studio_code", "neovim"]

INO = """\
// Soil sensor for the north field
#include "Particle.h"

void setup() {
    Serial.begin(9600);
}

void loop() {
    delay(1000);
}
"""

BROKEN_INO = INO.replace("    delay(1000);", "    delay(1000)\n    undefined_call();")

SETTINGS = """\
{
    // Workbench pin: this comment and the layout must survive fieldsafe's edits
    "particle.firmwareVersion": "2.3.1",
    "particle.targetPlatform": "electron", // the board in the field
    "particle.targetDevice": "field-unit-7",
    "C_Cpp.default.configurationProvider": "particle.particle-vscode-core"
}
"""


def make_project(
    parent: Path,
    name: str = "sensor",
    *,
    pin: str = "2.3.1",
    platform: str = "electron",
    device: str | None = "field-unit-7",
    ino: str = INO,
) -> Path:
    """A minimal extended-layout Particle project with a Workbench pin."""
    root = parent / name
    (root / "src").mkdir(parents=True)
    (root / ".vscode").mkdir()
    (root / "project.properties").write_text(f"name={name}\n")
    (root / "src" / f"{name}.ino").write_text(ino)
    text = SETTINGS.replace('"2.3.1"', f'"{pin}"').replace('"electron"', f'"{platform}"')
    if device is None:
        text = text.replace('    "particle.targetDevice": "field-unit-7",\n', "")
    else:
        text = text.replace('"field-unit-7"', f'"{device}"')
    (root / ".vscode" / "settings.json").write_text(text)
    return root


def settings_uri(root: Path) -> str:
    """The URI of a project's Workbench settings file (where the pin and its diagnostics live)."""
    return uri(root / ".vscode" / "settings.json")


def uri(path: Path) -> str:
    return path.resolve().as_uri()


@dataclass
class Recorder:
    """What the server sent that pytest-lsp does not record itself."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    publishes: list[types.PublishDiagnosticsParams] = field(default_factory=list)
    registrations: list[types.Registration] = field(default_factory=list)
    applied: list[types.WorkspaceEdit] = field(default_factory=list)


def client_factory(recorder: Recorder) -> Callable[[], LanguageClient]:
    """pytest-lsp's client plus handlers for registerCapability, applyEdit and fieldsafe/status."""

    def factory() -> LanguageClient:
        client = LanguageClient(converter_factory=default_converter)
        features = dict(DEFAULT_CLIENT_FEATURES)
        default_publish = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

        def publish(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
            recorder.publishes.append(params)  # history: pytest-lsp keeps only the latest per URI
            default_publish(client, params)

        features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish
        register_lsp_features(client, features)
        _fix_code_action_union(client)

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register(params: types.RegistrationParams) -> None:
            recorder.registrations.extend(params.registrations)

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            recorder.applied.append(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

        @client.feature("fieldsafe/status")
        def status(params: Any) -> None:
            recorder.statuses.append(_plain(params))

        return client

    return factory


def _fix_code_action_union(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0 structures any result item with a ``command`` key as ``Command``, so a
    ``CodeAction`` that carries a follow-up command (ours do) would be misread by the *test client*.
    A CodeAction's ``command`` is an object, a Command's is a string: decide on that (as the spec does).
    """
    converter = client.protocol._converter

    def hook(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(types.Command | types.CodeAction, hook)
    converter.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


def _plain(value: Any) -> Any:
    """pygls hands custom notification params over as attribute objects; turn them into dicts."""
    if isinstance(value, dict):
        return value
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items()}
    return value


def server_env(emulator: EmulatorServer, home: Path) -> dict[str, str]:
    """Environment for the server: the emulator as the cloud, and an isolated HOME and cache."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTICLE_")}
    env.update(
        PARTICLE_API_URL=emulator.url,
        PARTICLE_ACCESS_TOKEN=DEFAULT_TOKEN,
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Session:
    """A running server + client and the recorder of extra traffic."""

    client: LanguageClient
    recorder: Recorder
    name: str
    opened: set[str] = field(default_factory=set)

    async def open(self, path: Path, language: str = "cpp") -> str:
        """didOpen with the file's text (once per URI, as an editor does)."""
        u = uri(path)
        if u in self.opened:
            return u
        self.opened.add(u)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=u, language_id=language, version=1, text=path.read_text())
            )
        )
        return u

    def change(self, u: str, text: str, version: int) -> None:
        """Replace the whole buffer (a full-text change is valid for incremental sync)."""
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=u, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(self, u: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=u))
        )

    def diagnostics(self, u: str) -> list[types.Diagnostic]:
        return list(self.client.diagnostics.get(u, []))

    async def command(self, name: str, arg: dict[str, Any] | None = None) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=[arg] if arg is not None else [])
        )


async def start(
    name: str,
    folders: list[Path],
    env: dict[str, str],
    *,
    init_options: Any = None,
    configuration: dict[str, Any] | None = None,
) -> Session:
    """Start ``fieldsafe lsp`` and initialise it with ``name``'s capabilities and workspace folders."""
    recorder = Recorder()
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "fieldsafe", "lsp"],
        client_factory=client_factory(recorder),
        server_env=env,
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    if configuration is not None:
        client.set_configuration(configuration, section="fieldsafe")
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(name),
            workspace_folders=[types.WorkspaceFolder(uri=uri(f), name=f.name) for f in folders],
            root_uri=uri(folders[0]),
            initialization_options=init_options,
        )
    )
    return Session(client, recorder, name)


async def stop(session: Session) -> None:
    await session.client.shutdown_session()
    await session.client.stop()


@asynccontextmanager
async def project_session(client: str, base: Path, emulator: EmulatorServer, **project: Any) -> AsyncIterator[Session]:
    """A server for ``client`` on a fresh example project in ``base/ws`` (``session.root``), stopped after."""
    root = make_project(base / "ws", **project)
    session = await start(client, [base / "ws"], server_env(emulator, base / "home"))
    session.root = root  # type: ignore[attr-defined]
    try:
        yield session
    finally:
        await stop(session)


async def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` on the event loop until it is truthy (returns its value) or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def codes(diags: list[types.Diagnostic]) -> list[str]:
    return sorted(str(d.code) for d in diags)


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP TextEdits (ASCII test texts, so UTF-16 units equal code points)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def off(pos: types.Position) -> int:
        if pos.line >= len(lines):
            return len(text)
        return offsets[pos.line] + pos.character

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[: off(edit.range.start)] + edit.new_text + text[off(edit.range.end) :]
    return text
