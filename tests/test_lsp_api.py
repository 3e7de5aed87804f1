"""Language server: Device OS API availability as you type (issue 6): diagnostics, guard/retarget fixes, hover."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types

from fieldsafe import apilint
from fieldsafe.emulator import EmulatorServer
from lsp_helpers import (
    CLIENTS,
    INO,
    Session,
    apply_text_edits,
    project_session,
    uri,
    wait_until,
)

VITALS = INO.replace("    Serial.begin(9600);", "    Serial.begin(9600);\n    Particle.publishVitals(60);")


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


@pytest.fixture(params=CLIENTS)
async def session(request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Session]:
    # field-unit-7 runs 0.5.3 and the project is pinned to it: no pin mismatch, but an old API level
    async with project_session(request.param, tmp_path, emulator, pin="0.5.3") as s:
        yield s


def api_diags(session: Session, u: str) -> list[types.Diagnostic]:
    return [d for d in session.diagnostics(u) if str(d.code).startswith("FS2")]


async def typed_vitals(session: Session) -> tuple[str, types.Diagnostic]:
    root: Path = session.root  # type: ignore[attr-defined]
    # the pin check resolves the device first, so the retarget title can mention the update
    await wait_until(lambda: [s for s in session.recorder.statuses if s.get("deviceRelease")], what="device")
    u = await session.open(root / "src" / "sensor.ino")
    session.change(u, VITALS, 2)  # typed, not saved: no compile needed
    diags = await wait_until(lambda: api_diags(session, u), what="FS201 while typing")
    return u, diags[0]


async def test_api_diagnostic_on_change(session: Session, emulator: EmulatorServer) -> None:
    before = len(emulator.seen("/v1/binaries", method="POST"))
    u, diag = await typed_vitals(session)
    line = VITALS.splitlines().index("    Particle.publishVitals(60);")
    assert diag.range.start.line == line
    assert VITALS.splitlines()[line][diag.range.start.character : diag.range.end.character] == "Particle.publishVitals"
    assert "1.2.1" in diag.message and "0.5.3" in diag.message
    assert len(emulator.seen("/v1/binaries", method="POST")) == before, "linting must not compile"
    session.change(u, INO, 3)
    await wait_until(lambda: not api_diags(session, u), what="cleared once the call is gone")


async def test_guard_and_retarget_quick_fixes(session: Session) -> None:
    u, diag = await typed_vitals(session)
    actions = await session.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(u),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert actions
    by_title = {a.title: a for a in actions}
    guard = next(a for t, a in by_title.items() if t.startswith("Guard with #if"))
    assert "SYSTEM_VERSION" in guard.title
    assert guard.edit is not None and guard.edit.changes is not None
    guarded = apply_text_edits(VITALS, guard.edit.changes[u])
    line = VITALS.splitlines().index("    Particle.publishVitals(60);") + 1
    finding = apilint.lint_source(VITALS, "src/sensor.ino", "0.5.3", 10)[0]
    expected = apilint.apply_guard_edit(VITALS, apilint.guard_edit(VITALS, line, finding.fixes[0], 5))
    assert guarded == expected
    assert "    #if " in guarded and "    #endif" in guarded
    retarget = next(a for t, a in by_title.items() if t.startswith("Retarget to 1.2.1"))
    assert "field-unit-7 must be updated" in retarget.title and "KB over the air" in retarget.title
    settings = session.root / ".vscode" / "settings.json"  # type: ignore[attr-defined]
    assert retarget.edit is not None and retarget.edit.changes is not None
    original = settings.read_text()
    assert apply_text_edits(original, retarget.edit.changes[uri(settings)]) == original.replace('"0.5.3"', '"1.2.1"')


async def test_pin_change_relints_open_files(session: Session) -> None:
    u, _ = await typed_vitals(session)
    root: Path = session.root  # type: ignore[attr-defined]
    settings = root / ".vscode" / "settings.json"
    su = await session.open(settings, language="jsonc")
    session.change(su, settings.read_text().replace('"0.5.3"', '"1.2.1"'), 2)
    await wait_until(lambda: not api_diags(session, u), what="FS201 gone after the pin moved to 1.2.1")


async def test_hover_on_api_token(session: Session) -> None:
    u, diag = await typed_vitals(session)
    pos = types.Position(diag.range.start.line, diag.range.start.character + len("Particle.publ"))
    result = await session.client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(u), pos))
    assert result is not None
    text = result.contents.value  # type: ignore[union-attr]
    assert "Particle.publishVitals" in text and "since 1.2.1" in text
    assert "not available" in text  # pinned 0.5.3


async def test_a_shim_defined_in_another_file_is_not_flagged(session: Session) -> None:
    """Names the project defines anywhere shadow the Device OS API, in the editor as in ``fieldsafe check``."""
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: [s for s in session.recorder.statuses if s.get("deviceRelease")], what="device")
    u = await session.open(root / "src" / "sensor.ino")
    uses_api = INO.replace("    Serial.begin(9600);", "    Serial.begin(9600);\n    analogWriteResolution(D7, 12);")
    session.change(u, uses_api, 2)
    flagged = await wait_until(lambda: api_diags(session, u), what="FS201 for analogWriteResolution (0.6.0)")
    assert "analogWriteResolution" in flagged[0].message
    shim = root / "src" / "compat.cpp"  # a user shim for the older Device OS, never opened in the editor
    shim.write_text('#include "Particle.h"\nvoid analogWriteResolution(int pin, int bits) { (void)pin; (void)bits; }\n')
    session.change(u, uses_api + "\n", 3)
    await wait_until(lambda: not api_diags(session, u), what="the shim shadows the Device OS name")
