"""Issue 14 in the editor: a cloud fault never turns a warning into silence, and never shows the token.

The fault matrix shares one emulator and one language server for the module: every case first sets up
a known state (the pin's FS101 against field-unit-7 on 0.5.3, FS301 errors from a broken build), then
makes one endpoint fail in one way, fixes the code and asserts that

* FS101 is still on the pin (said with the last known state's age when the lookup failed), the status
  is never ``ok``;
* the FS301s of the old build, which no longer describe the fixed file, are marked ``[stale]`` and are
  no longer errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from fieldsafe.emulator import DEFAULT_TOKEN, EmulatorServer, default_state
from fieldsafe.emulator.faults import make_rule
from lsp_helpers import (
    BROKEN_INO,
    INO,
    Recorder,
    Session,
    client_factory,
    make_project,
    server_env,
    settings_uri,
    start,
    stop,
    uri,
    wait_until,
)

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++"),
]

FAULT_KINDS = {
    "5xx": {"kind": "error", "status": 503},
    "401": {"kind": "token_expired"},
    "429": {"kind": "rate_limit", "retry_after": 0},
    "malformed": {"kind": "malformed_json"},
    "truncated": {"kind": "truncate"},
    "dropped": {"kind": "drop"},
}
ENDPOINTS = {
    "device lookup": {"pattern": "/v1/devices/*", "method": "GET"},
    "upload": {"pattern": "/v1/binaries", "method": "POST"},
    "download": {"pattern": "/v1/binaries/*", "method": "GET"},
}


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    base = tmp_path_factory.mktemp("failsafe")
    root = make_project(base / "ws")
    s = await start("visual_studio_code", [base / "ws"], server_env(emulator, base / "home"))
    s.root = root  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        emulator.faults.clear()
        await stop(s)


def by_code(session: Session, u: str, code: str) -> list[types.Diagnostic]:
    return [d for d in session.diagnostics(u) if str(d.code) == code]


def pin_fs101(session: Session, u: str) -> list[types.Diagnostic]:
    """The pin check's FS101 (the target layer), not the built binary's."""
    return [d for d in by_code(session, u, "FS101") if not d.message.startswith("This binary")]


def last_status(session: Session) -> dict:
    return session.recorder.statuses[-1]


async def compile_and_wait(session: Session, root: Path) -> dict:
    """Ask for a compile (of new inputs: never a cache hit) and return the status that ends it."""
    before = len(session.recorder.statuses)
    await session.command("fieldsafe.server.compile", {"projectUri": uri(root)})

    def done() -> list[dict]:
        states = [x["state"] for x in session.recorder.statuses[before:]]
        if "compiling" not in states:
            return []
        first = before + states.index("compiling")
        return [x for x in session.recorder.statuses[first:] if x["state"] != "compiling"]

    return (await wait_until(done, timeout=40, what="compile result"))[0]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("fault", list(FAULT_KINDS))
async def test_fault_matrix_keeps_dangerous_findings_and_marks_stale_ones(
    fault: str, endpoint: str, session: Session, emulator: EmulatorServer
) -> None:
    root: Path = session.root  # type: ignore[attr-defined]
    ino = root / "src" / "sensor.ino"
    pin_uri, ino_uri = settings_uri(root), uri(ino)
    emulator.faults.clear()
    variant = f"// {fault} x {endpoint}\n"
    # known state: the device was looked up live (FS101 on the pin), the last build had errors
    await session.command("fieldsafe.server.refreshDevices")
    fs101 = await wait_until(lambda: pin_fs101(session, pin_uri), what="FS101 on the pin")
    assert "last known state" not in fs101[0].message
    ino.write_text(BROKEN_INO + variant)
    await compile_and_wait(session, root)
    await wait_until(lambda: by_code(session, ino_uri, "FS301"), timeout=30, what="FS301 from the broken build")

    emulator.faults.add(make_rule({**ENDPOINTS[endpoint], **FAULT_KINDS[fault]}))
    try:
        ino.write_text(INO + variant)  # the user fixes the code while the cloud is failing
        if endpoint == "device lookup":
            await session.command("fieldsafe.server.refreshDevices")
            kept = await wait_until(
                lambda: [d for d in pin_fs101(session, pin_uri) if "last known state" in d.message],
                what=f"FS101 kept with its age after a {fault} lookup",
            )
            assert kept[0].severity == types.DiagnosticSeverity.Error
            assert last_status(session)["state"] == "mismatch"
            final = await compile_and_wait(session, root)  # the build itself succeeds
            assert final["state"] != "ok", final
            assert pin_fs101(session, pin_uri)
        elif (endpoint, fault) == ("download", "malformed"):
            # a 200 whose body is not a module: the build is new (no compiler errors), its binary unusable
            final = await compile_and_wait(session, root)
            assert final["state"] == "failed" and "cannot read" in final["message"], final
            assert "compiler error" not in final["message"]
            assert by_code(session, ino_uri, "FS307") and not by_code(session, ino_uri, "FS301")
        else:
            final = await compile_and_wait(session, root)
            assert final["state"] == "failed", final
            stale = by_code(session, ino_uri, "FS301")
            assert stale, "the old errors are kept, marked"
            for diag in stale:
                assert diag.message.startswith("[stale] "), diag.message
                assert diag.severity == types.DiagnosticSeverity.Information
            assert "stale" in final["message"]
            assert pin_fs101(session, pin_uri), "the pin's FS101 never disappears"
            assert DEFAULT_TOKEN not in final["message"]
    finally:
        emulator.faults.clear()


async def test_unchecked_target_is_never_ok(emulator: EmulatorServer, tmp_path: Path) -> None:
    """No known state and a failing lookup: the status says the device could not be checked."""
    root = make_project(tmp_path / "ws", pin="0.5.3")  # no FS101 to lean on: 0.5.3 is what it runs
    emulator.faults.add(make_rule({"pattern": "/v1/devices/*", "kind": "error", "status": 500}))
    try:
        s = await start("neovim", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
        try:
            status = await wait_until(
                lambda: [x for x in s.recorder.statuses if "could not be checked" in (x["message"] or "")],
                what="unchecked status",
            )
            assert status[-1]["state"] == "mismatch"
            final = await compile_and_wait(s, root)
            assert final["state"] == "mismatch" and "could not be checked" in final["message"], final
        finally:
            await stop(s)
    finally:
        emulator.faults.clear()


async def test_shutdown_with_a_request_pending_answers_and_exits_0(emulator: EmulatorServer, tmp_path: Path) -> None:
    """pygls 2.1.1's shutdown iterated the pending requests while cancelling them (-32603, exit 1)."""
    make_project(tmp_path / "ws")
    s = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    emulator.faults.add(make_rule({"pattern": "/v1/devices", "kind": "latency", "delay": 4.0}))
    try:
        pending = asyncio.ensure_future(s.command("fieldsafe.server.listDevices"))
        await wait_until(lambda: emulator.seen("/v1/devices"), what="device list in flight")
        await asyncio.sleep(0.1)
        await asyncio.wait_for(s.client.shutdown_async(None), timeout=5)  # raises on an error reply
        s.client.exit(None)
        proc = s.client._server
        assert proc is not None
        code = await asyncio.wait_for(proc.wait(), timeout=5)
        assert code == 0
        pending.cancel()
    finally:
        emulator.faults.clear()
        await s.client.stop()


async def test_workspace_api_url_is_ignored_and_said_so(emulator: EmulatorServer, tmp_path: Path) -> None:
    """A cloned repository's settings must not choose where the token and the sources go."""
    root = make_project(tmp_path / "ws")
    trap = EmulatorServer(default_state(), tokens=[DEFAULT_TOKEN])
    with trap:
        s = await start(
            "visual_studio_code",
            [tmp_path / "ws"],
            server_env(emulator, tmp_path / "home"),
            init_options={"apiUrl": trap.url},
            configuration={"apiUrl": trap.url},
        )
        try:
            await wait_until(lambda: by_code(s, settings_uri(root), "FS101"), what="pin check")
            await compile_and_wait(s, root)
            await s.command("fieldsafe.server.listDevices")
            shown = [m.message for m in s.client.messages if "apiUrl is ignored" in m.message]
            assert shown, [m.message for m in s.client.messages]
        finally:
            await stop(s)
        assert trap.seen("*") == [], "nothing may be sent to a workspace-configured API URL"
    assert emulator.seen("/v1/devices/*")


async def test_new_particle_login_is_picked_up_without_restart(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The profile file rewritten by `particle login` replaces a rejected token (no restart)."""
    root = make_project(tmp_path / "ws")
    home = tmp_path / "home"
    env = server_env(emulator, home)
    del env["PARTICLE_ACCESS_TOKEN"]
    profile = home / ".particle" / "particle.config.json"
    profile.parent.mkdir(parents=True)
    profile.write_text(json.dumps({"access_token": "expired-token-0000"}))
    s = await start("visual_studio_code", [tmp_path / "ws"], env)
    try:
        await wait_until(
            lambda: [x for x in s.recorder.statuses if "could not be checked" in (x["message"] or "")],
            what="the rejected token is reported",
        )
        profile.write_text(json.dumps({"access_token": DEFAULT_TOKEN, "username": "demo"}))  # particle login
        await s.command("fieldsafe.server.refreshDevices")
        await wait_until(lambda: by_code(s, settings_uri(root), "FS101"), what="checked with the new login")
    finally:
        await stop(s)


# ---------------------------------------------------------------------------------------- the secret

SECRET = "fs14-lsp-secret-token-5e2b"


def encoded_forms(secret: str) -> list[str]:
    raw = secret + "\n"
    forms = {secret, raw, repr(raw)[1:-1], json.dumps(raw)[1:-1], quote(raw, safe=""), quote_plus(raw)}
    forms |= {json.dumps(json.dumps(raw)[1:-1])[1:-1], quote(secret, safe="")}
    return sorted(forms)


async def test_token_with_newline_never_reaches_any_stream_or_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    emu = EmulatorServer(default_state(), tokens=[SECRET])
    with emu:
        root = make_project(tmp_path / "ws")
        home = tmp_path / "home"
        env = server_env(emu, home)
        env["PARTICLE_ACCESS_TOKEN"] = SECRET + "\n"  # pasted from a file: a trailing newline
        log_file = tmp_path / "lsp.log"
        recorder = Recorder()
        config = ClientServerConfig(
            server_command=[
                sys.executable,
                "-m",
                "fieldsafe",
                "lsp",
                "--log-level",
                "debug",
                "--log-file",
                str(log_file),
            ],
            client_factory=client_factory(recorder),
            server_env=env,
        )
        client = await config.start()
        from pytest_lsp import client_capabilities

        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual_studio_code"),
                workspace_folders=[types.WorkspaceFolder(uri=uri(tmp_path / "ws"), name="ws")],
            )
        )
        s = Session(client, recorder, "visual_studio_code")
        s.root = root  # type: ignore[attr-defined]
        replies: list[str] = []
        try:
            await wait_until(lambda: by_code(s, settings_uri(root), "FS101"), what="the token works once stripped")
            for rule in (
                {"pattern": "/v1/binaries", "method": "POST", "kind": "token_expired"},
                {"pattern": "/v1/devices*", "kind": "error", "status": 500},
                {"pattern": "/v1/binaries/*", "method": "GET", "kind": "truncate"},
            ):
                emu.faults.clear()
                emu.faults.add(make_rule(rule))
                (root / "src" / "sensor.ino").write_text(BROKEN_INO + f"// {rule['kind']}\n")
                await compile_and_wait(s, root)
                try:
                    replies.append(json.dumps(await s.command("fieldsafe.server.listDevices")))
                except Exception as exc:  # the command's error reply
                    replies.append(str(exc))
                await s.command("fieldsafe.server.refreshDevices")
            # a reply that would quote the token (here: a path named like it) is scrubbed on the wire
            try:
                await s.command("fieldsafe.server.inspectBinary", {"path": f"/nonexistent/{SECRET}.bin"})
            except Exception as exc:
                replies.append(str(exc))
            assert "<redacted>" in replies[-1], replies[-1]
        finally:
            emu.faults.clear()
            await stop(s)
        received = [m.message for m in s.client.messages] + [m.message for m in s.client.log_messages]
        received += [json.dumps(x) for x in recorder.statuses] + replies
        received += [d.message for p in recorder.publishes for d in p.diagnostics]
        captured = capfd.readouterr()
        files = [log_file.read_text()] + [p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()]
        haystacks = {"client": "\n".join(received), "stderr": captured.err, "stdout": captured.out}
        haystacks.update({f"file {i}": text for i, text in enumerate(files)})
        assert "Sending data" in log_file.read_text(), "debug logging ran, so the protocol bodies were logged"
        for where, text in haystacks.items():
            for form in encoded_forms(SECRET):
                assert form not in text, f"token form {form!r} in {where}"
        assert emu.seen("/v1/devices/*"), "the stripped token was used"


async def test_superseded_compiles_log_no_traceback(
    emulator: EmulatorServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each superseded compile used to log a pygls traceback, and urllib3 warned "Connection pool is full"."""
    root = make_project(tmp_path / "ws")
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 0.4}))
    s = await start(
        "visual_studio_code",
        [tmp_path / "ws"],
        server_env(emulator, tmp_path / "home"),
        configuration={"compileDebounceMs": 20},
    )
    try:
        ino = root / "src" / "sensor.ino"
        u = await s.open(ino)
        for n in range(8):  # saves that land in the coalescing window, in the upload and in between
            ino.write_text(INO + f"// save {n}\n")
            s.save(u)
            await asyncio.sleep((0.01, 0.2, 0.5)[n % 3])
        await wait_until(
            lambda: last_status(s)["state"] in ("ok", "mismatch", "failed"),
            timeout=60,
            what=f"the last compile's result ({s.recorder.statuses[-3:]})",
        )
        await asyncio.sleep(1.0)
    finally:
        emulator.faults.clear()
        await stop(s)
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    assert "Connection pool is full" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_fifo_listing_and_huge_settings_keep_the_editor_answering(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """A FIFO particle.include used to block a worker per save; a 20 MB settings.json the event loop."""
    fifo = make_project(tmp_path / "ws", "fifo")
    os.mkfifo(fifo / "particle.include")
    huge = make_project(tmp_path / "ws", "huge")
    (huge / ".vscode" / "settings.json").write_text(
        '{"particle.firmwareVersion": "2.3.1", "x": "' + "y" * 20_000_000 + '"}'
    )
    s = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        too_big = await wait_until(lambda: by_code(s, settings_uri(huge), "FS401"), what="FS401 on the huge file")
        assert "at most" in too_big[0].message
        loop = asyncio.get_running_loop()
        for n in range(3):
            (fifo / "src" / "fifo.ino").write_text(INO + f"// {n}\n")
            final = await compile_and_wait(s, fifo)
            assert final["state"] in ("mismatch", "failed", "ok"), final
            started = loop.time()
            await s.command("fieldsafe.server.listReleases", {"projectUri": uri(fifo)})
            assert loop.time() - started < 3.0
        shown = [m.message for m in s.client.messages if "particle.include" in m.message]
        assert shown and "named pipe" in shown[0], [m.message for m in s.client.messages]
    finally:
        await stop(s)
