"""Cloud client: configuration precedence, secret handling, plain-http refusal, cache (no network)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from fieldsafe import cloud
from fieldsafe.cloud import (
    CloudConfig,
    ConfigError,
    InsecureTransport,
    NotLoggedIn,
    ParticleCloud,
    ResponseCache,
    Secret,
    parse_retry_after,
    resolve_config,
)


def _home(tmp_path: Path, config: dict | None = None, profile: str | None = None, name: str = "particle") -> Path:
    home = tmp_path / "home"
    (home / ".particle").mkdir(parents=True)
    if profile is not None:
        (home / ".particle" / "profile.json").write_text(json.dumps({"name": profile}))
    if config is not None:
        (home / ".particle" / f"{name}.config.json").write_text(json.dumps(config))
    return home


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    config = resolve_config(env={}, home=_home(tmp_path))
    assert config.api_url == "https://api.particle.io"
    assert config.token is None
    assert (config.source_of_url, config.source_of_token) == ("default", "none")


def test_profile_config_supplies_url_and_token(tmp_path: Path) -> None:
    home = _home(tmp_path, {"apiUrl": "http://127.0.0.1:9999/", "access_token": "from-profile"})
    config = resolve_config(env={}, home=home)
    assert config.api_url == "http://127.0.0.1:9999"
    assert config.token == Secret("from-profile")
    assert config.source_of_url.endswith("particle.config.json")


def test_named_profile_is_followed(tmp_path: Path) -> None:
    home = _home(
        tmp_path, {"apiUrl": "https://staging.example.test", "access_token": "work-token"}, profile="work", name="work"
    )
    (home / ".particle" / "particle.config.json").write_text(json.dumps({"access_token": "wrong-profile"}))
    config = resolve_config(env={}, home=home)
    assert config.api_url == "https://staging.example.test"
    assert config.token == Secret("work-token")


def test_env_beats_profile_and_explicit_beats_env(tmp_path: Path) -> None:
    home = _home(tmp_path, {"apiUrl": "https://profile.example.test", "access_token": "profile-token"})
    env = {"PARTICLE_API_URL": "https://env.example.test", "PARTICLE_ACCESS_TOKEN": "env-token"}
    config = resolve_config(env=env, home=home)
    assert (config.api_url, config.token) == ("https://env.example.test", Secret("env-token"))
    assert config.source_of_url == "env PARTICLE_API_URL"
    config = resolve_config("https://explicit.example.test", env=env, home=home, explicit_token="cli-token")
    assert (config.api_url, config.token) == ("https://explicit.example.test", Secret("cli-token"))
    assert (config.source_of_url, config.source_of_token) == ("explicit", "explicit")


def test_home_is_found_like_particle_cli(tmp_path: Path) -> None:
    lower = _home(tmp_path / "a", {"access_token": "lower-home"})
    upper = _home(tmp_path / "b", {"access_token": "upper-home"})
    assert resolve_config(env={"home": str(lower), "HOME": str(upper)}).token == Secret("lower-home")
    assert resolve_config(env={"home": str(tmp_path / "missing"), "HOME": str(upper)}).token == Secret("upper-home")
    assert resolve_config(env={"USERPROFILE": str(lower)}).token == Secret("lower-home")


def test_broken_profile_file_names_the_file(tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / ".particle" / "particle.config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"particle\.config\.json: not valid JSON"):
        resolve_config(env={}, home=home)
    (home / ".particle" / "particle.config.json").write_text(json.dumps({"apiUrl": "ftp://x"}))
    with pytest.raises(ConfigError, match="not an http"):
        resolve_config(env={}, home=home)


def test_secret_never_prints_itself() -> None:
    secret = Secret("super-secret-value-1")
    config = CloudConfig("https://api.example.test", "super-secret-value-1")
    for text in (repr(secret), str(secret), f"{secret}", repr(config), str(config)):
        assert "super-secret-value-1" not in text
    assert secret.reveal() == "super-secret-value-1"
    assert cloud.redact("token=super-secret-value-1!") == "token=<redacted>!"


def test_log_filter_redacts_tokens(caplog: pytest.LogCaptureFixture) -> None:
    Secret("log-secret-abc123")
    with caplog.at_level(logging.DEBUG, logger="fieldsafe.cloud"):
        logging.getLogger("fieldsafe.cloud").debug("sending %s", "Bearer log-secret-abc123")
    assert "log-secret-abc123" not in caplog.text
    assert "Bearer <redacted>" in caplog.text


def test_plain_http_to_a_remote_host_refuses_the_token(tmp_path: Path) -> None:
    client = ParticleCloud(CloudConfig("http://api.example.test", "remote-secret"), cache_dir=tmp_path)
    with pytest.raises(InsecureTransport) as info:
        client.list_devices()
    assert "api.example.test" in str(info.value) and "remote-secret" not in str(info.value)
    for url in ("http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://api.example.test"):
        headers = ParticleCloud(CloudConfig(url, "tok"), cache_dir=tmp_path)._headers(auth=True)
        assert headers["Authorization"] == "Bearer tok"


def test_missing_token_is_not_logged_in(tmp_path: Path) -> None:
    client = ParticleCloud(CloudConfig("https://api.example.test"), cache_dir=tmp_path)
    with pytest.raises(NotLoggedIn, match="particle login"):
        client.list_devices()


def test_headers_identify_fieldsafe(tmp_path: Path) -> None:
    headers = ParticleCloud(CloudConfig("https://api.example.test", "t"), cache_dir=tmp_path)._headers(auth=True)
    assert headers["User-Agent"].startswith("fieldsafe/")
    assert headers["X-Particle-Tool"] == "fieldsafe"


def test_cache_is_keyed_by_host_and_reports_age(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "https://api.example.test")
    cache.put("devices", [{"id": "a"}], now=time.time() - 3600)
    value, age = cache.get("devices")  # type: ignore[misc]
    assert value == [{"id": "a"}]
    assert 3599 <= age <= 3700
    assert ResponseCache(tmp_path, "https://other.example.test").get("devices") is None
    assert not list(tmp_path.glob(".tmp-*")), "atomic writes leave no temp files"


def test_cache_write_failure_is_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ResponseCache(blocker / "sub", "https://api.example.test").put("devices", [])  # must not raise


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None), ("-3", 0.0)],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    import email.utils

    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(when, now=1_000_000) == pytest.approx(30, abs=1)


def test_short_secrets_do_not_mangle_messages() -> None:
    Secret("t")
    assert cloud.redact("the token was rejected") == "the token was rejected"


def test_bad_api_urls_and_non_utf8_profile_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has an invalid port; use http\(s\)://HOST\[:PORT\]"):
        resolve_config(env={"PARTICLE_API_URL": "http://127.0.0.1:99999"}, home=tmp_path)
    with pytest.raises(ConfigError, match=r"'nope' \(from --api-url\) is not an http\(s\) URL; use"):
        resolve_config("nope", env={}, home=tmp_path)
    home = _home(tmp_path)
    (home / ".particle" / "particle.config.json").write_bytes(b"\xff{}")
    with pytest.raises(ConfigError, match=r"particle\.config\.json: byte 0 is not UTF-8"):
        resolve_config(env={}, home=home)


def test_offline_reason_is_the_plain_cause_not_a_pool_repr(tmp_path: Path) -> None:
    client = ParticleCloud(
        CloudConfig(api_url="http://127.0.0.1:9", token="offline-test-token"),
        cache_dir=tmp_path, max_retries=0,
    )  # fmt: skip
    with pytest.raises(cloud.Offline) as info:
        client.list_devices()
    message = str(info.value)
    assert message.startswith("cannot reach the Particle Cloud at 127.0.0.1:9 (")
    assert "HTTPConnectionPool" not in message and "Max retries" not in message
