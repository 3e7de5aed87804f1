"""Unit tests of the language server's pure pieces: options layering, scheduling, span conversion."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from fieldsafe.cli.lsp import parse_tcp
from fieldsafe.findings import Finding, Severity, Span
from fieldsafe.lsp.config import ServerOptions, build_options, option_names
from fieldsafe.lsp.diagnostics import DiagnosticStore, span_to_range
from fieldsafe.lsp.scheduler import GenerationScheduler, KeyedDebouncer


def test_options_layering_and_invalid_values() -> None:
    options, problems = build_options({"compileDebounceMs": 50, "offline": True}, {"fieldsafe": {"offline": False}})
    assert options == ServerOptions(compile_debounce_ms=50, offline=False)
    assert problems == []
    options, problems = build_options({"compileOnSave": "yes"}, {"compileDebounceMs": -1, "apiUrl": "ftp://x"})
    assert options == ServerOptions()
    assert len(problems) == 3 and all("fieldsafe." in p for p in problems)
    options, _ = build_options(None, {"compileOnSave": None, "server": {"python": "x"}})  # nulls keep lower layers
    assert options.compile_on_save is True
    assert option_names()[:2] == ["compileOnSave", "compileDebounceMs"]


def test_parse_tcp_accepts_loopback_only() -> None:
    assert parse_tcp("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_tcp(":2087") == ("127.0.0.1", 2087)
    with pytest.raises(ValueError, match="loopback"):
        parse_tcp("0.0.0.0:2087")
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_tcp("2087")


async def test_scheduler_starts_at_once_and_coalesces_into_one_trailing_run() -> None:
    ran: list[int] = []
    published: list[int] = []
    sched: GenerationScheduler

    async def runner(gen: int) -> None:
        ran.append(gen)
        await asyncio.sleep(0.2)
        if sched.is_current(gen):
            published.append(gen)

    sched = GenerationScheduler(runner)
    sched.request()
    await asyncio.sleep(0)  # the first run starts without any coalescing window
    assert ran == [1]
    for _ in range(9):  # a burst while it runs: one trailing run, with the newest generation
        sched.request()
    await sched.wait_idle()
    assert ran == [1, 10] and published == [10]  # the overtaken run's result is dropped
    sched.request(0.05)  # an explicit wait (compileDebounceMs) is honoured when idle; requests in it coalesce
    sched.request()
    await asyncio.sleep(0.01)
    assert ran == [1, 10]
    await sched.wait_idle()
    assert ran == [1, 10, 12] and sched.runs == 3
    sched.request()
    sched.cancel()
    await sched.wait_idle()
    assert published == [10, 12]


async def test_keyed_debouncer_runs_last_call_per_key() -> None:
    calls: list[str] = []
    deb = KeyedDebouncer()

    def make(tag: str):
        async def call() -> None:
            calls.append(tag)

        return call

    deb.call("a", 0.05, make("a1"))
    deb.call("a", 0.05, make("a2"))
    deb.call("b", 0.05, make("b1"))
    deb.call("c", 0.05, make("c1"))
    deb.cancel("c")
    await asyncio.sleep(0.15)
    assert sorted(calls) == ["a2", "b1"]


def test_span_to_range_units_and_defaults() -> None:
    lines = ["int x = café(1);\n", "  foo();\n"]
    utf16 = PositionCodec(types.PositionEncodingKind.Utf16)
    utf8 = PositionCodec(types.PositionEncodingKind.Utf8)
    rng = span_to_range(Span("a.cpp", 1, 9), lines, utf16)  # identifier under the caret
    assert (rng.start.character, rng.end.character) == (8, 12)
    rng8 = span_to_range(Span("a.cpp", 1, 14), lines, utf8)  # after "café(" -> é is 2 bytes
    assert rng8.start.character == 14
    rng = span_to_range(Span("a.cpp", 9, 1), lines, utf16)  # clamped to the last line
    assert rng.start.line == 1


def test_store_layers_publish_union_and_clear() -> None:
    sent: list[tuple[str, int]] = []
    store = DiagnosticStore(lambda uri, diags: sent.append((uri, len(diags))))
    rng = types.Range(types.Position(0, 0), types.Position(0, 1))
    finding = Finding("FS301", Severity.ERROR, "x")
    diag = types.Diagnostic(range=rng, message="x", code="FS301")
    store.set_layer("p#compile", {"file:///a": [(diag, finding)], "file:///b": [(diag, finding)]})
    store.set_uri("p#api", "file:///a", [(diag, finding)])
    assert store.diagnostics("file:///a") == [diag, diag]
    store.set_layer("p#compile", {"file:///a": [(diag, finding)]})  # b no longer mentioned -> cleared
    assert ("file:///b", 0) in sent
    assert store.lookup("file:///a", rng, "FS301") == [finding, finding]
    assert store.lookup("file:///a", rng, "FS999") == []
