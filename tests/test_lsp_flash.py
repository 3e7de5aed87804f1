"""Language server: guarded flash and planned update commands (lsp/features/flash.py), FS101's update action.

The decision-only forms need nothing beyond the emulator; delivered flashes against the field simulator are
in tests/test_flash_field.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from fieldsafe.emulator import EmulatorServer
from flash_helpers import app_for
from lsp_helpers import CLIENTS, Session, project_session, settings_uri, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


@pytest_asyncio.fixture(params=CLIENTS, scope="module", loop_scope="module")
async def shared(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    base = tmp_path_factory.mktemp(f"flash-{request.param}")
    async with project_session(request.param, base, emulator) as s:
        yield s


def _puts(emulator: EmulatorServer) -> list[object]:
    return [r for r in emulator.seen("/v1/*") if r.method == "PUT"]


async def test_flash_decision_only_refuses_and_sends_nothing(shared: Session, emulator: EmulatorServer) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    binary = root / "app.bin"
    binary.write_bytes(app_for("electron", "2.3.1"))
    before = len(_puts(emulator))
    result = await shared.command("fieldsafe.server.flash", {"binaryPath": str(binary), "confirm": True})
    assert result["verdict"] == "refuse" and result["outcome"] == "refused" and result["sent"] is False
    assert result["device"]["name"] == "field-unit-7" and result["neededRelease"] == "2.3.1"
    assert result["retarget"]["release"] == "0.5.3"
    codes = {f["code"] for f in result["findings"]}
    assert "FS101" in codes and codes & {"FS602", "FS604"}
    assert len(_puts(emulator)) == before


async def test_update_plan_without_confirmation_sends_nothing(shared: Session, emulator: EmulatorServer) -> None:
    before = len(_puts(emulator))
    result = await shared.command("fieldsafe.server.updateOs", {"device": "field-unit-7", "release": "2.3.1"})
    assert result["outcome"] == "planned" and result["refused"] is False
    assert result["plan"]["steps"][0]["module"] == "bootloader"
    assert result["plan"]["totalBytes"] == sum(s["bytes"] for s in result["plan"]["steps"])
    assert len(_puts(emulator)) == before


async def test_update_downgrade_is_refused(shared: Session) -> None:
    result = await shared.command("fieldsafe.server.updateOs", {"device": "greenhouse-argon", "release": "4.0.2"})
    assert result["outcome"] == "refused" and result["findings"][-1]["code"] == "FS610"


async def test_bad_arguments_are_invalid_params(shared: Session) -> None:
    with pytest.raises(Exception, match="release"):
        await shared.command("fieldsafe.server.updateOs", {"device": "field-unit-7"})
    with pytest.raises(Exception, match="confirm"):
        await shared.command("fieldsafe.server.updateOs", {"release": "2.3.1", "confirm": "yes please"})
    with pytest.raises(Exception, match="binaryPath"):
        await shared.command("fieldsafe.server.flash", {"binaryPath": "/nonexistent/app.bin"})


async def test_fs101_offers_the_planned_update_as_a_code_action(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    u = settings_uri(root)
    diags = await wait_until(lambda: [d for d in shared.diagnostics(u) if d.code == "FS101"], what="FS101")
    actions = await shared.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=u),
            range=diags[0].range,
            context=types.CodeActionContext(diagnostics=diags),
        )
    )
    update = [a for a in actions or [] if isinstance(a, types.CodeAction) and a.command and "update" in a.title.lower()]
    assert update, [a.title for a in actions or []]
    command = update[0].command
    assert command.command == "fieldsafe.server.updateOs"
    assert command.arguments[0]["release"] == "2.3.1" and command.arguments[0]["confirm"] == "ask"


async def test_confirmed_flash_runs_with_progress_and_the_device_runs_it(
    shared: Session, emulator: EmulatorServer
) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    binary = root / "argon.bin"
    binary.write_bytes(app_for("argon", "6.1.1"))
    before = set(shared.client.progress_reports)
    result = await shared.command(
        "fieldsafe.server.flash", {"device": "greenhouse-argon", "binaryPath": str(binary), "confirm": True}
    )
    assert result["outcome"] == "done" and result["sent"] is True, result["findings"]
    assert result["deviceAfter"]["deviceOs"] == "6.1.1"
    if shared.name == "visual_studio_code":  # the Neovim snapshot has no window.workDoneProgress
        new = [shared.client.progress_reports[t] for t in set(shared.client.progress_reports) - before]
        flashing = [r for r in new if isinstance(r[0], types.WorkDoneProgressBegin) and "flashing" in r[0].title]
        assert flashing and isinstance(flashing[0][-1], types.WorkDoneProgressEnd)
        assert flashing[0][-1].message == "done"
        assert any(isinstance(x, types.WorkDoneProgressReport) for x in flashing[0])


async def test_planned_update_is_cancellable_from_the_progress(shared: Session, emulator: EmulatorServer) -> None:
    if shared.name != "visual_studio_code":
        pytest.skip("needs a client with window.workDoneProgress (the Cancel button)")
    import asyncio

    before = set(shared.client.progress_reports)
    unknown = await shared.command("fieldsafe.server.updateOs", {"device": "nope", "release": "2.3.1", "confirm": True})
    assert unknown["outcome"] == "refused" and unknown["findings"][0]["code"] == "FS601"
    # gateway-p2 (5.8.0): no other test here uses it, so a half-done update leaves the others' devices alone
    request = asyncio.ensure_future(
        shared.command("fieldsafe.server.updateOs", {"device": "gateway-p2", "release": "6.2.1", "confirm": True})
    )

    def updating() -> str | None:
        for token in set(shared.client.progress_reports) - before:
            reports = shared.client.progress_reports[token]
            if isinstance(reports[0], types.WorkDoneProgressBegin) and "updating" in reports[0].title:
                return str(token)
        return None

    token = await wait_until(updating, what="the update's progress")
    shared.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(request, 60)
    assert result["outcome"] == "cancelled"
    assert result["findings"][-1]["code"] == "FS611"
    assert isinstance(shared.client.progress_reports[token][-1], types.WorkDoneProgressEnd)
