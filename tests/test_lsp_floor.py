"""Language server: the code's Device OS floor on the pin hover and in retarget quick-fixes below it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from fieldsafe.emulator import EmulatorServer
from lsp_helpers import CLIENTS, Session, apply_text_edits, project_session, settings_uri, uri, wait_until

INO = """\
#include "Particle.h"

void setup() {
    Particle.publishVitals(60);
}

void loop() {
}
"""

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


@pytest_asyncio.fixture(params=CLIENTS[:1], scope="module", loop_scope="module")
async def shared(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    base = tmp_path_factory.mktemp(f"floor-{request.param}")
    async with project_session(request.param, base, emulator, ino=INO) as s:
        yield s


def _pin_diag(s: Session, root: Path) -> list[types.Diagnostic]:
    return [d for d in s.diagnostics(settings_uri(root)) if d.code == "FS101"]


async def test_retarget_below_the_floor_says_what_breaks_and_offers_guard_and_retarget(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    diag = (await wait_until(lambda: _pin_diag(shared, root), what="FS101 on the pin"))[0]
    actions = await shared.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(settings_uri(root)),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    titles = [a.title for a in actions or []]
    assert "Retarget to 0.5.3 (what field-unit-7 runs) — `Particle.publishVitals` at src/sensor.ino:4 needs 1.2.1" in (
        titles
    )
    both = next(a for a in actions or [] if a.title.startswith("Guard 1 use"))
    assert both.title.endswith("retarget to 0.5.3") and both.edit is not None and both.edit.changes is not None
    source_uri = uri(root / "src" / "sensor.ino")
    guarded = apply_text_edits(INO, both.edit.changes[source_uri])
    assert (
        "#if defined(SYSTEM_VERSION_v121) && SYSTEM_VERSION >= SYSTEM_VERSION_v121\n    Particle.publishVitals"
        in guarded
    )
    settings = (root / ".vscode" / "settings.json").read_text()
    assert '"0.5.3"' in apply_text_edits(settings, both.edit.changes[settings_uri(root)])


async def test_pin_hover_shows_the_code_floor(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    u = await shared.open(root / ".vscode" / "settings.json", language="jsonc")
    text = (root / ".vscode" / "settings.json").read_text()
    line = next(i for i, x in enumerate(text.splitlines()) if "firmwareVersion" in x)
    col = text.splitlines()[line].index('"2.3.1"') + 2
    result = await shared.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(u), types.Position(line, col))
    )
    assert result is not None
    value = result.contents.value  # type: ignore[union-attr]
    assert "Code floor" in value and "1.2.1" in value and "src/sensor.ino:4" in value
