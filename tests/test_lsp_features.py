"""The feature interface (``fieldsafe.lsp.features``): discovery, registration, progress helper."""

from __future__ import annotations

import asyncio
import sys
import types as pytypes
from concurrent.futures import Future
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from fieldsafe.lsp import features
from fieldsafe.lsp.features import FeatureProgress, LanguageFeature, load_features, object_arg
from fieldsafe.lsp.server import create_server


class _Feature(LanguageFeature):
    name = "demo"

    def __init__(self, host: Any, ids: tuple[str, ...]) -> None:
        super().__init__(host)
        self.ids = ids

    def commands(self) -> dict[str, Any]:
        async def run(*args: Any) -> Any:
            return {"args": list(args)}

        return {i: run for i in self.ids}


def _module(name: str, ids: tuple[str, ...]) -> str:
    module = pytypes.ModuleType(name)
    module.setup = lambda host: _Feature(host, ids)  # type: ignore[attr-defined]
    sys.modules[name] = module
    return name


def test_load_features_calls_setup_and_keeps_order() -> None:
    host = object()
    names = [_module("fs_test_feat_a", ("x.a",)), _module("fs_test_feat_b", ("x.b",))]
    loaded = load_features(host, names)  # type: ignore[arg-type]
    assert [list(f.commands()) for f in loaded] == [["x.a"], ["x.b"]]
    assert all(f.host is host for f in loaded)


def test_duplicate_command_ids_are_refused() -> None:
    names = [_module("fs_test_feat_c", ("x.same",)), _module("fs_test_feat_d", ("x.same",))]
    with pytest.raises(RuntimeError, match=r"x\.same"):
        load_features(object(), names)  # type: ignore[arg-type]


def test_discovery_skips_private_and_helper_modules() -> None:
    found = features.feature_modules()
    assert "fieldsafe.lsp.features.progress" not in found
    assert all(not m.rsplit(".", 1)[1].startswith("_") for m in found)


def test_server_registers_every_discovered_feature_command() -> None:
    server = create_server()
    ids = {name for f in server.features for name in f.commands()}
    registered = set(server.protocol.fm.commands)
    assert ids <= registered


def test_object_arg() -> None:
    assert object_arg(()) == {}
    assert object_arg((None,)) == {}
    assert object_arg(({"a": 1},)) == {"a": 1}
    with pytest.raises(JsonRpcInvalidParams, match="object"):
        object_arg(([1],))


class _FakeProgress:
    def __init__(self) -> None:
        self.tokens: dict[str, Future] = {}
        self.sent: list[tuple[str, Any]] = []

    async def create_async(self, token: str) -> None:
        self.tokens[token] = Future()

    def begin(self, token: str, value: Any) -> None:
        self.sent.append(("begin", value))

    def report(self, token: str, value: Any) -> None:
        self.sent.append(("report", value))

    def end(self, token: str, value: Any) -> None:
        self.sent.append(("end", value))


def test_progress_cancel_and_always_end() -> None:
    server = pytypes.SimpleNamespace(work_done_progress=_FakeProgress())

    async def scenario() -> None:
        async with FeatureProgress(server, "fieldsafe: test") as progress:
            progress.report("halfway", 50)
            # the client's Cancel resolves the token's future
            next(iter(server.work_done_progress.tokens.values())).cancel()
            assert progress.should_stop()
        await asyncio.to_thread(lambda: None)

    asyncio.run(scenario())
    kinds = [k for k, _ in server.work_done_progress.sent]
    assert kinds == ["begin", "report", "end"]
    begin = server.work_done_progress.sent[0][1]
    assert isinstance(begin, types.WorkDoneProgressBegin) and begin.cancellable
    assert server.work_done_progress.sent[-1][1].message == "cancelled"


def test_progress_reports_from_a_worker_thread_reach_the_loop() -> None:
    server = pytypes.SimpleNamespace(work_done_progress=_FakeProgress())

    async def scenario() -> None:
        async with FeatureProgress(server, "t") as progress:
            await asyncio.to_thread(progress.report, "from thread", 10)
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert ("report", types.WorkDoneProgressReport(message="from thread", percentage=10)) in (
        server.work_done_progress.sent
    )


def test_progress_disabled_sends_nothing_and_failure_ends_failed() -> None:
    server = pytypes.SimpleNamespace(work_done_progress=_FakeProgress())

    async def scenario() -> None:
        async with FeatureProgress(server, "t", enabled=False) as progress:
            progress.report("x")
        with pytest.raises(ValueError):
            async with FeatureProgress(server, "t"):
                raise ValueError("boom")

    asyncio.run(scenario())
    assert [k for k, _ in server.work_done_progress.sent] == ["begin", "end"]
    assert server.work_done_progress.sent[-1][1].message == "failed"
