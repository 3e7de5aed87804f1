"""List a product's whole fleet from the Particle Cloud into a :class:`fieldsafe.fleet.Histogram`, cached on disk.

Why its own module next to ``cloud``: listing 100,000 devices is 1,000 page requests, which needs what a
single API call does not: bounded concurrency, one back-off shared by every worker when the cloud says
429 (honouring ``Retry-After``), a stable sort so pages do not shift (``sortAttr=deviceId``), de-duplication
when they do, and an honest result: a listing with missing pages says which and how many devices, it is
never presented as complete. Each page is folded into the histogram as it arrives, so only the few
fields that decide a device's fate are held (a few hundred buckets), never 100,000 device objects.

The cache is one small JSON file per API host and product (the histogram, not the devices). Reading
it imports neither ``requests`` nor the HTTP client, so evaluating a pin from the cache starts fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fieldsafe.fleet import STALE_AFTER_DAYS, Histogram, StaleCutoff, Tally

if TYPE_CHECKING:
    from fieldsafe.cloud import CloudConfig, ParticleCloud

PER_PAGE = 100  # the largest page the API serves (fleet-api.md §5.2): 100,000 devices in 1,000 requests
CONCURRENCY = 10  # fleet-api.md §5.2's "about 10": hides round trips, well inside 10,000 requests / 5 min
MAX_ATTEMPTS = 6  # per page, for 429 / 5xx / dropped connections
MAX_BACKOFF_WAIT = 120.0  # total seconds the listing may spend waiting on back-off before giving up pages
CACHE_MAX_AGE = 600.0  # a listing younger than this is used without asking the cloud (refresh on demand)
CACHE_SCHEMA = 1


class ListingCancelled(Exception):
    """The caller cancelled the listing (a newer request superseded it)."""


@dataclass
class FleetListing:
    """A product's fleet as last listed: the histogram plus what the listing could and could not see."""

    product: str  # as the user named it (slug or id)
    product_id: int | None
    slug: str | None
    platform_id: int | None  # the product's platform (every device should be this one)
    histogram: Histogram
    listed_at: float
    expected: int | None  # devices the cloud said it has (meta.total, else inferred from total_pages)
    missing_pages: tuple[int, ...] = ()
    missing_reason: str = ""
    changed_during_listing: bool = False
    requests: int = 0
    seconds: float = 0.0
    source: str = "cloud"  # "cloud" | "cache"
    age_seconds: float | None = None  # set when it came from the cache
    cache_reason: str = ""  # why the cache was used ("offline: ...", "fresh cache")
    product_groups: tuple[str, ...] = ()
    stale_after_days: float = STALE_AFTER_DAYS
    product_default: int | None = None  # the product firmware released as the default
    group_releases: dict[str, int] = field(default_factory=dict)  # group -> released product firmware

    @property
    def releases(self) -> Any:
        """What the product has released, as ``fieldsafe.releases.ProductReleases`` (for the precedence)."""
        from fieldsafe.releases import ProductReleases

        return ProductReleases(self.product_default, dict(self.group_releases))

    @property
    def listed(self) -> int:
        return self.histogram.total

    @property
    def complete(self) -> bool:
        if self.missing_pages:
            return False
        return self.expected is None or self.listed >= self.expected

    def missing_text(self) -> str:
        """What the listing lacks, for FS506 (``pages 7, 9 (rate limited); 200 devices not listed``)."""
        parts = []
        if self.missing_pages:
            pages = ", ".join(str(p) for p in self.missing_pages[:10])
            more = f" and {len(self.missing_pages) - 10} more" if len(self.missing_pages) > 10 else ""
            parts.append(f"pages {pages}{more} could not be fetched ({self.missing_reason or 'failed'})")
        if self.expected is not None and self.listed < self.expected:
            parts.append(f"{self.expected - self.listed:,} devices not listed")
        if self.changed_during_listing:
            parts.append("the fleet changed while it was being listed")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CACHE_SCHEMA,
            "product": self.product,
            "product_id": self.product_id,
            "slug": self.slug,
            "platform_id": self.platform_id,
            "listed_at": self.listed_at,
            "expected": self.expected,
            "missing_pages": list(self.missing_pages),
            "missing_reason": self.missing_reason,
            "changed_during_listing": self.changed_during_listing,
            "requests": self.requests,
            "seconds": self.seconds,
            "product_groups": list(self.product_groups),
            "stale_after_days": self.stale_after_days,
            "product_default": self.product_default,
            "group_releases": self.group_releases,
            "histogram": self.histogram.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, now: float | None = None) -> FleetListing:
        if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
            raise ValueError("not a fleet listing of this fieldsafe version")
        listed_at = float(data["listed_at"])
        return cls(
            product=str(data["product"]),
            product_id=data.get("product_id"),
            slug=data.get("slug"),
            platform_id=data.get("platform_id"),
            histogram=Histogram.from_json(data["histogram"]),
            listed_at=listed_at,
            expected=data.get("expected"),
            missing_pages=tuple(data.get("missing_pages") or ()),
            missing_reason=str(data.get("missing_reason") or ""),
            changed_during_listing=bool(data.get("changed_during_listing")),
            requests=int(data.get("requests") or 0),
            seconds=float(data.get("seconds") or 0.0),
            source="cache",
            age_seconds=max(0.0, (time.time() if now is None else now) - listed_at),
            product_groups=tuple(data.get("product_groups") or ()),
            stale_after_days=float(data.get("stale_after_days") or STALE_AFTER_DAYS),
            product_default=data.get("product_default"),
            group_releases={str(k): int(v) for k, v in (data.get("group_releases") or {}).items()},
        )


# --------------------------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    """``$FIELDSAFE_CACHE_DIR/fleet`` or the user cache dir's ``fieldsafe/fleet`` (platformdirs)."""
    override = os.environ.get("FIELDSAFE_CACHE_DIR")
    if override:
        return Path(override) / "fleet"
    import platformdirs

    return Path(platformdirs.user_cache_dir("fieldsafe")) / "fleet"


class FleetCache:
    """One JSON file per (API host, product name); written atomically, unreadable files are ignored."""

    def __init__(self, directory: Path, api_url: str) -> None:
        self.directory = directory
        self.host = urlsplit(api_url).netloc.lower() or api_url

    def _path(self, product: str) -> Path:
        digest = hashlib.sha256(f"{self.host}\n{product}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def load(self, product: str, *, now: float | None = None) -> FleetListing | None:
        try:
            data = json.loads(self._path(product).read_text(encoding="utf-8"))
            if data.get("host") != self.host:
                return None
            return FleetListing.from_json(data, now=now)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, listing: FleetListing) -> None:
        body = listing.to_json()
        body["host"] = self.host
        text = json.dumps(body, separators=(",", ":"))
        names = {listing.product, str(listing.product_id or ""), listing.slug or ""} - {""}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for name in names:
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        handle.write(text)
                    os.replace(tmp, self._path(name))
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
        except OSError:  # a read-only cache never breaks a listing that worked
            pass


# ------------------------------------------------------------------------------------------- listing


class _Gate:
    """One back-off for every worker: after a 429, nobody asks again before ``Retry-After`` has passed."""

    def __init__(self, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._sleep = sleep
        self._clock = clock
        self.waited = 0.0

    def block_for(self, seconds: float) -> None:
        """Nobody asks before ``seconds`` from now; ``waited`` grows by the wall time the block adds."""
        with self._lock:
            now = self._clock()
            old = max(self._not_before, now)
            new = max(old, now + seconds)
            self.waited += new - old
            self._not_before = new

    def pass_through(self) -> None:
        """Sleep until the current block (and any newer one set meanwhile) has passed."""
        with self._lock:
            target = self._not_before
            delay = target - self._clock()
        while delay > 0:
            self._sleep(delay)
            with self._lock:
                if self._not_before <= target:
                    return
                target = self._not_before
                delay = target - self._clock()


class _Fold:
    """Pages folded into a tally as they arrive (thread-safe), with de-duplication by device id."""

    def __init__(self, listed_at: float, stale_after_days: float) -> None:
        self.listed_at = listed_at
        self.tally = Tally(StaleCutoff(listed_at, stale_after_days))
        self.seen: set[str] = set()
        self.totals: set[int] = set()
        self.lock = threading.Lock()

    def add_page(self, body: dict[str, Any]) -> None:
        devices = [raw for raw in body.get("devices") or () if isinstance(raw, dict)]
        total = _meta_total(body)
        with self.lock:
            if total is not None:
                self.totals.add(total)
            fresh = []
            for raw in devices:
                device_id = str(raw.get("id") or "")
                if device_id and device_id in self.seen:
                    continue  # a page shifted under a concurrent change: count each device once
                if device_id:
                    self.seen.add(device_id)
                fresh.append(raw)
            self.tally.add_devices(fresh)

    @property
    def histogram(self) -> Histogram:
        return self.tally.histogram()


def _meta_total(body: dict[str, Any]) -> int | None:
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _total_pages(body: dict[str, Any]) -> int:
    meta = body.get("meta")
    pages = meta.get("total_pages") if isinstance(meta, dict) else None
    return pages if isinstance(pages, int) and pages >= 1 else 1


def list_fleet(
    cloud: ParticleCloud,
    product: str,
    *,
    concurrency: int = CONCURRENCY,
    per_page: int = PER_PAGE,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    stale_after_days: float = STALE_AFTER_DAYS,
    max_backoff_wait: float = MAX_BACKOFF_WAIT,
) -> FleetListing:
    """List every device of ``product`` (all pages) into a histogram; raises CloudError when nothing can be listed.

    Page 1 is fetched first (it says how many pages there are); the rest are fetched by ``concurrency``
    workers, each with its own HTTP session. A page that still fails after back-off is recorded as missing.
    """
    from fieldsafe import cloud as cloudmod

    started = time.monotonic()
    sleeper = sleep if sleep is not None else cloudmod.DEFAULT_SLEEP
    gate = _Gate(sleeper, clock)
    counter = {"requests": 0}
    count_lock = threading.Lock()
    local = threading.local()

    def client() -> ParticleCloud:
        if not hasattr(local, "client"):
            local.client = _worker_client(cloud)
        return local.client

    info = _product_info(cloud, product, counter)
    released = _released(cloud, product, counter)
    fold = _Fold(listed_at=time.time(), stale_after_days=stale_after_days)
    failures: dict[int, str] = {}

    def fetch(page: int) -> bool:
        """Fetch one page and fold it here, in the worker: no page body outlives its fold (memory)."""
        attempt = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise ListingCancelled(product)
            gate.pass_through()
            with count_lock:
                counter["requests"] += 1
            try:
                fold.add_page(client().product_devices_page(product, page=page, per_page=per_page))
                return True
            except cloudmod.RateLimited as exc:
                delay = exc.retry_after if exc.retry_after is not None else _backoff(attempt)
                reason = "rate limited (HTTP 429)"
            except (cloudmod.ServerError, cloudmod.Offline, cloudmod.BadResponse) as exc:
                delay, reason = _backoff(attempt), _short_reason(exc)
            attempt += 1
            if attempt >= MAX_ATTEMPTS or gate.waited + delay > max_backoff_wait:
                failures[page] = reason
                return False
            gate.block_for(delay)

    first = _first_page(cloud, product, per_page, gate, counter, cloudmod, max_backoff_wait)
    fold.add_page(first)
    pages = _total_pages(first)
    done = 1
    if progress:
        progress(done, pages)
    if pages > 1:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, pages - 1))) as pool:
            pending = {pool.submit(fetch, page) for page in range(2, pages + 1)}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for fut in finished:
                    fut.result()  # re-raises ListingCancelled (and anything unexpected)
                    done += 1
                    if progress:
                        progress(done, pages)
                if cancel is not None and cancel.is_set():
                    for fut in pending:
                        fut.cancel()
                    raise ListingCancelled(product)
    expected = max(fold.totals) if fold.totals else None
    reasons = sorted(set(failures.values()))
    return FleetListing(
        product=product,
        product_id=info.get("id") if isinstance(info.get("id"), int) else None,
        slug=info.get("slug") if isinstance(info.get("slug"), str) else None,
        platform_id=info.get("platform_id") if isinstance(info.get("platform_id"), int) else None,
        histogram=fold.histogram,
        listed_at=fold.listed_at,
        expected=expected,
        missing_pages=tuple(sorted(failures)),
        missing_reason=", ".join(reasons),
        changed_during_listing=len(fold.totals) > 1,
        requests=counter["requests"],
        seconds=time.monotonic() - started,
        product_groups=tuple(str(g) for g in info.get("groups") or () if isinstance(g, str)),
        stale_after_days=stale_after_days,
        product_default=released.product_default,
        group_releases=dict(released.groups),
    )


def _released(cloud: ParticleCloud, product: str, counter: dict[str, int]) -> Any:
    """What the product has released (default and groups); an API without the firmware list means none."""
    from fieldsafe import cloud as cloudmod
    from fieldsafe.releases import ProductReleases

    counter["requests"] += 1
    try:
        return ProductReleases.from_firmware(cloud.product_firmware(product))
    except cloudmod.NotFound:
        return ProductReleases()


def _product_info(cloud: ParticleCloud, product: str, counter: dict[str, int]) -> dict[str, Any]:
    """The product object (platform, id, slug, groups); NotFound/Forbidden propagate: the target is wrong."""
    counter["requests"] += 1
    return cloud.product(product)


def _first_page(
    cloud: ParticleCloud,
    product: str,
    per_page: int,
    gate: _Gate,
    counter: dict[str, int],
    cloudmod: Any,
    max_backoff_wait: float,
) -> dict[str, Any]:
    """Page 1, with the shared back-off; its failure is the listing's failure (nothing to show)."""
    attempt = 0
    while True:
        gate.pass_through()
        counter["requests"] += 1
        try:
            return _worker_client(cloud).product_devices_page(product, page=1, per_page=per_page)
        except cloudmod.RateLimited as exc:
            delay = exc.retry_after if exc.retry_after is not None else _backoff(attempt)
            if attempt + 1 >= MAX_ATTEMPTS or gate.waited + delay > max_backoff_wait:
                raise
        except (cloudmod.ServerError, cloudmod.BadResponse):
            delay = _backoff(attempt)
            if attempt + 1 >= MAX_ATTEMPTS or gate.waited + delay > max_backoff_wait:
                raise
        attempt += 1
        gate.block_for(delay)


def _worker_client(cloud: ParticleCloud) -> ParticleCloud:
    """A client with its own HTTP session and no retries of its own (the listing's back-off is shared)."""
    from fieldsafe.cloud import ParticleCloud

    worker = ParticleCloud(
        cloud.config,
        timeout=cloud.timeout,
        cache_dir=cloud.cache.directory,
        max_retries=0,
        sleep=cloud._sleep,
    )
    return worker


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * (2**attempt))


def _short_reason(exc: Exception) -> str:
    from fieldsafe import cloud as cloudmod

    if isinstance(exc, cloudmod.Offline):
        return "connection failed"
    if isinstance(exc, cloudmod.ServerError):
        return "server error"
    return "bad response"


# ---------------------------------------------------------------------------------- cache + network


@dataclass
class FleetSource:
    """Listings for one API: cache first when fresh, the cloud otherwise, the cache again when offline."""

    config: CloudConfig
    cache_dir: Path | None = None
    max_age: float = CACHE_MAX_AGE
    cloud: ParticleCloud | None = None

    def __post_init__(self) -> None:
        self.cache = FleetCache(self.cache_dir or default_cache_dir(), self.config.api_url)

    def client(self) -> ParticleCloud:
        if self.cloud is None:
            from fieldsafe.cloud import ParticleCloud

            self.cloud = ParticleCloud(self.config)
        return self.cloud

    def cached(self, product: str) -> FleetListing | None:
        return self.cache.load(product)

    def get(
        self,
        product: str,
        *,
        refresh: bool = False,
        offline: bool = False,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> FleetListing:
        """The fleet of ``product``: a fresh cached listing, else a new listing (saved), else the cache when offline.

        ``offline`` uses the last listing whatever its age (and raises LookupError when there is none).
        Not found / forbidden / not logged in are never answered from the cache: the target itself is wrong.
        """
        hit = self.cache.load(product)
        if offline:
            if hit is None:
                raise LookupError(f"no saved fleet listing for product '{product}'; list it once while online")
            hit.cache_reason = "offline mode"
            return hit
        if hit is not None and not refresh and hit.complete and (hit.age_seconds or 0) <= self.max_age:
            hit.cache_reason = "listed recently"
            return hit
        from fieldsafe import cloud as cloudmod

        try:
            listing = list_fleet(self.client(), product, progress=progress, cancel=cancel)
        except (cloudmod.Offline, cloudmod.ServerError, cloudmod.RateLimited) as exc:
            if hit is None:
                raise
            hit.cache_reason = f"the cloud could not be reached: {exc}"
            return hit
        if listing.complete or hit is None:
            self.cache.save(listing)
        return listing
