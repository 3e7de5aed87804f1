"""Language server: compile on save against the emulator (flycheck scheduling, cache, cancel, binary check).

The emulator compiles for real (host g++ against stub Device OS headers), so compiler diagnostics
come from a genuine gcc log. Latency faults on ``POST /v1/binaries`` keep a compile in flight long
enough to supersede or cancel it deterministically.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types

from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.faults import make_rule
from lsp_helpers import (
    BROKEN_INO,
    CLIENTS,
    INO,
    Session,
    make_project,
    project_session,
    server_env,
    start,
    stop,
    uri,
    wait_until,
)

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")


@pytest.fixture
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


@pytest.fixture(params=CLIENTS)
async def session(request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Session]:
    async with project_session(request.param, tmp_path, emulator) as s:
        s.ino = s.root / "src" / "sensor.ino"  # type: ignore[attr-defined]
        yield s


def compiles(emulator: EmulatorServer) -> int:
    return len(emulator.seen("/v1/binaries", method="POST"))


def ends(session: Session) -> list[str]:
    """The end messages of all finished progress reports, in token creation order."""
    out = []
    for reports in session.client.progress_reports.values():
        end = [r for r in reports if isinstance(r, types.WorkDoneProgressEnd)]
        if end:
            out.append(end[-1].message or "")
    return out


def after_compiling(session: Session) -> list[dict]:
    """Statuses sent after the first ``compiling`` one (i.e. a compile's result)."""
    states = [x["state"] for x in session.recorder.statuses]
    if "compiling" not in states:
        return []
    return [x for x in session.recorder.statuses[states.index("compiling") + 1 :] if x["state"] != "compiling"]


def progress_supported(session: Session) -> bool:
    caps = session.client.capabilities
    return bool(caps and caps.window and caps.window.work_done_progress)


def ino_publishes(session: Session, ino_uri: str) -> list[types.PublishDiagnosticsParams]:
    return [p for p in session.recorder.publishes if p.uri == ino_uri]


async def test_compile_on_save_publishes_ino_errors_and_clears(session: Session, emulator: EmulatorServer) -> None:
    ino: Path = session.ino  # type: ignore[attr-defined]
    ino_uri = uri(ino)
    ino.write_text(BROKEN_INO)
    session.save(ino_uri)  # never opened: diagnostics are still published by file URI
    diags = await wait_until(
        lambda: [d for d in session.diagnostics(ino_uri) if d.severity == types.DiagnosticSeverity.Error],
        timeout=30,
        what="compiler error on the .ino",
    )
    broken_line = BROKEN_INO.splitlines().index("    delay(1000)")
    assert any(d.range.start.line in (broken_line, broken_line + 1) for d in diags), [
        (d.range.start.line, d.message) for d in diags
    ]
    assert all(str(d.code).startswith("FS3") for d in diags)
    assert await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "failed"])
    ino.write_text(INO)
    session.save(ino_uri)
    await wait_until(
        lambda: not [d for d in session.diagnostics(ino_uri) if str(d.code).startswith("FS3")],
        timeout=30,
        what="compiler errors cleared",
    )
    if progress_supported(session):
        assert ends(session)[-1] == "done"


async def test_saves_coalesce_and_newer_save_supersedes(session: Session, emulator: EmulatorServer) -> None:
    ino: Path = session.ino  # type: ignore[attr-defined]
    ino_uri = uri(ino)
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 1.0,
                                   "count": 1}))  # fmt: skip
    first = BROKEN_INO
    second = INO.replace("    Serial.begin(9600);", "    Serial.begin(9600);\n    another_undefined();")
    ino.write_text(first)
    session.save(ino_uri)
    session.save(ino_uri)  # "Save All": the first compile started at once; this one is the trailing run
    await wait_until(lambda: compiles(emulator) >= 1, what="first compile in flight")
    ino.write_text(second)
    session.save(ino_uri)  # supersedes the slow one in flight
    second_line = second.splitlines().index("    another_undefined();")
    await wait_until(
        lambda: any(d.range.start.line == second_line for d in session.diagnostics(ino_uri)),
        timeout=30,
        what="second generation's diagnostics",
    )
    for params in ino_publishes(session, ino_uri):
        assert not [d for d in params.diagnostics if "undefined_call" in d.message], "a stale result was published"
    assert compiles(emulator) == 2, "saves during a compile must cost one trailing compile"
    if progress_supported(session):
        await wait_until(lambda: ends(session) and ends(session)[-1] == "done", what="the trailing compile ended")
        # the overtaken compile (and one overtaken before its upload, when a save lands in that gap) end cancelled
        assert set(ends(session)[:-1]) == {"cancelled"}, ends(session)


async def test_cancel_from_client(session: Session, emulator: EmulatorServer) -> None:
    if not progress_supported(session):
        pytest.skip("client has no work-done progress")
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 1.0}))
    ino: Path = session.ino  # type: ignore[attr-defined]
    ino.write_text(BROKEN_INO)
    session.save(uri(ino))
    token = await wait_until(lambda: next(iter(session.client.progress_reports), None), what="progress begin")
    await wait_until(lambda: compiles(emulator) >= 1, what="compile in flight")
    session.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    await wait_until(lambda: ends(session) == ["cancelled"], what="progress ended cancelled")
    await asyncio.sleep(1.2)  # the upload finishes in its thread; its result must be dropped
    assert not [d for d in session.diagnostics(uri(ino)) if str(d.code).startswith("FS3")]


async def test_identical_inputs_reuse_result_without_upload(session: Session, emulator: EmulatorServer) -> None:
    ino: Path = session.ino  # type: ignore[attr-defined]
    ino.write_text(BROKEN_INO)
    session.save(uri(ino))
    await wait_until(lambda: session.diagnostics(uri(ino)), timeout=30, what="first compile")
    before = compiles(emulator)
    statuses = len(session.recorder.statuses)
    session.save(uri(ino))  # nothing changed
    await wait_until(lambda: len(session.recorder.statuses) > statuses and session.recorder.statuses[-1]["state"]
                     in ("failed", "ok", "mismatch"), what="second result")  # fmt: skip
    assert compiles(emulator) == before, "identical inputs must not hit the cloud"
    assert [d for d in session.diagnostics(uri(ino)) if str(d.code).startswith("FS3")]


async def test_compile_command_and_cloud_failure_reported_once(session: Session, emulator: EmulatorServer) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "error", "status": 401}))
    for _ in range(2):
        await session.command("fieldsafe.server.compile", {"projectUri": uri(root)})
        await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "failed"], what="failed")
    await asyncio.sleep(0.3)
    shown = [m for m in session.client.messages if "compiling" in m.message]
    assert len(shown) == 1, [m.message for m in session.client.messages]
    assert len([m for m in session.client.log_messages if "compiling" in m.message]) >= 2


async def test_binary_checked_against_device_and_new_pin_recompiles(session: Session, emulator: EmulatorServer) -> None:
    ino: Path = session.ino  # type: ignore[attr-defined]
    root: Path = session.root  # type: ignore[attr-defined]
    settings = root / ".vscode" / "settings.json"
    session.save(uri(ino))
    settings_uri = uri(settings)
    binary = await wait_until(
        lambda: [d for d in session.diagnostics(settings_uri) if d.message.startswith("This binary")],
        timeout=30,
        what="first build checked against field-unit-7",
    )
    assert "field-unit-7" in binary[0].message
    summary = await wait_until(lambda: [d for d in session.diagnostics(uri(ino)) if d.code == binary[0].code])
    assert summary[0].range.start.line == 0, "summarised on the project's main source file"
    assert await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "mismatch"])
    count = compiles(emulator)
    su = await session.open(settings, language="jsonc")
    text = settings.read_text().replace('"2.3.1"', '"0.5.3"')
    session.change(su, text, 2)
    settings.write_text(text)
    session.save(su)
    await wait_until(lambda: compiles(emulator) > count, timeout=30, what="recompile for the new pin")
    await wait_until(
        lambda: not [d for d in session.diagnostics(settings_uri) if d.code == "FS101"],
        timeout=30,
        what="no mismatch left for 0.5.3",
    )
    assert await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "ok"])


@pytest.mark.parametrize("upload_unsaved", [False, True])
async def test_upload_unsaved_buffers_option(upload_unsaved: bool, emulator: EmulatorServer, tmp_path: Path) -> None:
    """Saved files are compiled by default; with uploadUnsavedBuffers the open buffers are."""
    root = make_project(tmp_path / "ws")
    (root / "src" / "helper.cpp").write_text('#include "Particle.h"\nint helper() { return 1; }\n')
    s = await start(
        "visual_studio_code",
        [tmp_path / "ws"],
        server_env(emulator, tmp_path / "home"),
        configuration={"uploadUnsavedBuffers": upload_unsaved},
    )
    try:
        ino_uri = await s.open(root / "src" / "sensor.ino")
        s.change(ino_uri, BROKEN_INO, 2)  # edited, not saved
        helper_uri = await s.open(root / "src" / "helper.cpp")
        s.save(helper_uri)
        status = await wait_until(lambda: after_compiling(s), timeout=30, what="compile result")
        errors = [d for d in s.diagnostics(ino_uri) if str(d.code).startswith("FS3")]
        assert bool(errors) == upload_unsaved, (status[-1], errors)
    finally:
        await stop(s)


async def test_compile_without_platform_reports_fs402(session: Session, emulator: EmulatorServer) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    settings = root / ".vscode" / "settings.json"
    su = await session.open(settings, language="jsonc")
    text = settings.read_text().replace('    "particle.targetPlatform": "electron", // the board in the field\n', "")
    session.change(su, text, 2)
    before = compiles(emulator)
    await session.command("fieldsafe.server.compile", {"projectUri": uri(root)})
    diag = await wait_until(lambda: [d for d in session.diagnostics(su) if d.code == "FS402"], what="FS402")
    assert "particle.targetPlatform" in diag[0].message
    line = text.splitlines()[diag[0].range.start.line]
    assert '"particle.firmwareVersion"' in line
    assert compiles(emulator) == before


async def test_pin_recheck_during_a_compile_keeps_the_compiling_state(
    session: Session, emulator: EmulatorServer
) -> None:
    """A settings save while a compile is in flight must not flip the status bar back to idle/ok."""
    ino: Path = session.ino  # type: ignore[attr-defined]
    root: Path = session.root  # type: ignore[attr-defined]
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 2.0,
                                   "count": 1}))  # fmt: skip
    session.save(uri(ino))
    await wait_until(lambda: [s for s in session.recorder.statuses if s["state"] == "compiling"], what="compiling")
    compiling_at = len(session.recorder.statuses)
    session.save(uri(root / ".vscode" / "settings.json"))  # the pin is re-checked while the compile runs
    await wait_until(lambda: compiles(emulator) >= 1, what="the compile reached the cloud")
    # the compile's own result: the built binary checked against field-unit-7
    final = await wait_until(
        lambda: [s for s in session.recorder.statuses if (s["message"] or "").startswith("This binary")],
        timeout=30,
        what="the compile result",
    )
    during = session.recorder.statuses[compiling_at : session.recorder.statuses.index(final[0])]
    assert all(s["state"] == "compiling" for s in during), during
    assert final[0]["state"] == "mismatch" and "field-unit-7" in final[0]["message"]
