"""Circuit breaker per provider per run, shared by the run's jobs.

After `failures` consecutive failed lookups (each after its retries) the provider is not called again
for the rest of the run: its remaining lookups are flagged at once instead of each waiting out its
retries. The count lives in SQLite next to the response cache (or in Redis when the rate limit does),
keyed by the run id, so a new run tries the provider again.
"""

from __future__ import annotations

from sheetfill import wal
from sheetfill.enrich.ratelimit import is_redis


class Breaker:
    def __init__(self, store: str, run_id: str, provider: str, failures: int):
        self.key = f"{run_id}:{provider}"
        self.threshold = failures
        self._open_seen = False
        self._redis = None
        if is_redis(store):
            import redis

            self._redis = redis.Redis.from_url(store)
        else:
            with wal.opening(store):
                self._db = wal.connect(store, timeout=60)
                self._db.execute("CREATE TABLE IF NOT EXISTS breaker (key TEXT PRIMARY KEY, failures INTEGER)")

    def _failures(self) -> int:
        if self._redis is not None:
            return int(self._redis.get(f"sheetfill:breaker:{self.key}") or 0)
        row = self._db.execute("SELECT failures FROM breaker WHERE key = ?", (self.key,)).fetchone()
        return row[0] if row else 0

    def is_open(self) -> bool:
        self._open_seen = self._open_seen or self._failures() >= self.threshold
        return self._open_seen

    @property
    def opened(self) -> bool:
        return self._open_seen

    def record(self, success: bool) -> None:
        if self._redis is not None:
            name = f"sheetfill:breaker:{self.key}"
            if success:
                if self._failures() < self.threshold:  # an open breaker stays open for the run
                    self._redis.set(name, 0, ex=7 * 24 * 3600)
            else:
                self._redis.incr(name)
                self._redis.expire(name, 7 * 24 * 3600)
            return
        if success:
            self._db.execute(
                "INSERT INTO breaker VALUES (?, 0) ON CONFLICT(key) DO UPDATE SET failures = 0 "
                "WHERE failures < ?",  # an open breaker stays open for the run
                (self.key, self.threshold),
            )
        else:
            self._db.execute(
                "INSERT INTO breaker VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET failures = failures + 1",
                (self.key,),
            )

    def close(self) -> None:
        (self._db if self._redis is None else self._redis).close()
