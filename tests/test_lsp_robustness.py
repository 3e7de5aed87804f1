"""Language server robustness: what real editors send that the happy-path tests do not.

``untitled:`` buffers and files outside any project, ``settings.json`` typed into invalid JSON (or
emptied, BOM, CRLF, odd pin values), a device that does not exist or has no Device OS on record,
bursts of edits on a big file, closing/deleting files while work is in flight, every way the cloud
fails during a compile, shutdown mid-compile, bad options and bad command arguments, and positions
in non-ASCII text under both position encodings (pytest-lsp's neovim negotiates UTF-8).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from fieldsafe.emulator import DEFAULT_TOKEN, EmulatorServer
from fieldsafe.emulator.faults import make_rule
from lsp_helpers import (
    CLIENTS,
    INO,
    SETTINGS,
    Recorder,
    Session,
    client_factory,
    make_project,
    project_session,
    server_env,
    settings_uri,
    start,
    stop,
    uri,
    wait_until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")


@pytest.fixture(scope="module")
def emulator() -> EmulatorServer:
    with EmulatorServer() as emu:
        yield emu


def by_code(session: Session, u: str, code: str) -> list[types.Diagnostic]:
    return [d for d in session.diagnostics(u) if str(d.code) == code]


def messages(session: Session) -> list[str]:
    """Every showMessage and logMessage text the client received."""
    shown = [m.message for m in session.client.messages]
    logged = [m.message for m in session.client.log_messages]
    return shown + logged


def open_text(session: Session, u: str, text: str, language: str = "cpp") -> None:
    session.opened.add(u)
    session.client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=u, language_id=language, version=1, text=text))
    )


def pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


# ---------------------------------------------------------------------------------------- odd documents


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_untitled_and_non_file_uris_are_ignored_quietly(
    client_name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    async with project_session(client_name, tmp_path, emulator) as s:
        for u, lang in (
            ("untitled:Untitled-1", "cpp"),
            ("git:/x/sensor.ino?ref=HEAD", "cpp"),
            ("untitled:settings.json", "jsonc"),
        ):
            open_text(s, u, INO + "void f() { analogWriteResolution(D0, 8); }\n", lang)
            s.change(u, INO + "// edited\n", 2)
            hov = await s.client.text_document_hover_async(
                types.HoverParams(types.TextDocumentIdentifier(u), pos(4, 6))
            )
            assert hov is None
            acts = await s.client.text_document_code_action_async(
                types.CodeActionParams(
                    types.TextDocumentIdentifier(u),
                    types.Range(pos(0, 0), pos(3, 0)),
                    types.CodeActionContext(diagnostics=[]),
                )
            )
            assert not acts
            comp = await s.client.text_document_completion_async(
                types.CompletionParams(types.TextDocumentIdentifier(u), pos(0, 0))
            )
            assert comp is None or not comp.items
            s.save(u)
            s.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(u)))
        # the server is still alive and answers
        await s.command("fieldsafe.server.listReleases", {"projectUri": uri(s.root)})  # type: ignore[attr-defined]
        assert not [m for m in s.client.log_messages if m.type == types.MessageType.Error]


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_ino_outside_workspace_folders(client_name: str, emulator: EmulatorServer, tmp_path: Path) -> None:
    """A sketch opened from elsewhere (File > Open) is a legacy project: its pin is checked, it is linted."""
    elsewhere = tmp_path / "elsewhere" / "blink"
    elsewhere.mkdir(parents=True)
    (elsewhere / "blink.ino").write_text(INO + "void f() { analogWriteResolution(D0, 8); }\n")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "notes.cpp").write_text("int x;\n")
    async with project_session(client_name, tmp_path, emulator) as s:
        await s.open(loose / "notes.cpp")  # no project anywhere above: nothing happens
        u = await s.open(elsewhere / "blink.ino")
        hov = await s.client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(u), pos(4, 6)))
        assert hov is None or hov.contents
        await s.command("fieldsafe.server.listReleases", {"projectUri": uri(elsewhere)})
        assert s.diagnostics(uri(loose / "notes.cpp")) == []


# ------------------------------------------------------------------------------------ settings.json


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_settings_typed_invalid_then_fixed(client_name: str, emulator: EmulatorServer, tmp_path: Path) -> None:
    async with project_session(client_name, tmp_path, emulator) as s:
        root: Path = s.root  # type: ignore[attr-defined]
        su = await s.open(root / ".vscode" / "settings.json", "jsonc")
        await wait_until(lambda: by_code(s, su, "FS101"), what="pin mismatch")
        broken = SETTINGS.replace('"particle.targetPlatform"', '"particle.targetPlatform" "x"')
        s.change(su, broken, 2)
        diag = (await wait_until(lambda: by_code(s, su, "FS401"), what="FS401"))[0]
        line = broken.splitlines().index(next(x for x in broken.splitlines() if '"x"' in x))
        assert diag.range.start.line == line, (diag.range, diag.message)
        assert not by_code(s, su, "FS101")
        s.change(su, "", 3)  # emptied (select all, delete): no pin, as Workbench reads it; nothing to flag
        await wait_until(lambda: not s.diagnostics(su), what="emptied file: diagnostics cleared")
        s.change(su, SETTINGS, 4)
        await wait_until(lambda: by_code(s, su, "FS101") and not by_code(s, su, "FS401"), what="recovered")


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_settings_with_bom_on_disk(client_name: str, emulator: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws")
    path = root / ".vscode" / "settings.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    s = await start(client_name, [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        await wait_until(lambda: by_code(s, settings_uri(root), "FS101"), what="pin read despite the BOM")
        assert not by_code(s, settings_uri(root), "FS401")
    finally:
        await stop(s)


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_crlf_settings_retarget_keeps_crlf(client_name: str, emulator: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws")
    path = root / ".vscode" / "settings.json"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    s = await start(client_name, [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        su = settings_uri(root)
        diag = (await wait_until(lambda: by_code(s, su, "FS101"), what="mismatch"))[0]
        acts = await s.client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(su), diag.range, types.CodeActionContext(diagnostics=[diag])
            )
        )
        retarget = next(a for a in acts or [] if isinstance(a, types.CodeAction) and "0.5.3" in a.title)
        edits = [e for changes in (retarget.edit.changes or {}).values() for e in changes]
        if not edits:
            edits = [e for dc in retarget.edit.document_changes or [] for e in dc.edits]
        assert edits and all("\n" not in e.new_text or "\r\n" in e.new_text for e in edits)
        assert all(e.range.start.line == e.range.end.line == 2 for e in edits), edits
        # file fallback (setTarget without the buffer open) keeps CRLF on disk too
        await s.command("fieldsafe.server.setTarget", {"projectUri": uri(root), "version": "0.5.3"})
        data = path.read_bytes()
        assert b'"0.5.3"' in data and data.count(b"\r\n") == data.count(b"\n"), data
    finally:
        await stop(s)


@pytest.mark.parametrize(
    ("pin_text", "expect"),
    [
        ("", None),  # key missing
        ("null", None),
        ("231", "FS401"),
        ('""', None),
    ],
)
async def test_odd_pin_values(pin_text: str, expect: str | None, emulator: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws")
    path = root / ".vscode" / "settings.json"
    text = path.read_text()
    if pin_text:
        text = text.replace('"2.3.1"', pin_text)
    else:
        text = text.replace('    "particle.firmwareVersion": "2.3.1",\n', "")
    path.write_text(text)
    s = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        su = settings_uri(root)
        await wait_until(lambda: s.recorder.statuses, what="a status")
        await asyncio.sleep(0.3)
        diags = s.diagnostics(su)
        if expect:  # a number: FS401 on the value, saying to quote it
            assert [str(d.code) for d in diags] == [expect]
            assert diags[0].range.start == pos(2, 32) and "double quotes" in diags[0].message
        else:
            assert not diags
        await s.command("fieldsafe.server.compile", {"projectUri": uri(root)})
        await wait_until(lambda: s.recorder.statuses[-1]["state"] == "failed", what="failed compile")
        assert by_code(s, su, expect or "FS402")
    finally:
        await stop(s)


async def test_unknown_device_and_device_without_os(emulator: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws", device="no-such-device")
    other = make_project(tmp_path / "ws", "other", device="field-unit-9", pin="2.3.1")
    emulator.state.find_device("field-unit-9").system_firmware_version = None  # type: ignore[union-attr]
    s = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    try:
        diag = (await wait_until(lambda: by_code(s, settings_uri(root), "FS403"), what="FS403"))[0]
        assert diag.severity == types.DiagnosticSeverity.Warning
        assert "no-such-device" in diag.message and "particle.targetDevice" in diag.message
        assert diag.range.start.line == 4  # on the targetDevice value, where it is fixed
        info = await wait_until(lambda: by_code(s, settings_uri(other), "FS112"), what="FS112")
        assert "has not reported its Device OS" in info[0].message
        status = [x for x in s.recorder.statuses if x["projectUri"] == uri(other)][-1]
        assert status["deviceRelease"] is None
    finally:
        emulator.state.find_device("field-unit-9").system_firmware_version = "2.3.1"  # type: ignore[union-attr]
        await stop(s)


# ------------------------------------------------------------------------------- cloud failures


FAULTS = [
    # (fault rule, failure kind the user sees, a word the message must contain)
    ({"pattern": "/v1/binaries", "method": "POST", "kind": "error", "status": 500}, "ServerError", "500"),
    ({"pattern": "/v1/binaries", "method": "POST", "kind": "rate_limit", "retry_after": 120}, "RateLimited", "429"),
    ({"pattern": "/v1/binaries", "method": "POST", "kind": "malformed_json"}, "BadResponse", "JSON"),
    ({"pattern": "/v1/binaries/*", "method": "GET", "kind": "truncate"}, "BadResponse", "truncated"),
    ({"pattern": "/v1/binaries", "method": "POST", "kind": "drop"}, "Offline", "reach"),
    ({"pattern": "/v1/binaries", "method": "POST", "kind": "token_expired"}, "TokenExpired", "expired"),
]


@needs_gxx
async def test_every_cloud_failure_during_a_compile(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with project_session("visual_studio_code", tmp_path, emulator) as s:
        root: Path = s.root  # type: ignore[attr-defined]
        await wait_until(lambda: s.recorder.statuses, what="first status")
        try:
            for n, (rule, kind, word) in enumerate(FAULTS + FAULTS[:1]):
                emulator.faults.clear()
                emulator.faults.add(make_rule({**rule, "count": None}))
                before = len(s.recorder.statuses)
                tokens_before = len(s.client.progress_reports)
                (root / "src" / "sensor.ino").write_text(INO + f"// variant {n}\n")  # never a cache hit
                await s.command("fieldsafe.server.compile", {"projectUri": uri(root)})
                final = await wait_until(
                    lambda b=before: [x for x in s.recorder.statuses[b:] if x["state"] == "failed"],
                    timeout=30,
                    what=f"failed status for {kind}",
                )
                assert word.lower() in final[-1]["message"].lower(), (kind, final[-1]["message"])
                await wait_until(lambda t=tokens_before: len(s.client.progress_reports) > t, what="progress")
                reports = list(s.client.progress_reports.values())[-1]
                await wait_until(lambda r=reports: isinstance(r[-1], types.WorkDoneProgressEnd), what="progress end")
        finally:
            emulator.faults.clear()
        shown = [m.message for m in s.client.messages if "compiling" in m.message]
        logged = [m.message for m in s.client.log_messages if "compiling" in m.message]
        assert len(shown) == len({k for _, k, _ in FAULTS}), shown  # one per failure kind
        assert len(logged) == len(FAULTS) + 1, logged  # every occurrence
        everything = messages(s) + [str(x) for x in s.recorder.statuses]
        everything += [d.message for p in s.recorder.publishes for d in p.diagnostics]
        assert not [m for m in everything if DEFAULT_TOKEN in m]
        assert not [m for m in shown if m.count("particle login") > 1], shown  # the hint is said once
        ends = [
            [r.message for r in v if isinstance(r, types.WorkDoneProgressEnd)]
            for v in s.client.progress_reports.values()
        ]
        assert ends == [["failed"]] * len(ends), ends


# ------------------------------------------------------------------------------ in-flight work


@needs_gxx
@pytest.mark.parametrize("client_name", CLIENTS)
async def test_shutdown_while_compiling_exits_promptly_without_traceback(
    client_name: str, emulator: EmulatorServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "ws")
    s = await start(client_name, [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    rule = make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 8.0, "count": 1})
    emulator.faults.add(rule)
    try:
        n = len(emulator.seen("/v1/binaries", method="POST"))
        await s.command("fieldsafe.server.compile", {"projectUri": uri(root)})
        await wait_until(lambda: len(emulator.seen("/v1/binaries", method="POST")) > n, what="compile in flight")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(s.client.shutdown_session(), timeout=6)
        elapsed = loop.time() - t0
        await s.client.stop()
    finally:
        emulator.faults.clear()
    assert elapsed < 3, f"exit took {elapsed:.1f}s with a compile in flight"
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    assert DEFAULT_TOKEN not in err


@needs_gxx
async def test_editor_dies_mid_compile_server_exits(
    emulator: EmulatorServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """stdin closes without shutdown/exit (the editor crashed): the server must not linger on the upload."""
    root = make_project(tmp_path / "ws")
    s = await start("neovim", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"))
    emulator.faults.add(make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 8.0}))
    try:
        n = len(emulator.seen("/v1/binaries", method="POST"))
        await s.command("fieldsafe.server.compile", {"projectUri": uri(root)})
        await wait_until(lambda: len(emulator.seen("/v1/binaries", method="POST")) > n, what="compile in flight")
        proc = s.client._server
        assert proc is not None and proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), timeout=4)
    finally:
        emulator.faults.clear()
        await s.client.stop()
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_big_file_change_burst_and_close_mid_lint(
    client_name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    body = "".join(f"int value_{i} = {i};\n" for i in range(3000))
    async with project_session(client_name, tmp_path, emulator, pin="0.5.3") as s:  # before analogWriteResolution
        root: Path = s.root  # type: ignore[attr-defined]
        big = root / "src" / "big.cpp"
        big.write_text('#include "Particle.h"\n' + body)
        u = await s.open(big)
        await wait_until(lambda: s.recorder.statuses, what="pin checked")
        for v in range(2, 42):  # a burst of keystrokes (full-text changes of a 3,000-line file)
            s.change(u, '#include "Particle.h"\n' + body + f"// {v}\n", v)
        final = '#include "Particle.h"\n' + body + "void f() { analogWriteResolution(D0, 8); }\n"
        s.change(u, final, 100)
        diag = (await wait_until(lambda: by_code(s, u, "FS201"), what="lint of the latest text"))[0]
        assert diag.range.start.line == 3001
        lint_publishes = [p for p in s.recorder.publishes if p.uri == u]
        assert len(lint_publishes) <= 3, len(lint_publishes)  # one lint for the burst, not forty
        # close while a lint is pending: its diagnostics are cleared and stay cleared
        s.change(u, final.replace("void f()", "void g()"), 101)
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(u)))
        await wait_until(lambda: not s.diagnostics(u), what="cleared on close")
        await asyncio.sleep(0.6)
        assert not s.diagnostics(u)


@needs_gxx
async def test_save_of_deleted_file_and_project_properties_removed(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with project_session("visual_studio_code", tmp_path, emulator) as s:
        root: Path = s.root  # type: ignore[attr-defined]
        extra = root / "src" / "extra.cpp"
        extra.write_text("int extra = 1;\n")
        u = await s.open(extra)
        extra.unlink()
        before = len(s.recorder.statuses)
        s.save(u)  # the editor saved a buffer whose file is gone (or delete raced the save)
        await wait_until(
            lambda: [x for x in s.recorder.statuses[before:] if x["state"] in ("ok", "mismatch", "failed")],
            timeout=30,
            what="compile finished",
        )
        # close the .ino while its compile is in flight: the compile finishes and still publishes by file URI
        ino = root / "src" / "sensor.ino"
        iu = await s.open(ino)
        emulator.faults.add(
            make_rule({"pattern": "/v1/binaries", "method": "POST", "kind": "latency", "delay": 1.0, "count": 1})
        )
        ino.write_text(INO.replace("    delay(1000);", "    delay(1000)"))
        before = len(s.recorder.statuses)
        n = len(emulator.seen("/v1/binaries", method="POST"))
        s.save(iu)
        await wait_until(lambda: len(emulator.seen("/v1/binaries", method="POST")) > n, what="compile in flight")
        s.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(iu)))
        await wait_until(
            lambda: [x for x in s.recorder.statuses[before:] if x["state"] == "failed"],
            timeout=30,
            what="compile result after close",
        )
        assert [d for d in s.diagnostics(iu) if str(d.code).startswith("FS3")]
        # project.properties renamed away, then back (watched files)
        props = root / "project.properties"
        props.rename(root / "project.properties.bak")
        s.client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[
                    types.FileEvent(uri(props), types.FileChangeType.Deleted),
                    types.FileEvent(uri(root / "project.properties.bak"), types.FileChangeType.Created),
                ]
            )
        )
        await asyncio.sleep(0.5)
        (root / "project.properties.bak").rename(props)
        s.client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(changes=[types.FileEvent(uri(props), types.FileChangeType.Created)])
        )
        await asyncio.sleep(0.5)
        rows = await s.command("fieldsafe.server.listReleases", {"projectUri": uri(root)})
        assert rows
        assert not [m for m in s.client.log_messages if m.type == types.MessageType.Error]


# ------------------------------------------------------------------------ options and commands


async def test_invalid_options_one_message_defaults_used(emulator: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws")
    bad = {"compileOnSave": "yes", "compileDebounceMs": -5, "offline": 1, "apiUrl": "ftp://x", "lintDebounceMs": 1e9}
    s = await start("visual_studio_code", [tmp_path / "ws"], server_env(emulator, tmp_path / "home"), configuration=bad)
    try:
        shown = await wait_until(lambda: [m for m in s.client.messages if "invalid settings" in m.message], what="msg")
        assert len(shown) == 1 and all(k in shown[0].message for k in bad), shown[0].message
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await asyncio.sleep(0.5)
        assert len([m for m in s.client.messages if "invalid settings" in m.message]) == 1  # not again
        # defaults were used: a save compiles (compileOnSave default true)
        n = len(emulator.seen("/v1/binaries", method="POST"))
        s.save(uri(root / "src" / "sensor.ino"))
        if shutil.which("g++"):
            await wait_until(lambda: len(emulator.seen("/v1/binaries", method="POST")) > n, what="compile on save")
        # compileOnSave false and offline true are honoured after a configuration change
        s.client.set_configuration({"compileOnSave": False, "offline": True}, section="fieldsafe")
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await asyncio.sleep(0.5)
        n = len(emulator.seen("/v1/binaries", method="POST"))
        seen_devices = len(emulator.seen("/v1/devices*"))
        s.save(uri(root / "src" / "sensor.ino"))
        await s.command("fieldsafe.server.refreshDevices")
        await asyncio.sleep(0.6)
        assert len(emulator.seen("/v1/binaries", method="POST")) == n
        assert len(emulator.seen("/v1/devices*")) == seen_devices  # offline: the cloud is not asked
    finally:
        await stop(s)


BAD_ARGS = [
    ("fieldsafe.server.compile", "not-an-object"),
    ("fieldsafe.server.compile", {"projectUri": 42}),
    ("fieldsafe.server.compile", {"projectUri": "untitled:Untitled-1"}),
    ("fieldsafe.server.compile", {"projectUri": "file:///nonexistent/dir"}),
    ("fieldsafe.server.listDevices", [1, 2]),
    ("fieldsafe.server.listDevices", {"projectUri": "file:///nonexistent/dir"}),
    ("fieldsafe.server.listReleases", {"platform": "toaster"}),
    ("fieldsafe.server.listReleases", {"platform": 12.5}),
    ("fieldsafe.server.listReleases", {"platform": ["boron"]}),
    ("fieldsafe.server.setTarget", None),
    ("fieldsafe.server.setTarget", {"version": {"x": 1}}),
    ("fieldsafe.server.setTarget", {"version": "9.9.9"}),
    ("fieldsafe.server.setTarget", {"platform": "toaster"}),
    ("fieldsafe.server.setTarget", {"version": '2.3.1", "evil": "x'}),
    ("fieldsafe.server.inspectBinary", None),
    ("fieldsafe.server.inspectBinary", {"path": 7}),
    ("fieldsafe.server.inspectBinary", {"path": "/nonexistent/firmware.bin"}),
    ("fieldsafe.server.inspectBinary", {"path": "untitled:foo.bin"}),
    ("fieldsafe.server.refreshDevices", "x"),
]


async def test_commands_with_bad_arguments(emulator: EmulatorServer, tmp_path: Path) -> None:
    async with project_session("visual_studio_code", tmp_path, emulator) as s:
        root: Path = s.root  # type: ignore[attr-defined]
        before = (root / ".vscode" / "settings.json").read_text()
        problems = []
        for name, arg in BAD_ARGS:
            try:
                result = await s.client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=name, arguments=[arg] if arg is not None else [])
                )
            except Exception as exc:  # JsonRpcException subclasses carry the code
                code = getattr(exc, "code", None)
                text = str(exc)
                if code != -32602 or "Traceback" in text or len(text) < 12:
                    problems.append((name, arg, code, text[:300]))
            else:
                problems.append((name, arg, "no error", str(result)[:200]))
        assert not problems, "\n".join(map(str, problems))
        assert (root / ".vscode" / "settings.json").read_text() == before  # nothing was written


# -------------------------------------------------------------------------- positions and encodings


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_non_ascii_before_a_diagnostic_and_positions_past_the_end(
    client_name: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    prefix = "// Température 🌡️ capteur — nord\n"
    line = "    /* 🌡️é */ analogWriteResolution(D0, 8);\n"
    ino = prefix + INO.replace("    delay(1000);\n", "    delay(1000);\n" + line)
    async with project_session(client_name, tmp_path, emulator, pin="0.5.3", ino=ino) as s:
        root: Path = s.root  # type: ignore[attr-defined]
        u = await s.open(root / "src" / "sensor.ino")
        diag = (await wait_until(lambda: by_code(s, u, "FS201"), what="FS201"))[0]
        text_line = ino.splitlines()[diag.range.start.line]
        before = text_line[: text_line.index("analogWriteResolution")]
        general = s.client.capabilities.general if s.client.capabilities else None
        encodings = (general.position_encodings if general else None) or []
        utf8 = bool(encodings) and str(encodings[0]) in ("utf-8", str(types.PositionEncodingKind.Utf8))
        assert utf8 == (client_name == "neovim")  # pytest-lsp's neovim offers utf-8 first; VS Code only utf-16
        expected = len(before.encode("utf-8")) if utf8 else len(before.encode("utf-16-le")) // 2
        assert diag.range.start.character == expected, (utf8, diag.range, before)
        assert diag.range.end.character - diag.range.start.character == len("analogWriteResolution")
        hov = await s.client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(u), types.Position(diag.range.start.line, expected + 3))
        )
        assert hov is not None and "analogWriteResolution" in str(hov.contents)
        for p in (pos(999, 0), pos(0, 999), pos(2, 10_000)):
            await s.client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(u), p))
            await s.client.text_document_completion_async(types.CompletionParams(types.TextDocumentIdentifier(u), p))
            await s.client.text_document_code_action_async(
                types.CodeActionParams(
                    types.TextDocumentIdentifier(u), types.Range(p, p), types.CodeActionContext(diagnostics=[])
                )
            )
        su = await s.open(root / ".vscode" / "settings.json", "jsonc")
        for p in (pos(999, 0), pos(2, 10_000)):
            await s.client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(su), p))
            await s.client.text_document_completion_async(types.CompletionParams(types.TextDocumentIdentifier(su), p))


async def test_no_workspace_folder_and_no_root(emulator: EmulatorServer, tmp_path: Path) -> None:
    """Single-file mode (Neovim/Emacs without a root): the project is found from the opened file."""
    root = make_project(tmp_path / "ws")
    recorder = Recorder()
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "fieldsafe", "lsp"],
        client_factory=client_factory(recorder),
        server_env=server_env(emulator, tmp_path / "home"),
    )
    client = await config.start()
    s = Session(client, recorder, "neovim")  # type: ignore[arg-type]
    try:
        await client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities("neovim"), workspace_folders=None, root_uri=None)
        )
        await s.open(root / "src" / "sensor.ino")
        await wait_until(lambda: by_code(s, settings_uri(root), "FS101"), what="pin checked without a workspace")
    finally:
        await stop(s)
