"""Language server, fleet target: diagnostics on the pin and on fieldsafe.targetProduct, the retarget
quick-fixes, the hover histogram, the status text and the product/group pickers (pytest-lsp, real emulator).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types

from fieldsafe.emulator import DEFAULT_TOKEN, EmulatorServer
from fleet_helpers import fleet_state
from lsp_helpers import (
    CLIENTS,
    Session,
    apply_text_edits,
    make_project,
    server_env,
    settings_uri,
    start,
    stop,
    wait_until,
)

MIX = (("2.3.1", 54), ("4.0.2", 900), ("6.3.4", 46))
PRODUCT_LINE = '    "fieldsafe.targetProduct": "trackers",\n'

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(fleet_state(MIX, stale=5, updates_disabled=3, development=2), tokens=[DEFAULT_TOKEN]) as emu:
        yield emu


def fleet_project(base: Path, pin: str = "6.3.4") -> Path:
    root = make_project(base / "ws", pin=pin, platform="boron", device=None)
    path = root / ".vscode" / "settings.json"
    text = path.read_text()
    path.write_text(text.replace('    "C_Cpp.default', PRODUCT_LINE + '    "C_Cpp.default'))
    return root


@pytest_asyncio.fixture(params=CLIENTS, scope="module", loop_scope="module")
async def shared(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    base = tmp_path_factory.mktemp(f"fleet-{request.param}")
    root = fleet_project(base)
    session = await start(request.param, [base / "ws"], server_env(emulator, base / "home"))
    session.root = root  # type: ignore[attr-defined]
    try:
        yield session
    finally:
        await stop(session)


def by_code(session: Session, root: Path, code: str) -> list[types.Diagnostic]:
    return [d for d in session.diagnostics(settings_uri(root)) if d.code == code]


def _line(root: Path, n: int) -> str:
    return (root / ".vscode" / "settings.json").read_text().splitlines()[n]


async def test_fleet_diagnostic_on_the_pin_with_related_product(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    diag = (await wait_until(lambda: by_code(shared, root, "FS501"), what="FS501 on the pin"))[0]
    line = _line(root, diag.range.start.line)
    assert line[diag.range.start.character : diag.range.end.character] == '"6.3.4"'
    assert diag.severity == types.DiagnosticSeverity.Error  # stuck devices, healed ones without the policy
    assert "998 devices" in diag.message and "updates disabled" in diag.message
    assert diag.related_information
    assert all(
        '"fieldsafe.targetProduct"' in _line(root, r.location.range.start.line) for r in diag.related_information
    )
    assert any("on 2.3.1" in r.message for r in diag.related_information)
    uncertain = (await wait_until(lambda: by_code(shared, root, "FS503"), what="FS503 on the product"))[0]
    assert '"fieldsafe.targetProduct"' in _line(root, uncertain.range.start.line)


async def test_fleet_quick_fixes_retarget_to_floor_and_intermediate(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    diag = (await wait_until(lambda: by_code(shared, root, "FS501")))[0]
    actions = await shared.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(settings_uri(root)),
            range=diag.range,
            context=types.CodeActionContext(diagnostics=[diag]),
        )
    )
    titles = [a.title for a in actions or []]
    assert "Retarget to 2.3.1 (runs on all 998 devices)" in titles, titles
    assert any(t.startswith("Retarget to 4.0.2: runs as is on ") for t in titles), titles
    floor = next(a for a in actions if a.title.startswith("Retarget to 2.3.1"))
    original = (root / ".vscode" / "settings.json").read_text()
    edits = floor.edit.changes[settings_uri(root)]
    assert apply_text_edits(original, edits) == original.replace('"6.3.4"', '"2.3.1"')


async def test_hover_on_pin_shows_the_fleet_histogram(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    await wait_until(lambda: by_code(shared, root, "FS501"))
    u = await shared.open(root / ".vscode" / "settings.json", language="jsonc")
    text = (root / ".vscode" / "settings.json").read_text()
    line_no = next(i for i, line in enumerate(text.splitlines()) if "firmwareVersion" in line)
    col = text.splitlines()[line_no].index('"6.3.4"') + 2
    result = await shared.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(u), types.Position(line_no, col))
    )
    assert result is not None
    value = result.contents.value  # type: ignore[union-attr]
    assert "Fleet trackers: 998 devices, floor 2.3.1" in value
    assert "| Device OS |" in value and "█" in value and "(floor)" in value and "(pin)" in value
    assert "Pin 6.3.4:" in value and "deferred" in value


async def test_status_names_the_fleet(shared: Session) -> None:
    statuses = await wait_until(lambda: [s for s in shared.recorder.statuses if s.get("fleet")], what="fleet status")
    assert statuses[-1]["fleet"] == "trackers: 998 devices, floor 2.3.1"


async def test_product_and_group_pickers_and_fleet_view(shared: Session) -> None:
    root: Path = shared.root  # type: ignore[attr-defined]
    await wait_until(lambda: by_code(shared, root, "FS501"))
    products = await shared.command("fieldsafe.server.listProducts", {})
    slugs = [p["slug"] for p in _plain(products)["products"]]
    assert "trackers" in slugs
    groups = _plain(await shared.command("fieldsafe.server.listGroups", {"product": "trackers"}))
    assert groups["groups"][0]["name"] == "beta" and groups["groups"][0]["devices"] == 100
    view = _plain(await shared.command("fieldsafe.server.fleetView", {}))
    assert view["devices"] == 998 and view["floor"] == "2.3.1" and view["pin"] == "6.3.4"
    rows = {r["release"]: r for r in view["histogram"]}
    assert rows["6.3.4"]["pin"] and rows["2.3.1"]["floor"] and rows["2.3.1"]["worst"] == "deferred"
    assert view["blocksCi"]
    with pytest.raises(Exception, match="product"):
        await shared.command("fieldsafe.server.setFleetTarget", {"product": "../etc"})


async def test_set_fleet_target_writes_groups_and_rechecks(emulator: EmulatorServer, tmp_path: Path) -> None:
    root = fleet_project(tmp_path)
    session = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        await wait_until(lambda: by_code(session, root, "FS501"))
        result = await session.command("fieldsafe.server.setFleetTarget", {"product": "trackers", "groups": ["beta"]})
        assert _plain(result)["applied"]
        text = (root / ".vscode" / "settings.json").read_text()
        assert '"fieldsafe.targetGroups": ["beta"]' in text and "// Workbench pin" in text
        status = await wait_until(
            lambda: [s for s in session.recorder.statuses if s.get("fleet") == "trackers: 100 devices, floor 2.3.1"],
            what="status for the beta group",
        )
        assert status
        refreshed = _plain(await session.command("fieldsafe.server.refreshFleet", {}))
        assert refreshed["complete"] and refreshed["listed"] == 1000
        titles = [
            getattr(r, "title", None) or getattr(r, "message", None) or ""
            for reports in session.client.progress_reports.values()
            for r in reports
        ]
        assert any("listing product trackers" in t for t in titles), titles  # $/progress for the listing
        assert any("page 10 of 10" in t for t in titles), titles
    finally:
        await stop(session)


def _plain(value: object) -> dict:
    """Command results arrive as attribute objects from pygls' converter; compare them as JSON."""
    if isinstance(value, dict):
        return value
    return json.loads(json.dumps(value, default=lambda o: getattr(o, "__dict__", str(o))))
