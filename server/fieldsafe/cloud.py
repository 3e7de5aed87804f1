"""Particle Cloud client: configuration, token handling, typed errors, retries and an offline cache.

Why this module exists: the CLI, the language server and the demo all talk to the Particle Cloud (or
to the local emulator, which speaks the same API). They need the same answers to the same questions:
which API and token to use (reusing particle-cli's login, never asking for another), what went wrong
in terms a user can act on ("run `particle login`", "device field-unit-7 not found"), and what the
fleet looked like the last time we could reach it.

Rules this module keeps:

* The token travels only in the ``Authorization: Bearer`` header. It is held in a :class:`Secret`
  whose ``repr``/``str`` are redacted, exception messages are built without it, a logging filter
  scrubs it from log records, and the cache is keyed by API host, never by the token.
* The token is refused for plain-http API URLs unless the host is loopback (the emulator).
* Idempotent GETs are retried (connection errors, 5xx, 429 honouring ``Retry-After``), bounded by a
  retry count and a total wait; ``sleep`` is injectable so tests run fast.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import ipaddress
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlsplit

from fieldsafe import __version__
from fieldsafe.safeio import read_regular

if TYPE_CHECKING:  # imported where used: reading the config or the fleet cache must not pay for requests
    import requests

log = logging.getLogger("fieldsafe.cloud")

DEFAULT_API_URL = "https://api.particle.io"
USER_AGENT = f"fieldsafe/{__version__}"
REDACTED = "<redacted>"
HOME_ENV_VARS = ("home", "HOME", "HOMEPATH", "USERPROFILE")  # particle-cli settings.findHomePath order


# --------------------------------------------------------------------------------------------------
# Secrets and log redaction


MIN_REDACT_LENGTH = 8  # shorter strings would mangle ordinary words; real Particle tokens are 40 hex digits
_live_secrets: set[str] = set()
_live_lock = threading.Lock()


class Secret:
    """A string that never shows itself: ``repr``/``str``/``format`` give ``<redacted>``.

    Why a wrapper and not a plain ``str``: a token stored in a dataclass, an exception argument or a
    debug log line leaks the moment someone prints it. ``reveal()`` is the one explicit way out, used
    only when building the ``Authorization`` header.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a Secret needs a non-empty string")
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The secret text itself; only for the request header."""
        return self._value

    def fingerprint(self) -> str:
        """A short non-reversible tag (first 8 hex of SHA-256) so logs can tell tokens apart."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return other._value == self._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:  # never pickle the value into a file by accident
        raise TypeError("Secret values cannot be pickled")


def secret_forms(value: str) -> set[str]:
    """Every way ``value`` can show up in text: raw, stripped, each line of it, repr-/JSON-escaped and
    URL-encoded (``quote``, ``quote_plus``), so ``'Bearer <token>\\n'`` in an exception is caught too."""
    bases = {value, value.strip()}
    bases.update(part.strip() for part in re.split(r"[\r\n]+", value))
    forms: set[str] = set()
    for base in bases:
        if len(base) < MIN_REDACT_LENGTH:
            continue
        forms.update(
            {
                base,
                repr(base)[1:-1],
                json.dumps(base)[1:-1],
                json.dumps(json.dumps(base)[1:-1])[1:-1],  # a JSON string inside a JSON message
                quote(base, safe=""),
                quote(base),
                quote_plus(base),
            }
        )
    return {f for f in forms if len(f) >= MIN_REDACT_LENGTH}


def register_secret(value: str) -> None:
    """Remember ``value`` (in all its encoded forms) so :func:`redact` removes it from any text."""
    forms = secret_forms(value)
    if forms:
        with _live_lock:
            _live_secrets.update(forms)


def redact(text: str) -> str:
    """Replace every token this process has seen, in every encoded form, with ``<redacted>``."""
    if not _live_secrets or not isinstance(text, str):
        return text
    with _live_lock:
        secrets = sorted(_live_secrets, key=len, reverse=True)
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def has_secret(text: str) -> bool:
    """Whether ``text`` holds a known token in any form (cheap check before re-encoding a message)."""
    with _live_lock:
        secrets = list(_live_secrets)
    return any(value in text for value in secrets)


class RedactingFilter(logging.Filter):
    """Scrubs known tokens from log records (message and arguments) before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix; leave the record alone
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # tracebacks print the exception's text (e.g. requests' InvalidHeader quoting the header)
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(logger_names: Iterable[str] = ("fieldsafe", "fieldsafe.cloud", "urllib3")) -> None:
    """Attach the redacting filter to our loggers and to urllib3's (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if _FILTER not in pool_logger.filters:
        pool_logger.addFilter(_FILTER)
    # Logger filters only see records logged on that very logger; a handler filter sees every record
    # that reaches the handler (pygls, asyncio, the root logger), so the root handlers get one too.
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


install_log_redaction()


# --------------------------------------------------------------------------------------------------
# Errors


class CloudError(Exception):
    """Base of every error this client raises; ``str()`` is a message a user can act on."""

    hint: str = ""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.url = url

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(CloudError):
    """particle-cli's settings could not be read (names the file and the fix)."""


class InsecureTransport(CloudError):
    """Refused to send the access token over plain http to a non-loopback host."""


class NotLoggedIn(CloudError):
    """No access token anywhere: the user has to run ``particle login``."""

    hint = "run `particle login` (or set PARTICLE_ACCESS_TOKEN)"


class TokenExpired(CloudError):
    """The cloud rejected the token (HTTP 401: invalid, expired or revoked)."""

    hint = "run `particle login` to get a new token"


class Forbidden(CloudError):
    """HTTP 403: the token is valid but not allowed to see this device or product."""


class NotFound(CloudError):
    """HTTP 404: ``resource`` names what was missing (e.g. ``device 'field-unit-7'``)."""

    def __init__(self, message: str, *, resource: str = "", status: int | None = 404, url: str | None = None):
        super().__init__(message, status=status, url=url)
        self.resource = resource


class BadRequest(CloudError):
    """HTTP 400 that is not a compile failure (e.g. an unknown build target)."""


class RateLimited(CloudError):
    """HTTP 429 after retries (or a ``Retry-After`` longer than we are willing to wait)."""

    def __init__(self, message: str, *, retry_after: float | None, status: int | None = 429, url: str | None = None):
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class ServerError(CloudError):
    """HTTP 5xx after retries."""


class Offline(CloudError):
    """The API host could not be reached (DNS, refused, reset, timeout). ``host`` says which."""

    def __init__(self, message: str, *, host: str, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.host = host


class CompileFailed(CloudError):
    """The cloud compiler reported errors; ``log`` is the whole build log (``errors[0]``)."""

    def __init__(self, message: str, *, log: str, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message, status=status, url=url)
        self.log = log


class BadResponse(CloudError):
    """The reply was not what the API promises (malformed JSON, truncated body, wrong shape).

    Every message ends with a next step (issue 14: naming the cause is not enough).
    """

    hint = (
        "try again; if it keeps happening, check that the API URL (PARTICLE_API_URL or the particle-cli "
        "profile's apiUrl) points at the Particle Cloud"
    )

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        if not any(step in message for step in ("try again", "API URL", "refusing")):
            message = f"{message}; {self.hint}"
        super().__init__(message, status=status, url=url)


def is_absence(exc: BaseException) -> bool:
    """True when the cloud *answered* that a resource is not there or not the user's (404/403).

    Every other failure (offline, timeout, 401, 429, 5xx, redirect, bad body, no token) says nothing
    about the device: callers fall back to the last known state or report it as not checked.
    """
    return isinstance(exc, NotFound | Forbidden)


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class CloudConfig:
    """Which API to talk to and with which token, plus where each came from (for ``--verbose`` output).

    ``token`` is a :class:`Secret` (or ``None``); its repr is redacted, so printing a config is safe.
    """

    api_url: str
    token: Secret | None = field(default=None)
    source_of_url: str = "default"
    source_of_token: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.token, str):
            cleaned = clean_token(self.token, self.source_of_token)
            self.token = Secret(cleaned) if cleaned else None
        self.api_url = self.api_url.rstrip("/")

    @property
    def host(self) -> str:
        """``host[:port]`` of the API URL (what error messages and cache keys name)."""
        from urllib3.exceptions import LocationParseError
        from urllib3.util import parse_url

        try:
            parsed = parse_url(self.api_url)
        except LocationParseError:
            return self.api_url
        if not parsed.host:
            return self.api_url
        return parsed.host + (f":{parsed.port}" if parsed.port else "")


def clean_token(value: str, source: str) -> str | None:
    """The token as it may travel: surrounding whitespace stripped (a trailing newline from a file or a
    copy is common), then only visible ASCII allowed. ``None`` when nothing is left.

    Why here, once: a newline inside the ``Authorization`` header makes requests raise an error that
    quotes the header, token and all. The error names where the token came from, never the token.
    """
    register_secret(value)  # even a refused value must never be shown
    token = value.strip()
    if not token:
        return None
    for index, char in enumerate(token):
        if not "\x21" <= char <= "\x7e":
            what = "a space" if char == " " else f"the character U+{ord(char):04X}"
            raise ConfigError(
                f"the access token from {source} contains {what} at position {index + 1}; a Particle token is "
                "one word of letters and digits: run `particle login` again (or fix PARTICLE_ACCESS_TOKEN)"
            )
    return token


def find_home(env: Mapping[str, str]) -> Path | None:
    """Home directory the way particle-cli finds it: first of ``home``, ``HOME``, ``HOMEPATH``,
    ``USERPROFILE`` that is set and exists."""
    for name in HOME_ENV_VARS:
        value = env.get(name)
        if value and Path(value).is_dir():
            return Path(value)
    return None


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular(path).decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the file or run `particle login` "
            "to rewrite it"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: byte {exc.start} is not UTF-8; save the file as UTF-8 or run `particle login` to rewrite it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_particle_profile(home: Path) -> tuple[Path, dict[str, Any]]:
    """particle-cli's active profile settings: (path of ``<profile>.config.json``, its content or {})."""
    particle_dir = home / ".particle"
    profile = "particle"
    profile_file = particle_dir / "profile.json"
    if profile_file.is_file():
        name = _read_json_file(profile_file).get("name")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{profile_file}: field 'name' must be a string (the profile name)")
        profile = name or "particle"
    config_file = particle_dir / f"{profile}.config.json"
    if not config_file.is_file():
        return config_file, {}
    return config_file, _read_json_file(config_file)


def credentials_stamp(env: Mapping[str, str] = os.environ, home: Path | None = None) -> tuple[Any, ...]:
    """Something that changes whenever ``resolve_config`` could answer differently: the relevant
    environment variables and the particle-cli profile files' size and mtime (a stat, no read).

    Why: a long-running process (the language server) must notice a new ``particle login``, which
    rewrites the profile file, without re-reading it on every request.
    """
    home = home if home is not None else find_home(env)
    stamps: list[Any] = [env.get("PARTICLE_API_URL"), env.get("PARTICLE_ACCESS_TOKEN"), str(home)]
    if home is not None:
        particle_dir = home / ".particle"
        names = ["profile.json"]
        try:
            profile = json.loads(read_regular(particle_dir / "profile.json")).get("name")
        except (OSError, ValueError, AttributeError):
            profile = None
        names.append(f"{profile if isinstance(profile, str) and profile else 'particle'}.config.json")
        for name in names:
            try:
                st = (particle_dir / name).stat()
                stamps.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamps.append((name, None))
    return tuple(stamps)


def resolve_config(
    explicit_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    home: Path | None = None,
    *,
    explicit_token: str | None = None,
) -> CloudConfig:
    """Decide API URL and token.

    URL: ``explicit_url`` > ``PARTICLE_API_URL`` > particle-cli profile ``apiUrl`` > api.particle.io.
    Token: ``explicit_token`` > ``PARTICLE_ACCESS_TOKEN`` > particle-cli profile ``access_token``.
    """
    home = home if home is not None else find_home(env)
    profile_path: Path | None = None
    profile: dict[str, Any] = {}
    if home is not None:
        profile_path, profile = read_particle_profile(home)

    url_source = "default"
    api_url = DEFAULT_API_URL
    if explicit_url:
        api_url, url_source = explicit_url, "explicit"
    elif env.get("PARTICLE_API_URL"):
        api_url, url_source = env["PARTICLE_API_URL"], "env PARTICLE_API_URL"
    elif profile.get("apiUrl"):
        if not isinstance(profile["apiUrl"], str):
            raise ConfigError(f"{profile_path}: field 'apiUrl' must be a URL string")
        api_url, url_source = profile["apiUrl"], str(profile_path)

    token: str | None = None
    token_source = "none"
    if explicit_token:
        token, token_source = explicit_token, "explicit"
    elif env.get("PARTICLE_ACCESS_TOKEN"):
        token, token_source = env["PARTICLE_ACCESS_TOKEN"], "env PARTICLE_ACCESS_TOKEN"
    elif profile.get("access_token"):
        if not isinstance(profile["access_token"], str):
            raise ConfigError(f"{profile_path}: field 'access_token' must be a string; run `particle login`")
        token, token_source = profile["access_token"], str(profile_path)
    if token is not None:
        token = clean_token(token, token_source)
        if token is None:
            token_source = "none"

    problem = api_url_problem(api_url)
    if problem:
        where = "--api-url" if url_source == "explicit" else url_source
        raise ConfigError(
            f"API URL {display_url(api_url)!r} (from {where}) {problem}; use http(s)://HOST[:PORT], "
            f"e.g. {DEFAULT_API_URL}"
        )
    return CloudConfig(api_url=api_url, token=token, source_of_url=url_source, source_of_token=token_source)


_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


def display_url(url: str) -> str:
    """``url`` safe to show: credentials (``user:pass@``) masked, control characters escaped."""
    masked = re.sub(r"^([A-Za-z][\w+.\-]*://)[^/?#]*@", r"\1***@", url)
    return redact(masked.encode("unicode_escape").decode("ascii"))


def api_url_problem(api_url: str) -> str | None:
    """Why ``api_url`` cannot be used as an API (or download) URL, or None.

    Parsed with urllib3's parser, the one requests dials with, and cross-checked with ``urlsplit``:
    when the two disagree on scheme, host or port (``http://evil.example\\@127.0.0.1``) the URL is
    ambiguous and refused, so a check can never approve a host other than the one that is dialled.
    """
    if not isinstance(api_url, str) or not api_url:
        return "is not an http(s) URL"
    if _URL_FORBIDDEN.search(api_url):
        return "contains a space, a backslash or a control character (ambiguous)"
    split = urlsplit(api_url)
    try:
        split_port = split.port
    except ValueError:
        return "has an invalid port"
    from urllib3.exceptions import LocationParseError  # the transport's parser, loaded only when a URL is checked
    from urllib3.util import parse_url

    try:
        parsed = parse_url(api_url)
    except LocationParseError:
        return "cannot be parsed"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "is not an http(s) URL"
    if parsed.auth is not None or "@" in (parsed.netloc or ""):
        return "contains credentials (user:password@); remove them: the access token is sent as a bearer header"
    if parsed.query is not None or parsed.fragment is not None:
        return "has a query or fragment (ambiguous as a base URL)"
    host = parsed.host.strip("[]").lower()
    if (split.scheme.lower(), (split.hostname or "").lower(), split_port) != (parsed.scheme, host, parsed.port):
        return "is ambiguous (URL parsers disagree on its host)"
    return None


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as the transport will dial it (after :func:`api_url_problem` said None)."""
    from urllib3.util import parse_url

    parsed = parse_url(url)
    scheme = parsed.scheme or ""
    port = parsed.port or {"https": 443, "http": 80}.get(scheme)
    return (scheme, (parsed.host or "").strip("[]").lower(), port)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (hosts where plain http cannot leak the token)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------------
# Cache


class ResponseCache:
    """Last known good responses on disk, keyed by API host + key, stored with their save time.

    Why: a field engineer on a train still wants to see which Device OS field-unit-7 ran last time.
    Writes are atomic (temp file + ``os.replace``) so a crash never leaves half a JSON file.
    """

    def __init__(self, directory: Path, api_url: str) -> None:
        self.directory = directory
        self.api = urlsplit(api_url).netloc.lower() or api_url

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(f"{self.api}\n{key}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def put(self, key: str, value: Any, *, now: float | None = None) -> None:
        record = {"api": self.api, "key": key, "saved_at": time.time() if now is None else now, "value": value}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(record, handle)
                os.replace(tmp, self._path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a read-only cache must never break a working online call
            log.debug("cache write for %s failed: %s", key, exc)

    def get(self, key: str, *, now: float | None = None) -> tuple[Any, float] | None:
        path = self._path(key)
        try:
            record = json.loads(read_regular(path, 64 * 2**20))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key or record.get("api") != self.api:
            return None
        age = max(0.0, (time.time() if now is None else now) - float(record.get("saved_at", 0)))
        return record.get("value"), age


def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("fieldsafe")/cloud`` (overridable per client)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("fieldsafe")) / "cloud"


# --------------------------------------------------------------------------------------------------
# Client


DEFAULT_SLEEP: Callable[[float], None] = time.sleep  # module-level so CLI tests can make retries instant
OFFLINE_HINT = "check the network connection, then try again (the last known device state is used meanwhile)"
RETRY_HINT = "the connection may be unstable: try again"
API_URL_HINT = "Check the API URL (PARTICLE_API_URL or the particle-cli profile's apiUrl) points at the Particle Cloud"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), ``None`` when absent/unparseable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ParticleCloud:
    """The Particle Cloud REST API, the parts fieldsafe needs. One instance per config."""

    def __init__(
        self,
        config: CloudConfig,
        *,
        timeout: float = 30,
        cache_dir: Path | None = None,
        max_retries: int = 3,
        max_total_wait: float = 30.0,
        backoff: float = 0.5,
        compile_timeout: float = 300,
        deadline: float = 45.0,
        max_body_bytes: int = 64 * 2**20,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.compile_timeout = compile_timeout
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        self.max_retries = max_retries
        self.max_total_wait = max_total_wait
        self.backoff = backoff
        self._sleep = sleep if sleep is not None else DEFAULT_SLEEP
        import requests

        self._clock = clock
        if session is None:
            session = requests.Session()
            # threads share the session (the language server's lookups and superseded compiles): a pool
            # larger than urllib3's 10 keeps it from warning "Connection pool is full" and dropping sockets
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._session.trust_env = False  # never route the token through an env proxy we did not choose
        self.cache = ResponseCache(cache_dir if cache_dir is not None else default_cache_dir(), config.api_url)

    def __repr__(self) -> str:
        return f"ParticleCloud(api_url={self.config.api_url!r}, token={'set' if self.config.token else 'none'})"

    # ---- plumbing ---------------------------------------------------------------------------------

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "X-Particle-Tool": "fieldsafe", "Accept": "application/json"}
        if not auth:
            return headers
        token = self.config.token
        if token is None:
            raise NotLoggedIn(f"not logged in to the Particle Cloud ({self.config.host}); {NotLoggedIn.hint}")
        problem = api_url_problem(self.config.api_url)
        if problem:
            raise InsecureTransport(f"refusing to send your access token: the API URL {problem}")
        scheme, host, _port = url_origin(self.config.api_url)
        if scheme != "https" and not is_loopback_host(host):
            raise InsecureTransport(
                f"refusing to send your access token over plain http to {host}; use an https API URL "
                "(plain http is only allowed for loopback, e.g. the fieldsafe emulator)"
            )
        headers["Authorization"] = "Bearer " + token.reveal()
        return headers

    def _url(self, path: str) -> str:
        """The absolute URL for an API path, or a full URL the API handed out (a ``binary_url``).

        A full URL must have exactly the API URL's scheme, host and port: never another host, never
        plain http when the API is https (the token would travel in clear), never credentials.
        """
        if not path.startswith(("http://", "https://")):
            return self.config.api_url + path
        problem = api_url_problem(path)
        if problem:
            raise BadResponse(f"refusing to follow the URL {display_url(path)!r} the cloud sent: it {problem}")
        theirs, ours = url_origin(path), url_origin(self.config.api_url)
        if theirs[1:] != ours[1:]:
            raise BadResponse(f"refusing to follow a URL to another host: {theirs[1]}")
        if theirs[0] != ours[0]:
            raise BadResponse(
                f"refusing to follow a {theirs[0]}:// URL from an {ours[0]}:// API (the token would travel "
                f"without the API's protection): {display_url(path)}"
            )
        return path

    def _request(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
        raw: bool = False,
        json_body: Any = None,
    ) -> requests.Response:
        """One API call with retries for idempotent GETs; returns a 2xx response or raises a CloudError.

        One deadline covers the whole operation: every attempt's request time, body reading and the
        waits between retries (``deadline`` for GETs, ``timeout`` or ``compile_timeout`` for a POST).
        """
        import requests

        url = self._url(path)
        headers = self._headers(auth)
        retryable = method == "GET"
        budget = self.deadline if retryable else (timeout or self.timeout)
        spent = 0.0  # request time (clock) + waits (as asked of ``sleep``, which tests make instant)
        waited = 0.0  # the waits alone, bounded by ``max_total_wait``
        attempt = 0
        while True:
            log.debug("%s %s (attempt %d)", method, url, attempt + 1)
            failure: CloudError
            delay: float | None = None
            remaining = budget - spent
            started = self._clock()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    files=files,
                    data=data,
                    json=json_body,
                    timeout=max(0.05, min(timeout or self.timeout, remaining)),
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    self._read_body(response, started + remaining, url)
                finally:
                    response.close()
            except requests.exceptions.ChunkedEncodingError as exc:
                failure = BadResponse(
                    f"truncated response from {self.config.host} ({_short(exc)}); {RETRY_HINT}", url=url
                )
            except BadResponse as exc:
                failure = exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = Offline(
                    f"cannot reach the Particle Cloud at {self.config.host} ({_short(exc)}); {OFFLINE_HINT}",
                    host=self.config.host,
                    url=url,
                )
            except requests.RequestException as exc:
                raise CloudError(
                    f"request to {self.config.host} failed: {_short(exc)}. {API_URL_HINT}", url=url
                ) from None
            else:
                if 200 <= response.status_code < 300:
                    return response
                failure = self._error_for(response, resource, url)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                delay = parse_retry_after(response.headers.get("Retry-After"))
            spent += self._clock() - started
            if not retryable or attempt >= self.max_retries:
                raise failure
            if delay is None:
                delay = self.backoff * (2**attempt)
            if waited + delay > self.max_total_wait or spent + delay >= budget:
                log.debug(
                    "not retrying %s: %.1fs spent, %.1fs more would pass the %.1fs deadline", url, spent, delay, budget
                )
                raise failure
            log.debug("retrying %s in %.2fs after: %s", url, delay, failure)
            self._sleep(delay)
            spent += delay
            waited += delay
            attempt += 1

    def _read_body(self, response: requests.Response, until: float, url: str) -> None:
        """Read the whole body before ``until`` (a slow trickle cannot outlast the deadline) and at most
        ``max_body_bytes``; a short body (truncated) raises inside the retry loop, so it retries too."""
        import requests

        if response.raw is None:  # a response built in memory (a session double, a caching adapter)
            body = response.content or b""
            if len(body) > self.max_body_bytes:
                raise BadResponse(f"the reply from {self.config.host} is larger than the limit; refusing it", url=url)
            return
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BadResponse(
                    f"the reply from {self.config.host} is larger than {self.max_body_bytes // 2**20} MB; "
                    f"refusing it. {API_URL_HINT}",
                    url=url,
                )
            if self._clock() > until:
                raise requests.Timeout(f"timed out: the reply took longer than the {self.deadline:.0f} s deadline")
        response._content = b"".join(chunks)
        response._content_consumed = True
        _check_length(response)

    def _error_for(self, response: requests.Response, resource: str, url: str) -> CloudError:
        """Map a non-2xx reply to the typed error the user can act on."""
        status = response.status_code
        body = _json_or_none(response)
        description = ""
        if isinstance(body, dict):
            description = str(body.get("error_description") or body.get("error") or body.get("info") or "")
            description = _one_line(description)[:200]
        suffix = f": {description}" if description else ""
        host = self.config.host
        if 300 <= status < 400:
            where = _one_line(response.headers.get("Location") or "")
            target = url_origin(where)[1] if where.startswith(("http://", "https://")) else ""
            return CloudError(
                f"{resource}: {host} answered with a redirect (HTTP {status}"
                + (f" to {target}" if target else "")
                + f"), which fieldsafe never follows with your token. {API_URL_HINT}",
                status=status,
                url=url,
            )
        if status == 400 and isinstance(body, dict) and (body.get("output") or body.get("errors")):
            errors = body.get("errors") or []
            log_text = errors[0] if errors and isinstance(errors[0], str) else json.dumps(errors)
            return CompileFailed(
                f"compile failed on {host}: {body.get('output') or 'compiler error'}",
                log=log_text,
                status=status,
                url=url,
            )
        if status == 400:
            return BadRequest(f"{resource}: rejected by {host} (HTTP 400){suffix}", status=status, url=url)
        if status == 401:
            return TokenExpired(
                f"the Particle Cloud ({host}) rejected your access token{suffix.rstrip('.')}; {TokenExpired.hint}",
                status=status,
                url=url,
            )
        if status == 403:
            return Forbidden(
                f"{resource}: your account is not allowed to access it on {host}{suffix}; check you are logged in to "
                "the account that owns it (`particle whoami`, `particle login`)",
                status=status,
                url=url,
            )
        if status == 404:
            return NotFound(
                f"{resource} not found on {host}{suffix}; check the name or id (`fieldsafe devices` lists your devices)",
                resource=resource,
                status=status,
                url=url,
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            wait = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            return RateLimited(
                f"rate limited by {host} (HTTP 429){wait}; wait a little and try again",
                retry_after=retry_after,
                url=url,
            )
        if status >= 500:
            return ServerError(
                f"{host} had a server error (HTTP {status}) for {resource}{suffix}; the cloud is having trouble: "
                "try again in a few minutes",
                status=status,
                url=url,
            )
        return CloudError(
            f"{resource}: unexpected HTTP {status} from {host}{suffix}. {API_URL_HINT}", status=status, url=url
        )

    def _get_json(self, path: str, *, resource: str, params: Mapping[str, Any] | None = None, auth: bool = True) -> Any:
        response = self._request("GET", path, resource=resource, params=params, auth=auth)
        return _decode_json(response, resource)

    # ---- endpoints --------------------------------------------------------------------------------

    def build_targets(self) -> dict[str, Any]:
        """``GET /v1/build_targets`` (no token needed): ``{targets, platforms, default_versions}``."""
        body = self._get_json("/v1/build_targets", resource="build targets", auth=False)
        if not isinstance(body, dict) or not isinstance(body.get("targets"), list):
            raise BadResponse(f"build targets from {self.config.host}: expected an object with 'targets'")
        self.cache.put("build_targets", body)
        return body

    def device_os_versions(self, platform_id: int, *, per_page: int = 100) -> list[dict[str, Any]]:
        """Every Device OS version the cloud offers for a platform (all pages, either body shape)."""
        versions: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._get_json(
                "/v1/device-os/versions",
                resource=f"Device OS versions for platform {platform_id}",
                params={"platform_id": platform_id, "per_page": per_page, "page": page},
            )
            items, meta = _versions_page(body, self.config.host)
            versions.extend(items)
            total_pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if isinstance(total_pages, int):
                if page >= total_pages:
                    break
            elif len(items) < per_page:
                break
            if not items:
                break
            page += 1
        return versions

    def device_os_version(self, version: str | int, platform_id: int) -> dict[str, Any]:
        """One Device OS version; ``version`` may be a semver, ``latest`` or a module version number."""
        body = self._get_json(
            f"/v1/device-os/versions/{quote(str(version), safe='')}",
            resource=f"Device OS version {version} for platform {platform_id}",
            params={"platform_id": platform_id},
        )
        if not isinstance(body, dict) or "version" not in body:
            raise BadResponse(f"Device OS version {version} from {self.config.host}: expected an object with 'version'")
        return body

    def list_devices(self) -> list[dict[str, Any]]:
        """``GET /v1/devices`` (the account's devices); cached for offline use."""
        body = self._get_json("/v1/devices", resource="device list")
        if not isinstance(body, list):
            raise BadResponse(f"device list from {self.config.host}: expected a JSON array")
        self.cache.put("devices", body)
        return body

    def get_device(self, id_or_name: str) -> dict[str, Any]:
        """``GET /v1/devices/:idOrName`` (more detail than the list); cached under id and name."""
        body = self._get_json(f"/v1/devices/{quote(id_or_name, safe='')}", resource=f"device '{id_or_name}'")
        if not isinstance(body, dict) or "id" not in body:
            raise BadResponse(f"device '{id_or_name}' from {self.config.host}: expected an object with 'id'")
        for key in {id_or_name, str(body.get("id")), str(body.get("name") or "")} - {""}:
            self.cache.put(f"device:{key}", body)
        return body

    def product_devices(self, product: str | int, groups: list[str] | None = None) -> list[dict[str, Any]]:
        """All devices of a product (every page until ``page == total_pages``), optionally by group."""
        devices: list[dict[str, Any]] = []
        page = 1
        resource = f"product '{product}'"
        while True:
            params: dict[str, Any] = {"page": page, "per_page": 100}
            if groups:
                params["groups"] = ",".join(groups)
            body = self._get_json(
                f"/v1/products/{quote(str(product), safe='')}/devices", resource=resource, params=params
            )
            if not isinstance(body, dict) or not isinstance(body.get("devices"), list):
                raise BadResponse(f"devices of {resource} from {self.config.host}: expected {{devices: [...], meta}}")
            devices.extend(body["devices"])
            meta = body.get("meta") or {}
            total_pages = meta.get("total_pages") if isinstance(meta, dict) else None
            if not isinstance(total_pages, int) or page >= total_pages or not body["devices"]:
                break
            page += 1
        return devices

    def products(self) -> list[dict[str, Any]]:
        """``GET /v1/user/products``: the products this account can see (for the editor's product picker)."""
        body = self._get_json("/v1/user/products", resource="product list")
        if not isinstance(body, dict) or not isinstance(body.get("products"), list):
            raise BadResponse(f"product list from {self.config.host}: expected {{products: [...]}}")
        return [p for p in body["products"] if isinstance(p, dict)]

    def product(self, product: str | int) -> dict[str, Any]:
        """``GET /v1/products/:idOrSlug``: the product object (``id``, ``slug``, ``platform_id``, ``groups``...)."""
        body = self._get_json(f"/v1/products/{quote(str(product), safe='')}", resource=f"product '{product}'")
        if not isinstance(body, dict) or not isinstance(body.get("product"), dict):
            raise BadResponse(f"product '{product}' from {self.config.host}: expected {{product: {{...}}}}")
        return body["product"]

    def product_devices_page(
        self,
        product: str | int,
        *,
        page: int,
        per_page: int = 100,
        sort_attr: str = "deviceId",
        sort_dir: str = "asc",
        groups: list[str] | None = None,
    ) -> dict[str, Any]:
        """One page of a product's devices, stably sorted (``fieldsafe.fleetlisting`` fetches them concurrently)."""
        params: dict[str, Any] = {"page": page, "per_page": per_page, "sortAttr": sort_attr, "sortDir": sort_dir}
        if groups:
            params["groups"] = ",".join(groups)
        resource = f"product '{product}'"
        body = self._get_json(f"/v1/products/{quote(str(product), safe='')}/devices", resource=resource, params=params)
        if not isinstance(body, dict) or not isinstance(body.get("devices"), list):
            raise BadResponse(f"devices of {resource} from {self.config.host}: expected {{devices: [...], meta}}")
        return body

    def product_firmware(self, product: str | int) -> list[dict[str, Any]]:
        """``GET /v1/products/:p/firmware``: every uploaded version with ``product_default`` and ``groups``."""
        resource = f"firmware of product '{product}'"
        body = self._get_json(f"/v1/products/{quote(str(product), safe='')}/firmware", resource=resource)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise BadResponse(f"{resource} from {self.config.host}: expected a JSON array of firmware objects")
        return body

    def upload_product_firmware(
        self, product: str | int, *, version: int, binary: bytes, filename: str, title: str, description: str = ""
    ) -> dict[str, Any]:
        """``POST /v1/products/:p/firmware`` (multipart ``binary``; not retried: a POST)."""
        form = {"version": str(version), "title": title}
        if description:
            form["description"] = description
        response = self._request(
            "POST",
            f"/v1/products/{quote(str(product), safe='')}/firmware",
            resource=f"firmware upload v{version} to product '{product}'",
            files=[("binary", (filename, binary, "application/octet-stream"))],
            data=form,
        )
        body = _decode_json(response, "firmware upload")
        if not isinstance(body, dict):
            raise BadResponse(f"firmware upload to product '{product}': expected a JSON object")
        return body

    def release_product_firmware(
        self, product: str | int, *, version: int, product_default: bool, groups: list[str], intelligent: bool
    ) -> dict[str, Any]:
        """``PUT /v1/products/:p/firmware/release`` with the body particle-api-js sends (not retried)."""
        body_in = {"version": version, "product_default": product_default, "groups": groups, "intelligent": intelligent}
        response = self._request(
            "PUT",
            f"/v1/products/{quote(str(product), safe='')}/firmware/release",
            resource=f"release of firmware v{version} in product '{product}'",
            json_body=body_in,
        )
        body = _decode_json(response, "firmware release")
        if not isinstance(body, dict):
            raise BadResponse(f"firmware release in product '{product}': expected a JSON object")
        return body

    def compile(self, files: Mapping[str, bytes], platform_id: int, build_target_version: str | None) -> dict[str, Any]:
        """``POST /v1/binaries``: parts ``file``, ``file2``, ...; filename = project-relative path.

        Not retried (a POST); raises :class:`CompileFailed` with the build log on compiler errors.
        """
        if not files:
            raise BadRequest("nothing to compile: no source files selected")
        parts = [
            ("file" if i == 0 else f"file{i + 1}", (name, content, "application/octet-stream"))
            for i, (name, content) in enumerate(files.items())
        ]
        form: dict[str, str] = {"platform_id": str(platform_id)}
        if build_target_version:
            form["build_target_version"] = build_target_version
        else:
            form["latest"] = "true"
        response = self._request(
            "POST",
            "/v1/binaries",
            resource=f"compile for platform {platform_id} @ {build_target_version or 'latest'}",
            files=parts,
            data=form,
            timeout=self.compile_timeout,
        )
        body = _decode_json(response, "compile result")
        if not isinstance(body, dict):
            raise BadResponse(f"compile result from {self.config.host}: expected a JSON object")
        if body.get("ok") is False or not body.get("binary_id"):
            errors = body.get("errors") or []
            log_text = errors[0] if errors and isinstance(errors[0], str) else json.dumps(body)
            raise CompileFailed(
                f"compile failed on {self.config.host}: {body.get('output') or 'no binary'}",
                log=log_text,
                status=response.status_code,
            )
        return body

    def download_binary(self, binary_id_or_url: str) -> bytes:
        """``GET /v1/binaries/:id`` raw bytes (accepts an id, ``/v1/binaries/<id>`` or a full URL)."""
        if binary_id_or_url.startswith(("http://", "https://", "/")):
            path = binary_id_or_url
        else:
            path = f"/v1/binaries/{quote(binary_id_or_url, safe='')}"
        response = self._request("GET", path, resource=f"binary {binary_id_or_url}", raw=True)
        return response.content

    def current_token(self) -> dict[str, Any]:
        """``GET /v1/access_tokens/current``: checks the token is alive (``expires_at``, scopes)."""
        body = self._get_json("/v1/access_tokens/current", resource="access token")
        if not isinstance(body, dict):
            raise BadResponse(f"token info from {self.config.host}: expected a JSON object")
        return body

    # ---- delivery to a device (fieldsafe flash / update-os) ---------------------------------------

    def get_product_device(self, product: str | int, id_or_name: str) -> dict[str, Any]:
        """``GET /v1/products/:p/devices/:id``: a product device you may not own (fresh, never cached)."""
        body = self._get_json(
            f"/v1/products/{quote(str(product), safe='')}/devices/{quote(id_or_name, safe='')}",
            resource=f"device '{id_or_name}' of product {product}",
        )
        if isinstance(body, dict) and isinstance(body.get("device"), dict):
            body = body["device"]
        if not isinstance(body, dict) or "id" not in body:
            raise BadResponse(f"device '{id_or_name}' of product {product} from {self.config.host}: expected an object")
        return body

    def flash_device(
        self, device_id: str, binary: bytes, *, filename: str = "firmware.bin", product: str | int | None = None
    ) -> dict[str, Any]:
        """``PUT /v1/devices/:id`` (or ``/v1/products/:p/devices/:id``) multipart ``file``: start an OTA flash.

        App or Device OS module. Not retried (a second PUT would send the bytes twice); the outcome arrives
        as events.
        """
        where = f"/v1/products/{quote(str(product), safe='')}" if product is not None else "/v1"
        response = self._request(
            "PUT",
            f"{where}/devices/{quote(device_id, safe='')}",
            resource=f"flash of device '{device_id}'",
            files=[("file", (filename, binary, "application/octet-stream"))],
            data={"file_type": "binary"},
            timeout=max(self.timeout, 60.0),
        )
        body = _decode_json(response, f"flash of device '{device_id}'")
        if not isinstance(body, dict) or not ({"status", "message", "ok", "id"} & body.keys()):
            raise BadResponse(f"flash of device '{device_id}' on {self.config.host}: unexpected reply")
        if body.get("ok") is False:
            raise CloudError(
                f"flash of device '{device_id}' refused by {self.config.host}: {body.get('error') or body}"
            )
        return body

    def set_development(self, product: str | int, device_id: str, development: bool = True) -> dict[str, Any]:
        """``PUT /v1/products/:p/devices/:id {"development": true}`` (what particle-cli does before a flash)."""
        response = self._request(
            "PUT",
            f"/v1/products/{quote(str(product), safe='')}/devices/{quote(device_id, safe='')}",
            resource=f"device '{device_id}' of product {product}",
            json_body={"development": development},
        )
        body = _decode_json(response, f"device '{device_id}' of product {product}")
        if not isinstance(body, dict):
            raise BadResponse(f"device '{device_id}' of product {product}: expected a JSON object")
        return body

    def device_os_modules(self, release: str, platform_id: int) -> tuple[str, list[dict[str, Any]]]:
        """The module files of a Device OS release for a platform: ``(base_url, modules)`` from the versions API."""
        body = self.device_os_version(release, platform_id)
        base_url, modules = body.get("base_url"), body.get("modules")
        if not isinstance(base_url, str) or not isinstance(modules, list):
            raise BadResponse(
                f"Device OS {release} for platform {platform_id} from {self.config.host}: no base_url/modules"
            )
        if not all(isinstance(m, dict) and isinstance(m.get("filename"), str) for m in modules):
            raise BadResponse(f"Device OS {release} from {self.config.host}: every module needs a filename")
        return base_url, modules

    def download_module(self, base_url: str, filename: str) -> bytes:
        """One Device OS module file (``base_url/filename``; same host as the API only)."""
        if "/" in filename or filename in ("", ".", ".."):
            raise BadResponse(f"refusing module file name {filename!r} from {self.config.host}")
        path = base_url.rstrip("/") + "/" + quote(filename)
        response = self._request("GET", path, resource=f"Device OS module {filename}", raw=True)
        return response.content

    def open_events(
        self,
        device_id: str,
        *,
        prefix: str | None = None,
        product: str | int | None = None,
        read_timeout: float = 30.0,
    ) -> EventStream:
        """``GET /v1/devices/:id/events[/:prefix]`` as a server-sent event stream (see :class:`EventStream`).

        A product device you do not own has no device stream: ``product`` reads the product's stream and keeps
        only this device's events. Opened (headers received) before returning, so events published after this
        call are not missed.
        """
        if product is not None:
            path = f"/v1/products/{quote(str(product), safe='')}/events"
        else:
            path = f"/v1/devices/{quote(device_id, safe='')}/events"
        if prefix:
            path += "/" + quote(prefix, safe="")
        url = self._url(path)
        headers = self._headers(True)
        headers["Accept"] = "text/event-stream"
        try:
            response = self._session.get(
                url, headers=headers, stream=True, timeout=(self.timeout, read_timeout), allow_redirects=False
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Offline(
                f"cannot reach the Particle Cloud at {self.config.host} ({_short(exc)})", host=self.config.host, url=url
            ) from None
        if not response.ok:
            failure = self._error_for(response, f"events of device '{device_id}'", url)
            response.close()
            raise failure
        return EventStream(response, coreid=device_id if product is not None else None)

    # ---- cache ------------------------------------------------------------------------------------

    def cached(self, key: str) -> tuple[Any, float] | None:
        """Last known value for ``"devices"``, ``"build_targets"`` or ``"device:<id or name>"`` + its age (s)."""
        return self.cache.get(key)

    def list_devices_or_cached(self) -> tuple[list[dict[str, Any]], float | None]:
        """Devices and ``None`` when online; when Offline, the cached list and its age (else re-raise)."""
        try:
            return self.list_devices(), None
        except Offline:
            hit = self.cached("devices")
            if hit is None:
                raise
            return hit[0], hit[1]

    def get_device_or_cached(self, id_or_name: str) -> tuple[dict[str, Any], float | None]:
        """One device and ``None`` when the cloud answered; when the lookup failed for any reason other
        than the cloud saying the device is not there (offline, timeout, 401, 429, 5xx, a redirect, a
        malformed or truncated body...), the cached copy and its age (else re-raise).

        Why every failure: a fault must never make a dangerous build look fine, so the last known
        state (said with its age) is always better than no state at all.
        """
        raw, age, error = self.lookup_device(id_or_name)
        if raw is None:
            assert error is not None
            raise error
        return raw, age

    def lookup_device(self, id_or_name: str) -> tuple[dict[str, Any] | None, float | None, CloudError | None]:
        """``(device, age, error)``, never raising a CloudError: ``(live, None, None)``; the last known
        state after a failure ``(cached, age, error)``; ``(None, None, error)`` when the device cannot be
        checked at all (no cached state) or the cloud says it does not exist (see :func:`is_absence`)."""
        try:
            return self.get_device(id_or_name), None, None
        except CloudError as exc:
            if is_absence(exc):
                return None, None, exc
            hit = self.cached(f"device:{id_or_name}")
            if hit is None or not isinstance(hit[0], dict):
                return None, None, exc
            return hit[0], hit[1], exc


# --------------------------------------------------------------------------------------------------
# helpers


_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")
_PLAIN_REASONS = (
    ("RemoteDisconnected", "the server closed the connection without a reply"),
    ("IncompleteRead", "the reply ended early"),
    ("timed out", "timed out"),
)


def _short(exc: BaseException) -> str:
    """A one-line, token-free description of a requests/urllib3 exception.

    urllib3 nests the useful part ("Connection refused") deep inside a pool repr; users get that part.
    """
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    errno_reason = _ERRNO_RE.search(text)
    if errno_reason:
        return redact(errno_reason.group(1).strip())
    for marker, plain in _PLAIN_REASONS:
        if marker in text:
            return plain
    return redact(text[:300])


def _check_length(response: requests.Response) -> None:
    expected = response.headers.get("Content-Length")
    if expected and expected.isdigit() and response.raw is not None:
        encoding = response.headers.get("Content-Encoding")
        if not encoding and int(expected) != len(response.content):
            raise BadResponse(
                f"truncated response from {url_origin(response.url)[1]}: got {len(response.content)} of {expected} "
                f"bytes; {RETRY_HINT}",
                url=response.url,
            )


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _decode_json(response: requests.Response, resource: str) -> Any:
    import requests

    try:
        return json.loads(response.content)
    except requests.exceptions.ChunkedEncodingError:
        raise BadResponse(f"{resource}: truncated response from {response.url}; {RETRY_HINT}") from None
    except ValueError as exc:
        detail = f"{resource}: malformed JSON from {urlsplit(response.url).netloc} ({exc.__class__.__name__}: {exc})"
        raise BadResponse(
            f"{detail[:300]}; try again, and if it persists: {API_URL_HINT}",
            url=response.url,
        ) from None


def _one_line(text: str) -> str:
    """Server-supplied text for a message: control characters (newlines) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


def _versions_page(body: Any, host: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Both documented shapes: ``{versions: [...], meta?}`` (particle-cli) and a bare array (api-js types)."""
    if isinstance(body, list):
        items, meta = body, {}
    elif isinstance(body, dict) and isinstance(body.get("versions"), list):
        items, meta = body["versions"], body.get("meta") or {}
    else:
        raise BadResponse(f"Device OS versions from {host}: expected {{versions: [...]}} or a JSON array")
    for item in items:
        if not isinstance(item, dict) or "version" not in item:
            raise BadResponse(f"Device OS versions from {host}: every entry needs a 'version'")
    return items, meta


# --------------------------------------------------------------------------------------------------
# Server-sent events


@dataclass(frozen=True)
class CloudEvent:
    """One event of ``/v1/devices/:id/events``: ``name`` plus the API's JSON fields."""

    name: str
    data: str
    published_at: str | None = None
    coreid: str | None = None
    version: int | None = None


class EventStream:
    """An open SSE response read by a daemon thread into a queue, so waiting is bounded by a deadline.

    Why a thread: a blocking socket read cannot honour a deadline or a cancel; ``next_event(timeout)``
    can. ``close()`` ends the stream (and unblocks the reader).
    """

    _END = object()

    def __init__(self, response: requests.Response, *, coreid: str | None = None) -> None:
        import queue

        self._response = response
        self._coreid = coreid  # keep only this device's events (a product stream carries every device's)
        self._queue: queue.Queue[Any] = queue.Queue()
        self.error: str | None = None
        self.closed = False
        self._thread = threading.Thread(target=self._read, name="fieldsafe-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data = "message", []
        try:
            for raw_line in self._response.iter_lines(chunk_size=1, decode_unicode=False):
                line = raw_line.decode("utf-8", "replace") if isinstance(raw_line, bytes) else raw_line
                if line == "":
                    event = _event_of(name, "\n".join(data)) if data else None
                    if event is not None and (self._coreid is None or event.coreid in (None, self._coreid)):
                        self._queue.put(event)
                    name, data = "message", []
                elif line.startswith(":"):
                    continue  # keepalive comment
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except Exception as exc:  # the stream broke (or was closed under us)
            if not self.closed:
                self.error = _short(exc)
        finally:
            self._queue.put(self._END)

    def next_event(self, timeout: float) -> CloudEvent | None:
        """The next event, or None after ``timeout`` seconds (or when the stream ended: see ``ended``)."""
        import queue

        if self.ended:
            return None
        try:
            item = self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if item is self._END:
            self._ended = True
            return None
        return item

    @property
    def ended(self) -> bool:
        return getattr(self, "_ended", False)

    def close(self) -> None:
        """End the stream now: shut the socket down first, since closing the reader would block until the
        reader thread's pending read returns (the next event or keepalive)."""
        self.closed = True
        import socket

        sock = _socket_of(self._response)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the server
                sock.shutdown(socket.SHUT_RDWR)
        else:  # an unknown transport: close in the background rather than block the caller
            threading.Thread(target=self._close_response, daemon=True).start()
            return
        self._close_response()

    def _close_response(self) -> None:
        try:
            self._response.close()
        except Exception:  # closing a broken connection may itself fail; nothing to do about it
            log.debug("closing the event stream failed", exc_info=True)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _socket_of(response: Any) -> Any:
    """The socket under a streamed requests response (urllib3 -> http.client -> socket file), if reachable."""
    try:
        return response.raw._fp.fp.raw._sock
    except AttributeError:
        return None


def _event_of(name: str, payload: str) -> CloudEvent:
    """An SSE block's data is the API's JSON object (``{"data", "ttl", "published_at", "coreid"}``)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return CloudEvent(name, payload)
    if not isinstance(body, dict):
        return CloudEvent(name, payload)
    version = body.get("version")
    return CloudEvent(
        name=str(body.get("name") or name),
        data="" if body.get("data") is None else str(body.get("data")),
        published_at=body.get("published_at"),
        coreid=body.get("coreid"),
        version=version if isinstance(version, int) else None,
    )
