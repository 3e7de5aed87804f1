"""The emulator itself: state file validation, API shapes, auth, admin fault endpoint, CLI entry points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fieldsafe import cloud
from fieldsafe.cli import main
from fieldsafe.emulator import DEFAULT_TOKEN, EmulatorServer, StateError, default_state, load_state
from fieldsafe.emulator.server import parse_multipart
from fieldsafe.emulator.state import parse_state
from test_emulator_fakes import FakeCompiler

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(compiler=FakeCompiler()) as server:
        yield server


def _get(emu: EmulatorServer, path: str, token: str | None = DEFAULT_TOKEN, **params: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(emu.url + path, headers=headers, params=params, timeout=5)


# ---- state ----------------------------------------------------------------------------------------


def test_default_state_tells_the_fleet_story() -> None:
    state = default_state()
    devices = {d.name: d for d in state.devices}
    assert devices["field-unit-7"].platform_id == 10 and devices["field-unit-7"].system_firmware_version == "0.5.3"
    assert devices["field-unit-9"].system_firmware_version == "2.3.1" and devices["field-unit-9"].cellular
    assert devices["barn-boron"].product_id == 31337 and devices["barn-boron"].groups
    assert {d.platform_id for d in state.devices} >= {6, 10, 12, 13, 32}
    assert any(t.token == DEFAULT_TOKEN for t in state.tokens)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["devices"][0].update(id="XYZ"), r"devices\[0\]\.id: expected 24 lower-case hex"),
        (lambda s: s["devices"][1].update(platform_id=999), r"devices\[1\]\.platform_id: 999 is not a known"),
        (lambda s: s["devices"][0].update(system_firmware_version="banana"), r"devices\[0\]\.system_firmware_version"),
        (lambda s: s["devices"][0].update(online="yes"), r"devices\[0\]\.online: expected true or false"),
        (lambda s: s["devices"][2].update(product_id=4242), r"devices\[2\]\.product_id: 4242 is neither"),
        (lambda s: s["devices"][0].update(last_heard_ago="soon"), r"devices\[0\]\.last_heard_ago"),
        (lambda s: s["devices"][0].update(colour="red"), r"devices\[0\]: unknown field"),
        (lambda s: s.update(faults=[{"pattern": "/v1/*", "kind": "explode"}]), r"faults\[0\]\.kind"),
        (lambda s: s["devices"].append(dict(s["devices"][0])), r"\.id: duplicate of devices\[0\]\.id"),
        (lambda s: s.update(devices={}), r"devices: expected a list"),
    ],
)
def test_invalid_state_names_file_and_field(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    from fieldsafe.emulator.state import default_state_text

    data = json.loads(default_state_text())
    mutate(data)
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match=message) as info:
        load_state(path)
    assert str(path) in str(info.value)


def test_state_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(StateError, match=r"broken\.json: not valid JSON"):
        load_state(path)


def test_state_binaries_and_expired_tokens(tmp_path: Path) -> None:
    (tmp_path / "tinker.bin").write_bytes(b"\x01\x02\x03")
    state = parse_state(
        {
            "tokens": ["plain", {"token": "old", "expires_at": "2001-01-01T00:00:00Z"}],
            "binaries": [{"id": "a" * 24, "path": "tinker.bin"}],
        },
        "inline.json",
        base_dir=tmp_path,
    )
    with EmulatorServer(state) as server:
        assert _get(server, "/v1/binaries/" + "a" * 24, token="plain").content == b"\x01\x02\x03"
        expired = _get(server, "/v1/devices", token="old")
        assert expired.status_code == 401 and "expired" in expired.json()["error_description"]


# ---- API shapes -----------------------------------------------------------------------------------


def test_build_targets_match_the_recorded_shape(emu: EmulatorServer) -> None:
    recorded = json.loads((FIXTURES / "api-samples" / "build_targets.response.json").read_text())
    ours = _get(emu, "/v1/build_targets", token=None).json()
    assert set(ours) == set(recorded)
    assert set(ours["targets"][0]) == set(recorded["targets"][0])
    real_versions = {t["version"] for t in recorded["targets"] if 10 in t["platforms"]}
    our_versions = {t["version"] for t in ours["targets"] if 10 in t["platforms"]}
    assert {"0.5.3", "1.5.2", "2.3.1", "3.3.1"} <= real_versions & our_versions
    assert all(isinstance(v, str) for v in ours["default_versions"].values())


def test_device_os_versions_put_ga_first_within_particle_cli_window(emu: EmulatorServer) -> None:
    body = _get(emu, "/v1/device-os/versions", platform_id=10, per_page=100).json()
    versions = [v["version"] for v in body["versions"]]
    assert "0.5.3" in versions and versions[0] == "3.3.1"
    states = [v["release_state"] for v in body["versions"]]
    assert states == sorted(states, key=lambda s: s != "released")
    assert body["meta"]["total_pages"] == 2


def test_product_device_detail_and_filters(emu: EmulatorServer) -> None:
    listed = _get(emu, "/v1/products/31337/devices", deviceName="north").json()
    assert [d["name"] for d in listed["devices"]] == ["north-field-boron"]
    one = _get(emu, "/v1/products/barn-monitors/devices/" + listed["devices"][0]["id"]).json()
    assert one["groups"] == ["north-field"] and one["development"] is False
    assert _get(emu, "/v1/products/31337/devices/field-unit-7").status_code == 404
    assert _get(emu, "/v1/products/nope/devices").status_code == 404


def test_unknown_route_and_method(emu: EmulatorServer) -> None:
    assert _get(emu, "/v1/nothing-here").status_code == 404
    assert requests.delete(emu.url + "/v1/devices", headers={"Authorization": "Bearer x"}, timeout=5).status_code == 405


def test_missing_token_is_401(emu: EmulatorServer) -> None:
    response = _get(emu, "/v1/devices", token=None)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_oauth_password_grant_and_current_token(emu: EmulatorServer) -> None:
    response = requests.post(
        emu.url + "/oauth/token",
        auth=("particle", "particle"),
        data={"grant_type": "password", "username": "demo@fieldsafe.invalid", "password": "fieldsafe-demo"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert response.json()["token_type"] == "bearer"
    current = _get(emu, "/v1/access_tokens/current", token=token).json()
    assert current["client_id"] == "particle" and current["expires_at"]
    assert _get(emu, "/v1/user", token=token).json()["username"] == "demo@fieldsafe.invalid"
    bad = requests.post(
        emu.url + "/oauth/token", auth=("particle", "particle"),
        data={"grant_type": "password", "username": "demo@fieldsafe.invalid", "password": "wrong"}, timeout=5,
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    no_client = requests.post(emu.url + "/oauth/token", data={"grant_type": "password"}, timeout=5)
    assert no_client.status_code == 401


def test_compile_without_files_or_target(emu: EmulatorServer) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    no_files = requests.post(emu.url + "/v1/binaries", headers=headers, files={"platform_id": (None, "10")}, timeout=5)
    assert no_files.status_code == 400
    no_target = requests.post(
        emu.url + "/v1/binaries",
        headers=headers,
        files={"file": ("a.ino", b"x")},
        data={"platform_id": "10"},
        timeout=5,
    )
    assert no_target.status_code == 400 and "latest=true" in no_target.json()["error_description"]


def test_multipart_parser_keeps_bytes_and_paths() -> None:
    boundary = "XyZ"
    content = b"line1\r\n\x00\xff binary\r\n"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file2"; filename="lib/a/src/a.h"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="platform_id"\r\n\r\n10\r\n--{boundary}--\r\n'.encode()
    )
    fields, files = parse_multipart(f"multipart/form-data; boundary={boundary}", body)
    assert fields == {"platform_id": "10"}
    assert files == [("file2", "lib/a/src/a.h", content)]


# ---- faults via the admin endpoint and the state file ---------------------------------------------


def test_admin_fault_endpoint(emu: EmulatorServer) -> None:
    admin = emu.url + "/__emulator/faults"
    added = requests.post(admin, json={"pattern": "/v1/devices", "kind": "error", "status": 502, "count": 1}, timeout=5)
    assert added.status_code == 200
    assert _get(emu, "/v1/devices").status_code == 502
    assert _get(emu, "/v1/devices").status_code == 200
    assert requests.get(admin, timeout=5).json()["faults"][0]["hits"] == 1
    bad = requests.post(admin, json={"pattern": "/v1/devices", "kind": "meteor"}, timeout=5)
    assert bad.status_code == 400 and "kind" in bad.json()["error_description"]
    requests.post(admin, json=[{"pattern": "/v1/devices", "kind": "rate_limit", "retry_after": 3}], timeout=5)
    limited = _get(emu, "/v1/devices")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert requests.delete(admin, timeout=5).json()["ok"]
    assert _get(emu, "/v1/devices").status_code == 200
    log = requests.get(emu.url + "/__emulator/requests", timeout=5).json()["requests"]
    assert DEFAULT_TOKEN not in json.dumps(log)


def test_faults_from_state_file(tmp_path: Path) -> None:
    from fieldsafe.emulator.state import default_state_text

    data = json.loads(default_state_text())
    data["faults"] = [{"pattern": "/v1/build_targets", "kind": "malformed_json", "count": 1}]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    with EmulatorServer(path) as server:
        with pytest.raises(ValueError):
            _get(server, "/v1/build_targets").json()
        assert _get(server, "/v1/build_targets").json()["targets"]


def test_emulator_refuses_non_loopback_bind() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(host="0.0.0.0")


# ---- CLI ------------------------------------------------------------------------------------------


def _cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def test_fieldsafe_emulator_command_prints_url_and_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldsafe", "emulator", "--port", "0", "--token", "cli-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_cli_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(url + "/v1/devices", headers={"Authorization": "Bearer cli-token"}, timeout=5)
        assert response.status_code == 200 and len(response.json()) == 6
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_fieldsafe_emulator_bad_state_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"devices": [{"id": "nothex", "name": "x", "platform_id": 10}]}))
    result = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "emulator", "--state", str(path)],
        capture_output=True, text=True, timeout=30, env=_cli_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2
    assert "bad.json" in result.stderr and "devices[0].id" in result.stderr


def test_state_file_that_is_not_utf8_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(StateError, match=r"state\.json: byte 0 is not UTF-8"):
        load_state(path)


def test_fieldsafe_devices_online_then_offline_from_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _cli_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cloud, "DEFAULT_SLEEP", lambda seconds: None)
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", DEFAULT_TOKEN)
    with EmulatorServer() as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        assert main(["devices"]) == 0
        out = capsys.readouterr().out
        assert "field-unit-7" in out and "0.5.3" in out and "Electron" in out
        assert main(["devices", "--product", "barn-monitors", "--group", "north-field", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["devices"]
        assert [r["name"] for r in rows] == ["north-field-boron"] and rows[0]["product_id"] == 31337
    assert main(["devices"]) == 0
    captured = capsys.readouterr()
    assert "OFFLINE" in captured.err and "cached" in captured.err
    assert "field-unit-7" in captured.out
    assert main(["devices", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["source"] == "cache" and body["age_seconds"] >= 0


def test_fieldsafe_devices_errors_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in _cli_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PARTICLE_ACCESS_TOKEN", raising=False)
    with EmulatorServer() as server:
        assert main(["devices", "--api-url", server.url]) == 1
        assert "particle login" in capsys.readouterr().err
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", "wrong-token")
        assert main(["devices", "--api-url", server.url]) == 1
        err = capsys.readouterr().err
        assert "rejected your access token" in err and "wrong-token" not in err
        assert ".;" not in err


def test_fieldsafe_devices_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for name, value in _cli_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", "a-token-that-must-not-leak")
    assert main(["devices", "--group", "barn"]) == 2
    assert "add --product" in capsys.readouterr().err
    assert main(["devices", "--api-url", "ftp://127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert "--api-url" in err and "http(s)://HOST" in err and "a-token-that-must-not-leak" not in err


def test_identical_uploads_reuse_the_build(tmp_path: Path) -> None:
    """The build cache: an identical upload is not compiled twice; any change is."""
    compiler = FakeCompiler()
    calls: list[str] = []

    def counting_compiler(files: dict[str, bytes], platform_id: int, release: str) -> object:
        calls.append(release)
        return compiler(files, platform_id, release)

    with EmulatorServer(compiler=counting_compiler) as emu:
        client = cloud.ParticleCloud(cloud.CloudConfig(api_url=emu.url, token=DEFAULT_TOKEN), cache_dir=tmp_path)
        sources = {"src/app.ino": b"void setup() {}\nvoid loop() {}\n"}
        first = client.compile(sources, 10, "0.5.3")
        second = client.compile(sources, 10, "0.5.3")
        assert calls == ["0.5.3"] and first["binary_id"] != second["binary_id"]
        client.compile(sources, 10, "0.6.0")
        client.compile({"src/app.ino": b"void setup() {}\nvoid loop() { }\n"}, 10, "0.5.3")
        assert calls == ["0.5.3", "0.6.0", "0.5.3"]
