"""Language server: multi-root / several projects, server commands, options, watched files, registration."""

from __future__ import annotations

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
    make_project,
    project_session,
    server_env,
    settings_uri,
    start,
    stop,
    uri,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures" / "particle-binaries"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


def fs101(session: Session, root: Path) -> list[types.Diagnostic]:
    return [d for d in session.diagnostics(settings_uri(root)) if d.code == "FS101"]


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_multi_root_and_two_projects_in_one_folder(
    client_name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    sensor = make_project(tmp_path / "a", "sensor")  # 2.3.1 vs field-unit-7 on 0.5.3: mismatch
    gateway = make_project(tmp_path / "b", "gateway", pin="5.8.0", platform="p2", device="gateway-p2")  # agrees
    greenhouse = make_project(tmp_path / "b", "greenhouse", pin="6.2.1", platform="argon", device="greenhouse-argon")
    s = await start(client_name, [tmp_path / "a", tmp_path / "b"], server_env(emulator, tmp_path / "home"))
    try:
        await wait_until(lambda: fs101(s, sensor) and fs101(s, greenhouse), what="both mismatches")
        assert "0.5.3" in fs101(s, sensor)[0].message
        assert "6.1.1" in fs101(s, greenhouse)[0].message
        states = {}
        await wait_until(lambda: len({st["projectUri"] for st in s.recorder.statuses}) >= 3, what="3 statuses")
        for st in s.recorder.statuses:
            states[st["projectUri"]] = st
        assert states[uri(gateway)]["pinnedRelease"] == "5.8.0"
        assert states[uri(gateway)]["state"] != "mismatch"
        assert not fs101(s, gateway)
        assert states[uri(greenhouse)]["deviceRelease"] == "6.1.1"
    finally:
        await stop(s)


@pytest_asyncio.fixture(params=CLIENTS, scope="module", loop_scope="module")
async def shared(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    """One server per client for the command tests that only read."""
    base = tmp_path_factory.mktemp(f"ws-{request.param}")
    async with project_session(request.param, base, emulator) as s:
        yield s


@pytest_asyncio.fixture(params=CLIENTS, loop_scope="module")
async def session(request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Session]:
    async with project_session(request.param, tmp_path, emulator) as s:
        yield s


async def test_list_devices(shared: Session) -> None:
    session = shared
    rows = await session.command("fieldsafe.server.listDevices", {})
    by_name = {r["name"]: r for r in rows}
    unit = by_name["field-unit-7"]
    assert unit["platform"] == "electron" and unit["platformId"] == 10 and unit["deviceOs"] == "0.5.3"
    assert set(unit) == {"id", "name", "platform", "platformId", "deviceOs", "cellular", "online", "lastHeard",
                         "product"}  # fmt: skip
    assert by_name["barn-boron"]["product"] == 31337


async def test_list_releases_annotated_for_target_device(shared: Session) -> None:
    session = shared
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: fs101(session, root), what="device resolved")
    rows = await session.command("fieldsafe.server.listReleases", {"projectUri": uri(root)})
    by_version = {r["version"]: r for r in rows}
    assert by_version["0.5.3"]["deviceRuns"] is True
    assert by_version["2.3.1"]["lts"] is True and by_version["2.3.1"]["needsDeviceUpdate"] is True
    assert by_version["0.5.3"]["needsDeviceUpdate"] is False
    assert by_version["2.3.1"]["moduleVersion"] == 2302
    assert "6.2.1" not in by_version  # not an Electron release
    boron = await session.command("fieldsafe.server.listReleases", {"projectUri": uri(root), "platform": "boron"})
    assert "6.2.1" in {r["version"] for r in boron}


async def test_set_target_writes_file_when_not_open(session: Session) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: fs101(session, root))
    result = await session.command("fieldsafe.server.setTarget", {"projectUri": uri(root), "version": "0.5.3"})
    assert result["via"] == "file" and result["applied"] is True
    text = (root / ".vscode" / "settings.json").read_text()
    assert '"particle.firmwareVersion": "0.5.3"' in text and "// Workbench pin" in text
    await wait_until(lambda: not fs101(session, root), what="mismatch cleared")


async def test_set_target_uses_apply_edit_for_open_buffer(session: Session) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    settings = root / ".vscode" / "settings.json"
    await session.open(settings, language="jsonc")
    result = await session.command("fieldsafe.server.setTarget", {"projectUri": uri(root), "device": "field-unit-9"})
    assert result["via"] == "workspace/applyEdit"
    edit = session.recorder.applied[-1]
    assert edit.changes is not None
    new_text = apply_text_edits(settings.read_text(), edit.changes[settings_uri(root)])
    assert new_text == settings.read_text().replace('"field-unit-7"', '"field-unit-9"')


async def test_inspect_binary_and_refresh_devices(shared: Session) -> None:
    session = shared
    binary = next(p for p in sorted(FIXTURES.glob("*.bin")))
    result = await session.command("fieldsafe.server.inspectBinary", {"path": str(binary)})
    assert isinstance(result["text"], str) and result["text"]
    assert result["json"]["file"] == str(binary)
    refreshed = await session.command("fieldsafe.server.refreshDevices")
    assert refreshed["projects"] == [uri(session.root)]  # type: ignore[attr-defined]


async def test_watched_settings_change_rechecks(session: Session) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    await wait_until(lambda: fs101(session, root))
    settings = root / ".vscode" / "settings.json"
    settings.write_text(settings.read_text().replace('"2.3.1"', '"0.5.3"'))
    session.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=settings_uri(root), type=types.FileChangeType.Changed)]
        )
    )
    await wait_until(lambda: not fs101(session, root), what="re-checked after the file changed on disk")


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_invalid_options_fall_back_with_one_message(
    client_name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    make_project(tmp_path / "ws")
    s = await start(
        client_name,
        [tmp_path / "ws"],
        server_env(emulator, tmp_path / "home"),
        init_options={"compileDebounceMs": "soon", "offline": False},
        configuration={"compileOnSave": "yes"},
    )
    try:
        msgs = await wait_until(lambda: [m for m in s.client.messages if "invalid settings" in m.message])
        assert len(msgs) == 1
        assert "compileDebounceMs" in msgs[0].message and "compileOnSave" in msgs[0].message
        dynamic = s.client.capabilities.workspace.did_change_configuration.dynamic_registration  # type: ignore[union-attr]
        methods = {r.method for r in s.recorder.registrations}
        if dynamic:
            assert types.WORKSPACE_DID_CHANGE_CONFIGURATION in methods
            assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES in methods
        else:
            assert types.WORKSPACE_DID_CHANGE_CONFIGURATION not in methods
    finally:
        await stop(s)
