"""A real enrichment provider for the tests and the bench: an HTTP JSON server on 127.0.0.1.

    PROVIDER_API_KEY=K python tests/enrich_provider.py --burst 3 --per-second 8 [--fail-first N]

Prints its port on the first line of stdout. It enforces its own token bucket (burst, per_second,
plus `--tolerance` requests for the time between a client's permit and its request's arrival) and
answers 429 with `Retry-After: 1` beyond it, like a provider with an SLA. `--fail-first N` answers
the first N requests `--fail-status` (default 429) whatever the rate, with `--retry-after` (default
`1`; `date+S` sends an HTTP date S seconds ahead, `none` sends no header). GET /orgs/<id> answers JSON
(404 for ids whose hash ends in 0); GET /_stats lists every request's arrival time and status.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Bucket:
    def __init__(self, capacity: float, per_second: float):
        self.capacity, self.per_second = capacity, per_second
        self.tokens, self.stamp = capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def retry_after_header(value: str) -> list[tuple[str, str]]:
    """`1` -> seconds as given; `date+S` -> an HTTP date S seconds from now; `none` -> no header."""
    if value == "none":
        return []
    if value.startswith("date+"):
        return [("Retry-After", email.utils.formatdate(time.time() + float(value[5:]), usegmt=True))]
    return [("Retry-After", value)]


def make_handler(options, bucket: Bucket, log: list, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the test reads /_stats
            pass

        def _answer(self, status: int, payload, headers=()):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_stats":
                with lock:
                    return self._answer(200, {"requests": list(log)})
            arrived = time.time()
            status, payload, headers = self._decide()
            with lock:
                log.append({"t": arrived, "path": self.path, "status": status})
            self._answer(status, payload, headers)

        do_POST = do_GET

        def _decide(self):
            with lock:
                failing = len(log) < options.fail_first
            if failing:
                return options.fail_status, {"error": "try again later"}, retry_after_header(options.retry_after)
            if not bucket.take():
                return 429, {"error": "rate limit exceeded"}, [("Retry-After", "1")]
            if options.api_key and self.headers.get("X-Api-Key") != options.api_key:
                return 401, {"error": "bad key"}, []
            key = self.path.rstrip("/").rsplit("/", 1)[-1]
            digest = hashlib.sha256(key.encode()).hexdigest()
            if digest.endswith("0"):
                return 404, {"error": "unknown organisation"}, []
            answer = {"id": key, "status": "active", "registry": {"number": f"REG-{digest[:8]}"}}
            return 200, {**answer, "website": f"https://registry.example/{key}"}, []

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--burst", type=int, default=3)
    parser.add_argument("--per-second", type=float, default=8)
    parser.add_argument("--tolerance", type=float, default=1, help="extra requests the bucket holds")
    parser.add_argument("--api-key", default=os.environ.get("PROVIDER_API_KEY", ""), help="default: $PROVIDER_API_KEY")
    parser.add_argument("--fail-first", type=int, default=0, help="answer the first N requests --fail-status")
    parser.add_argument("--fail-status", type=int, default=429)
    parser.add_argument("--retry-after", default="1", help="seconds, date+SECONDS or none")
    options = parser.parse_args()
    bucket = Bucket(options.burst + options.tolerance, options.per_second)
    log, lock = [], threading.Lock()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), make_handler(options, bucket, log, lock))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
