"""Issue 14 on the command line: the fault matrix for ``fieldsafe compile`` (every fault kind on the device
lookup, the upload and the download: the dangerous FS101 never disappears, the run never passes) and the
token-secrecy check over every stream and file of ``compile``, ``check`` and ``devices``.

One emulator for the module; commands run in process (``fieldsafe.cli.main``) with retries made instant,
except the secrecy test, which runs real subprocesses so nothing can escape through an unseen stream.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from fieldsafe import cloud
from fieldsafe.cli import main
from fieldsafe.emulator import EmulatorServer, default_state
from lsp_helpers import INO, make_project

TOKEN = "fs14-cli-secret-token-41d8"

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulator's compiler needs g++")

FAULT_KINDS = {
    "5xx": {"kind": "error", "status": 502},
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
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(default_state(), tokens=[TOKEN]) as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-failsafe")


@pytest.fixture
def env(emu: EmulatorServer, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARTICLE_API_URL", emu.url)
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(workdir / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
    monkeypatch.setattr(cloud, "DEFAULT_SLEEP", lambda _s: None)
    monkeypatch.chdir(workdir)  # `compile` saves <platform>_firmware_<ms>.bin in the current directory
    (workdir / "home").mkdir(exist_ok=True)
    return workdir


PRIMED: list[bool] = []


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("fault", list(FAULT_KINDS))
def test_cli_fault_matrix_never_passes_and_keeps_fs101(
    fault: str, endpoint: str, emu: EmulatorServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = env / "ws" / "sensor"
    if not root.exists():
        make_project(env / "ws")
    (root / "src" / "sensor.ino").write_text(INO + f"// {fault} x {endpoint}\n")
    emu.faults.clear()
    if not PRIMED:  # once per module: a live look at field-unit-7 (0.5.3) gives FS101 and a cached state
        assert main(["check", str(root)]) == 1
        PRIMED.append(True)
    capsys.readouterr()
    emu.faults.add(emu_rule({**ENDPOINTS[endpoint], **FAULT_KINDS[fault]}))
    try:
        status = main(["compile", str(root)])
    finally:
        emu.faults.clear()
    out, err = capsys.readouterr()
    assert status == 1, (out, err)
    assert "[FS101]" in out + err, "the Safe Mode finding never disappears"
    if endpoint == "device lookup":
        assert "last known state" in out + err
    elif (endpoint, fault) == ("download", "malformed"):
        assert "[FS307]" in out  # the body is not a module: said so, never saved
    else:
        assert "fieldsafe compile:" in err and "Traceback" not in err
    assert TOKEN not in out + err


def emu_rule(data: dict[str, object]):
    from fieldsafe.emulator.faults import make_rule

    return make_rule(data)


# ---------------------------------------------------------------------------------------- the secret


def encoded_forms(raw: str) -> list[str]:
    stripped = raw.strip()
    forms = {raw, stripped, repr(raw)[1:-1], json.dumps(raw)[1:-1], quote(raw, safe=""), quote_plus(raw)}
    forms |= {json.dumps(json.dumps(raw)[1:-1])[1:-1], quote(stripped, safe="")}
    return sorted(f for f in forms if f)


def test_cli_token_with_newline_never_reaches_any_stream_or_file(emu: EmulatorServer, tmp_path: Path) -> None:
    root = make_project(tmp_path / "ws")
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PARTICLE_")}
    base.update(HOME=str(home), XDG_CACHE_HOME=str(tmp_path / "cache"), PARTICLE_API_URL=emu.url)
    outputs: list[str] = []
    runs = [
        (TOKEN + "\r\n", None, ["devices"]),
        (TOKEN + "\n", None, ["check", str(root)]),
        (TOKEN + "\n", {"pattern": "/v1/binaries", "method": "POST", "kind": "token_expired"}, ["compile", str(root)]),
        (TOKEN + "\n", {"pattern": "/v1/devices*", "kind": "error", "status": 500}, ["devices"]),
        (TOKEN[:10] + "\n" + TOKEN[10:], None, ["compile", str(root)]),  # a newline inside: refused, not shown
    ]
    codes = []
    try:
        for token, fault, argv in runs:
            emu.faults.clear()
            if fault:
                emu.faults.add(emu_rule(fault))
            run = subprocess.run(
                [sys.executable, "-m", "fieldsafe", *argv],
                env={**base, "PARTICLE_ACCESS_TOKEN": token},
                capture_output=True,
                text=True,
                timeout=180,
                cwd=tmp_path,
            )
            codes.append(run.returncode)
            outputs += [run.stdout, run.stderr]
    finally:
        emu.faults.clear()
    assert codes[0] == 0 and codes[-1] != 0, (codes, outputs[-1])  # stripped token works; inner newline refused
    assert "PARTICLE_ACCESS_TOKEN" in outputs[-1] and "particle login" in outputs[-1]
    files = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "the cache was written"
    for text in outputs + files:
        assert "Traceback" not in text
        for token, _, _ in runs:
            for form in [*encoded_forms(token), TOKEN[:10], TOKEN[10:]]:
                assert form not in text, f"{form!r} leaked"
