"""One rate limit per provider endpoint, shared by every job and process that calls it.

A provider's `rate_limit: {burst: B, per_second: R}` becomes pyrate-limiter's sliding-window log of
B requests per B/R seconds: B at once from rest, then R per second on average, and never more than
B + R x t in any t seconds. The log lives where every caller sees it:

* on one machine, a SQLite file guarded by a file lock (pyrate-limiter's SQLiteBucket with
  use_file_lock), by default in the machine's temp folder so that every run on the machine shares it;
* across nodes, Redis (`rate_limit_store: redis://host:port/db`, pyrate-limiter's RedisBucket), with
  Redis's own clock so that nodes whose clocks disagree still agree on the window.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from sheetfill.enrich.spec import RateLimit

LEAK_EVERY = 64  # trim expired log entries every this many permits (the log only needs one window)
MAX_SLEEP_SECONDS = 1.0  # re-check at least this often, so a freed slot is taken promptly


def is_redis(store: str | None) -> bool:
    return str(store).startswith(("redis://", "rediss://", "unix://"))


def default_store() -> str:
    """Machine-wide: one file per user in the temp folder, whatever the run's restore_root."""
    return str(Path(tempfile.gettempdir()) / f"sheetfill-{os.getuid()}" / "rate-limits.sqlite")


class SharedRateLimiter:
    """Blocks until the endpoint's shared bucket admits one more request."""

    def __init__(self, key: str, limit: RateLimit, store: str | None = None):
        from pyrate_limiter import Rate

        self.key = key
        self.limit = limit
        self.rates = [Rate(limit.burst, limit.window_ms)]
        self.store = store or default_store()
        self.permits = 0
        self.waited_seconds = 0.0
        self._bucket, self._clock = self._open()

    def _open(self):
        if is_redis(self.store):
            return self._open_redis()
        return self._open_sqlite()

    def _open_sqlite(self):
        from pyrate_limiter import SQLiteBucket

        path = Path(self.store.removeprefix("sqlite://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        table = "rl_" + hashlib.sha256(self.key.encode()).hexdigest()[:20]  # a safe SQL name per endpoint
        bucket = SQLiteBucket.init_from_file(self.rates, table=table, db_path=str(path), use_file_lock=True)
        return bucket, lambda: time.time_ns() // 1_000_000

    def _open_redis(self):
        import redis
        from pyrate_limiter import RedisBucket

        client = redis.Redis.from_url(self.store)

        def redis_clock() -> int:
            seconds, micros = client.time()
            return int(seconds) * 1000 + int(micros) // 1000

        self._client = client
        return RedisBucket.init(self.rates, client, f"sheetfill:rate:{self.key}"), redis_clock

    def acquire(self) -> None:
        """Wait for a permit; the permit is stamped with the time it was granted."""
        from pyrate_limiter import RateItem

        started = time.monotonic()
        while True:
            item = RateItem(self.key, self._clock())
            if self._bucket.put(item):
                break
            wait_ms = self._bucket.waiting(item)
            time.sleep(min(max(wait_ms, 1) / 1000, MAX_SLEEP_SECONDS))
        self.waited_seconds += time.monotonic() - started
        self.permits += 1
        if self.permits % LEAK_EVERY == 0:
            self._bucket.leak(self._clock())

    def close(self) -> None:
        close = getattr(self._bucket, "close", None)
        if close:
            close()
        if getattr(self, "_client", None) is not None:
            self._client.close()
