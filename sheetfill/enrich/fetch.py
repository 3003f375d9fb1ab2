"""Polite HTTP lookups: a shared response cache, the shared rate limit, retries and a circuit breaker.

Order of a lookup: the cache first (no permit needed), then - if the network is allowed and the
provider's breaker is closed - a rate-limit permit per attempt. 429 and 503 wait what `Retry-After`
asks (capped); other transient failures back off exponentially with full jitter, capped. Only
answers that describe the record (200, 404) are cached, so a failure is retried on the next run.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import time
from dataclasses import dataclass

from sheetfill import wal
from sheetfill.enrich.breaker import Breaker
from sheetfill.enrich.ratelimit import SharedRateLimiter
from sheetfill.enrich.spec import Provider, Retry

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
CACHED_STATUSES = (200, 404)


@dataclass(frozen=True)
class Mode:
    network: bool = True
    only_if_cached: bool = False  # answer from the cache only: proves a replay makes no call
    refresh_before: float | None = None  # unix time; cached answers older than this are fetched again


@dataclass
class Outcome:
    status: str  # found | not_found | unavailable
    data: object = None
    fetched_at: str | None = None
    cache: str | None = None  # hit | miss
    reason: str | None = None


@dataclass
class Tally:
    lookups: int = 0
    requests: int = 0  # attempts that went to the network
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 / 503 answers seen

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def open_cache(path: str, secret_headers=()):
    """requests-cache over one SQLite file shared by every bundle (and process) of a restore_root.

    The secret headers are left out of the cache key and redacted from the stored request."""
    from requests_cache import CachedSession, SQLiteCache

    with wal.opening(path):  # jobs creating the file at once raced ("database is locked", a CI failure)
        backend = SQLiteCache(path, wal=True, timeout=60)
    return CachedSession(
        backend=backend,
        allowable_codes=CACHED_STATUSES,
        allowable_methods=("GET", "POST"),
        cache_control=False,  # the profile's TTL decides, not the provider's headers
        stale_if_error=False,
        ignored_parameters=list(secret_headers),
    )


def _iso(moment: dt.datetime | None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def pause_seconds(retry: Retry, attempt: int, retry_after: float | None) -> float:
    """The wait after failed attempt `attempt` (1, 2, ...): what Retry-After asks, else exponential backoff
    with full jitter; both at most `max_backoff_seconds` (plus the Retry-After jitter)."""
    cap = retry.max_backoff_seconds
    if retry_after is not None:  # what the provider asked for, plus a little jitter so callers spread out
        return min(cap, retry_after) + random.uniform(0, 0.1)
    return random.uniform(0, min(cap, retry.backoff_seconds * 2 ** (attempt - 1)))


class Fetcher:
    """Lookups for one provider within one job."""

    def __init__(self, provider: Provider, session, limiter: SharedRateLimiter | None, breaker: Breaker, mode: Mode):
        self.provider = provider
        self.session = session
        self.limiter = limiter
        self.breaker = breaker
        self.mode = mode
        self.tally = Tally()
        self.headers = {}  # filled from the environment by the job; never logged or written

    def close(self) -> None:
        self.session.close()
        if self.limiter is not None:
            self.limiter.close()
        self.breaker.close()

    def _send(self, request: dict, **options):
        return self.session.request(
            self.provider.method,
            request["url"],
            json=request.get("json"),
            headers=self.headers,
            timeout=self.provider.timeout_seconds,
            expire_after=self.provider.cache_ttl_seconds,
            **options,
        )

    def _from_cache(self, request: dict) -> Outcome | None:
        response = self._send(request, only_if_cached=True)
        if response.status_code == 504:
            return None  # requests-cache's "not cached" answer; nothing was sent
        created = getattr(response, "created_at", None)
        if self.mode.refresh_before and created and created.timestamp() < self.mode.refresh_before:
            return None
        return self._outcome(response, cache="hit")

    def lookup(self, request: dict) -> Outcome:
        self.tally.lookups += 1
        cached = self._from_cache(request)
        if cached is not None:
            self.tally.cache_hits += 1
            return cached
        if self.mode.only_if_cached:
            return Outcome("unavailable", reason="not in the cache (only_if_cached)")
        if not self.mode.network:
            return Outcome("unavailable", reason="network is off")
        if self.breaker.is_open():
            return Outcome("unavailable", reason="circuit open: provider failed repeatedly this run")
        outcome = self._with_retries(request)
        self.breaker.record(outcome.status != "unavailable")
        return outcome

    def _with_retries(self, request: dict) -> Outcome:
        retry = self.provider.retry
        reason = "no attempt made"
        for attempt in range(1, retry.max_attempts + 1):
            if attempt > 1:
                self.tally.retries += 1
            if self.limiter is not None:
                self.limiter.acquire()
                late = self._from_cache(request) if attempt == 1 else None
                if late is not None:  # another job fetched it while this one waited for its permit
                    self.tally.cache_hits += 1
                    return late
            self.tally.requests += 1
            wait = None
            try:
                response = self._send(request, force_refresh=True)
            except Exception as exc:  # requests' ConnectionError, Timeout, ...: transient, retried
                reason = f"{type(exc).__name__}"
            else:
                if response.status_code in CACHED_STATUSES:
                    return self._outcome(response, cache="miss")
                reason = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    return Outcome("unavailable", reason=reason)
                if response.status_code in (429, 503):
                    self.tally.rate_limited += 1
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt < retry.max_attempts:
                time.sleep(pause_seconds(retry, attempt, wait))
        return Outcome("unavailable", reason=f"{reason} after {retry.max_attempts} attempts")

    def _outcome(self, response, cache: str) -> Outcome:
        fetched = getattr(response, "created_at", None) if cache == "hit" else None
        if response.status_code == 404:
            return Outcome("not_found", fetched_at=_iso(fetched), cache=cache)
        try:
            data = response.json()
        except ValueError:
            return Outcome("unavailable", reason="answer is not JSON", cache=cache)
        return Outcome("found", data=data, fetched_at=_iso(fetched), cache=cache)
