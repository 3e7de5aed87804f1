"""Language server: diagnostics on the pin, retarget quick-fix, hover, completion, offline device state.

Run with ``-W error::pytest_lsp.LspSpecificationWarning`` (CI does): the client checks that the
server honours the emulated editor's capabilities.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from fieldsafe.emulator import EmulatorServer
from lsp_helpers import (
    CLIENTS,
    Session,
    apply_text_edits,
    project_session,
    settings_uri,
    uri,
    wait_until,
)


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(params=CLIENTS, scope="module", loop_scope="module")
async def shared(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    """One server per client for the tests that only read (starting a server costs ~1 s)."""
    base = tmp_path_factory.mktemp(f"pin-{request.param}")
    async with project_session(request.param, base, emulator) as s:
        yield s


@pytest_asyncio.fixture(params=CLIENTS, loop_scope="module")
async def session(request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Session]:
    """A fresh server for tests that change buffers or options."""
    async with project_session(request.param, tmp_path, emulator) as s:
        yield s


def pin_diagnostics(s: Session, root: Path) -> list[types.Diagnostic]:
    return [d for d in s.diagnostics(settings_uri(root)) if d.code == "FS101"]


async def test_mismatch_on_pin_with_related_device(shared: Session) -> None:
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    diags = await wait_until(lambda: pin_diagnostics(session, root), what="FS101 on the pin")
    diag = diags[0]
    text = (root / ".vscode" / "settings.json").read_text()
    line = text.splitlines()[diag.range.start.line]
    assert line[diag.range.start.character : diag.range.end.character] == '"2.3.1"'
    assert "field-unit-7" in diag.message and "0.5.3" in diag.message
    assert diag.source == "fieldsafe"
    assert diag.related_information, "the device side of the conflict must be linked"
    rel = diag.related_information[0]
    assert rel.location.uri == settings_uri(root)
    device_line = text.splitlines()[rel.location.range.start.line]
    assert '"field-unit-7"' in device_line
    status = await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "mismatch"])
    assert status[-1]["pinnedRelease"] == "2.3.1"
    assert status[-1]["deviceRelease"] == "0.5.3"
    assert status[-1]["projectUri"] == uri(root)


async def _retarget_action(session: Session, root: Path, diag: types.Diagnostic) -> types.CodeAction:
    actions = await session.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(settings_uri(root)),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert actions, "expected quick-fixes"
    titles = [a.title for a in actions]
    wanted = [a for a in actions if a.title == "Retarget to 0.5.3 (what field-unit-7 runs)"]
    assert wanted, titles
    return wanted[0]


def _check_retarget_edit(root: Path, action: types.CodeAction) -> None:
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.edit is not None and action.edit.changes is not None
    edits = action.edit.changes[settings_uri(root)]
    assert len(edits) == 1
    original = (root / ".vscode" / "settings.json").read_text()
    assert edits[0].new_text == '"0.5.3"'
    assert apply_text_edits(original, edits) == original.replace('"2.3.1"', '"0.5.3"')
    assert action.command is not None and action.command.command == "fieldsafe.server.compile"


async def test_retarget_quick_fix_with_diagnostic_data(shared: Session) -> None:
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    diag = (await wait_until(lambda: pin_diagnostics(session, root)))[0]
    assert diag.data is not None
    _check_retarget_edit(root, await _retarget_action(session, root, diag))


async def test_retarget_quick_fix_without_diagnostic_data(shared: Session) -> None:
    """Neovim <= 0.9 and Emacs drop Diagnostic.data: the server recovers the fix from code + range."""
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    diag = (await wait_until(lambda: pin_diagnostics(session, root)))[0]
    stripped = types.Diagnostic(
        range=diag.range, message=diag.message, severity=diag.severity, code=diag.code, source=diag.source
    )
    _check_retarget_edit(root, await _retarget_action(session, root, stripped))


async def test_editing_pin_in_buffer_rechecks(session: Session) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: pin_diagnostics(session, root))
    u = await session.open(root / ".vscode" / "settings.json", language="jsonc")
    text = (root / ".vscode" / "settings.json").read_text().replace('"2.3.1"', '"0.5.3"')
    session.change(u, text, 2)
    await wait_until(lambda: not pin_diagnostics(session, root), what="FS101 cleared after retarget")
    assert [s for s in session.recorder.statuses if s["pinnedRelease"] == "0.5.3"]


async def test_hover_on_pin_shows_release_facts(shared: Session) -> None:
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: pin_diagnostics(session, root))
    u = await session.open(root / ".vscode" / "settings.json", language="jsonc")
    text = (root / ".vscode" / "settings.json").read_text()
    line = next(i for i, x in enumerate(text.splitlines()) if "firmwareVersion" in x)
    col = text.splitlines()[line].index('"2.3.1"') + 2
    result = await session.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(u), types.Position(line, col))
    )
    assert result is not None
    value = result.contents.value  # type: ignore[union-attr]
    assert "Device OS 2.3.1" in value and "LTS" in value
    assert "2302" in value  # the system module version of 2.3.1
    assert "electron" in value.lower()


async def test_completion_of_release_strings(shared: Session) -> None:
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: pin_diagnostics(session, root), what="device resolved")
    u = await session.open(root / ".vscode" / "settings.json", language="jsonc")
    text = (root / ".vscode" / "settings.json").read_text()
    line = next(i for i, x in enumerate(text.splitlines()) if "firmwareVersion" in x)
    col = text.splitlines()[line].index('"2.3.1"') + 1
    result = await session.client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(u), types.Position(line, col))
    )
    assert isinstance(result, types.CompletionList)
    labels = [i.label for i in result.items]
    assert "2.3.1" in labels and "0.5.3" in labels
    assert "6.2.1" not in labels, "Gen 2 Electron releases stop at 3.x"
    lts = next(i for i in result.items if i.label == "2.3.1")
    assert "LTS" in (lts.detail or "")
    runs = next(i for i in result.items if i.label == "0.5.3")
    assert "field-unit-7" in (runs.detail or "")


async def test_offline_uses_last_known_device_state_with_age(session: Session) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: pin_diagnostics(session, root))
    session.client.set_configuration({"offline": True}, section="fieldsafe")
    session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    diags = await wait_until(
        lambda: [d for d in pin_diagnostics(session, root) if "last known state" in d.message], what="age note"
    )
    assert re.search(r"`field-unit-7` \(Electron, cellular; last known state, \d+ (s|min) old\)", diags[0].message)
    status = await wait_until(lambda: [s for s in session.recorder.statuses if s["deviceAgeSeconds"] is not None])
    assert status[-1]["deviceAgeSeconds"] >= 0
