"""Issue 14 at the cloud client: fail safe (every fault keeps the last known device state, one deadline
per operation, redirects named as such) and keep the secret (the token stripped and validated once,
redacted in every encoded form, sent only where the API URL says, never to an ambiguous or downgraded
URL, never with credentials in the URL).

One emulator for the module; faults are set per test and cleared after.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from fieldsafe import cloud
from fieldsafe.cloud import CloudConfig, ConfigError, ParticleCloud, resolve_config
from fieldsafe.emulator import EmulatorServer, default_state

TOKEN = "fs14-token-9c1e77aa"
NEWLINE_TOKEN = TOKEN + "\r\n"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(default_state(), tokens=[TOKEN], compiler=None) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults(emu: EmulatorServer) -> Iterator[None]:
    emu.faults.clear()
    yield
    emu.faults.clear()


def client_for(emu: EmulatorServer, tmp_path: Path, **kwargs: object) -> ParticleCloud:
    options: dict[str, object] = {"cache_dir": tmp_path / "cache", "sleep": lambda _s: None, "timeout": 2}
    options.update(kwargs)
    return ParticleCloud(CloudConfig(emu.url, TOKEN), **options)  # type: ignore[arg-type]


def every_form(secret: str) -> list[str]:
    """The encodings a leak could take: raw, stripped, repr-escaped, JSON-escaped, URL-encoded."""
    forms = {secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret, safe="")}
    forms |= {quote_plus(secret), quote(secret.strip(), safe=""), json.dumps(json.dumps(secret))[1:-1]}
    return sorted(forms)


# ------------------------------------------------------------------------------ the token at the edge


def test_token_with_trailing_newline_is_stripped_once_at_the_edge(tmp_path: Path) -> None:
    config = resolve_config(env={"PARTICLE_ACCESS_TOKEN": NEWLINE_TOKEN, "PARTICLE_API_URL": "http://127.0.0.1:9"})
    assert config.token is not None and config.token.reveal() == TOKEN
    home = tmp_path / "home"
    (home / ".particle").mkdir(parents=True)
    (home / ".particle" / "particle.config.json").write_text(json.dumps({"access_token": "\t" + NEWLINE_TOKEN}))
    config = resolve_config(env={}, home=home)
    assert config.token is not None and config.token.reveal() == TOKEN
    assert resolve_config(env={"PARTICLE_ACCESS_TOKEN": " \n"}, home=tmp_path).token is None


@pytest.mark.parametrize("inner", ["\n", "\r\n", " ", "\x00", "\u00a0"])
def test_token_with_a_character_inside_is_refused_without_showing_it(inner: str, tmp_path: Path) -> None:
    bad = "fs14-first-half" + inner + "second-half-77"
    with pytest.raises(ConfigError) as info:
        resolve_config(env={"PARTICLE_ACCESS_TOKEN": bad}, home=tmp_path)
    message = str(info.value)
    assert "PARTICLE_ACCESS_TOKEN" in message and "particle login" in message
    for form in [*every_form(bad), "fs14-first-half", "second-half-77"]:
        assert form not in message


def test_redact_catches_raw_escaped_and_url_encoded_forms() -> None:
    secret = "fs14/tok+en=with&chars\n"
    cloud.Secret(secret.strip())
    cloud.register_secret(secret)
    for form in every_form(secret):
        if len(form.strip()) >= cloud.MIN_REDACT_LENGTH:
            text = cloud.redact(f"Invalid header value b'Bearer {form}' ({form!r})")
            assert form not in text, form
            assert "fs14/tok" not in text and "fs14%2Ftok" not in text


def test_log_records_and_tracebacks_are_redacted_on_every_handler() -> None:
    cloud.Secret(TOKEN)
    stream: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stream.append(self.format(record))

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        cloud.install_log_redaction()
        try:
            raise ValueError(f"Invalid leading whitespace in header value {('Bearer ' + NEWLINE_TOKEN)!r}")
        except ValueError:
            logging.getLogger("pygls.protocol").exception("Failed to handle request %s", {"auth": NEWLINE_TOKEN})
    finally:
        root.removeHandler(handler)
    text = "\n".join(stream)
    assert "Traceback" in text and "<redacted>" in text
    for form in every_form(NEWLINE_TOKEN):
        assert form not in text


# ------------------------------------------------------------------------------------- where it goes


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@127.0.0.1:9",  # urlsplit sees loopback, urllib3 dials evil.example
        "http://evil.example%5C@127.0.0.1:9",
        "http://127.0.0.1:9 @evil.example",
        "http://user:hunter2-pass@127.0.0.1:9",  # credentials would go as Basic auth and be echoed
        "https://user@api.example.test",
        "http://127.0.0.1:9/?next=http://evil.example",
        "http://127.0.0.1:9#@evil.example",
        "http://127.0.0.1:9\n",
    ],
)
def test_ambiguous_or_credentialed_api_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(env={"PARTICLE_API_URL": url, "PARTICLE_ACCESS_TOKEN": TOKEN}, home=tmp_path)
    assert "hunter2" not in str(info.value)
    client = ParticleCloud(CloudConfig(url, TOKEN), cache_dir=tmp_path)
    with pytest.raises(cloud.CloudError) as sent:
        client.list_devices()  # even a config built by hand never sends the token there
    assert isinstance(sent.value, cloud.InsecureTransport), sent.value
    assert "hunter2" not in str(sent.value)


def test_binary_url_must_keep_the_api_scheme_and_host(tmp_path: Path) -> None:
    client = ParticleCloud(CloudConfig("https://api.example.test", TOKEN), cache_dir=tmp_path)
    for url in (
        "http://api.example.test/v1/binaries/abc",  # a downgrade: the token would travel in clear
        "https://evil.example/v1/binaries/abc",
        "https://user:pw@api.example.test/v1/binaries/abc",
        "https://api.example.test\\@evil.example/v1/binaries/abc",
    ):
        with pytest.raises(cloud.BadResponse, match="refusing"):
            client.download_binary(url)
    assert client._url("https://api.example.test:443/v1/binaries/abc").startswith("https://api.example.test")


# ---------------------------------------------------------------------------------- fail safe: device


FAULTS = [
    pytest.param({"kind": "error", "status": 500}, cloud.ServerError, id="500"),
    pytest.param({"kind": "error", "status": 503}, cloud.ServerError, id="503"),
    pytest.param({"kind": "token_expired"}, cloud.TokenExpired, id="401"),
    pytest.param({"kind": "rate_limit", "retry_after": 0}, cloud.RateLimited, id="429"),
    pytest.param({"kind": "malformed_json"}, cloud.BadResponse, id="malformed"),
    pytest.param({"kind": "truncate"}, cloud.BadResponse, id="truncated"),
    pytest.param({"kind": "drop"}, cloud.Offline, id="dropped"),
    pytest.param({"kind": "latency", "delay": 1.5}, cloud.Offline, id="timeout"),
]


@pytest.mark.parametrize(("fault", "error"), FAULTS)
def test_every_device_lookup_fault_keeps_the_last_known_state(
    fault: dict[str, object], error: type[cloud.CloudError], emu: EmulatorServer, tmp_path: Path
) -> None:
    client = client_for(emu, tmp_path, timeout=0.5, deadline=1.0)
    live = client.get_device("field-unit-7")
    emu.faults.set("/v1/devices/*", **fault)  # type: ignore[arg-type]
    raw, age, failure = client.lookup_device("field-unit-7")
    assert isinstance(failure, error), failure
    assert raw == live and age is not None
    assert client.get_device_or_cached("field-unit-7")[0] == live  # the old API falls back the same way
    fresh = client_for(emu, tmp_path / "other", timeout=0.5, deadline=1.0)  # nothing cached: unchecked, with the reason
    assert fresh.lookup_device("field-unit-7")[:2] == (None, None)


def test_not_found_is_an_answer_not_a_fault(emu: EmulatorServer, tmp_path: Path) -> None:
    client = client_for(emu, tmp_path)
    raw, age, failure = client.lookup_device("no-such-unit")
    assert (raw, age) == (None, None) and isinstance(failure, cloud.NotFound) and cloud.is_absence(failure)
    assert "fieldsafe devices" in str(failure)  # names the next step


def test_one_deadline_covers_request_time_and_retries(emu: EmulatorServer, tmp_path: Path) -> None:
    """A stall used to cost (retries + 1) x timeout plus the waits; now the deadline bounds it all."""
    emu.faults.set("/v1/devices", "latency", delay=3.0)
    client = client_for(emu, tmp_path, timeout=1.0, deadline=1.5, sleep=time.sleep, backoff=0.2)
    started = time.monotonic()
    with pytest.raises(cloud.Offline, match="check the network"):
        client.list_devices()
    elapsed = time.monotonic() - started
    assert elapsed < 2.4, f"took {elapsed:.1f}s for a 1.5s deadline"


def test_big_reply_is_refused(emu: EmulatorServer, tmp_path: Path) -> None:
    client = client_for(emu, tmp_path, max_body_bytes=64)
    with pytest.raises(cloud.BadResponse, match="larger than"):
        client.list_devices()


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "https://elsewhere.example/v1/devices")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_redirect_is_named_as_such_and_never_followed(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = ParticleCloud(CloudConfig(url, TOKEN), cache_dir=tmp_path, sleep=lambda _s: None)
        with pytest.raises(cloud.CloudError) as info:
            client.get_device("field-unit-7")
    finally:
        server.shutdown()
        server.server_close()
    message = str(info.value)
    assert "redirect (HTTP 302 to elsewhere.example)" in message and "malformed" not in message
    assert "PARTICLE_API_URL" in message


NEXT_STEPS = ("try again", "particle login", "check", "wait", "fieldsafe devices", "API URL")


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 500},
        {"kind": "error", "status": 503},
        {"kind": "error", "status": 403},
        {"kind": "error", "status": 404},
        {"kind": "error", "status": 418},
        {"kind": "token_expired"},
        {"kind": "rate_limit", "retry_after": 0},
        {"kind": "malformed_json"},
        {"kind": "truncate"},
        {"kind": "drop"},
        {"kind": "latency", "delay": 1.0},
    ],
    ids=lambda f: f"{f['kind']}-{f.get('status', '')}",
)
def test_every_cloud_error_names_a_next_step(fault: dict[str, object], emu: EmulatorServer, tmp_path: Path) -> None:
    client = client_for(emu, tmp_path, timeout=0.4, deadline=0.8)
    emu.faults.set("/v1/devices*", **fault)  # type: ignore[arg-type]
    for call in (client.list_devices, lambda: client.get_device("field-unit-7")):
        with pytest.raises(cloud.CloudError) as info:
            call()
        message = str(info.value)
        assert any(step in message for step in NEXT_STEPS), message
        assert "\n" not in message and TOKEN not in message


def test_wrong_shape_names_a_next_step() -> None:
    message = str(cloud.BadResponse("device list from api.example.test: expected a JSON array"))
    assert "try again" in message and "API URL" in message


def test_threads_sharing_a_client_do_not_overflow_the_pool(
    emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The language server's lookups and superseded compiles share one session from many threads."""
    client = client_for(emu, tmp_path)
    emu.faults.set("/v1/devices", "latency", delay=0.3)
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        threads = [threading.Thread(target=client.list_devices) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert "Connection pool is full" not in caplog.text
