"""A real `sheetfill serve` in a subprocess on a free 127.0.0.1 port, for the browser tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from conftest import REPO

START_TIMEOUT = 60  # seconds for the server to answer /api/v1/health


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One server over its own archive_root and restore_root; stop() ends it and its active runs."""

    def __init__(
        self, base: Path, archives: Path, token: str | None = None, args: tuple[str, ...] = (), own_config=False
    ):
        """own_config: the workflow directory's own config/config.yaml, and no --configfile."""
        self.base, self.archives, self.token = base, archives, token
        self.args = tuple(args)  # more `sheetfill serve` options, e.g. ("--cores", "1")
        self.workdir = base / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.restore = base / "restore"
        config = {"archive_root": str(archives), "restore_root": str(self.restore)}
        self.configfile, self.own_config = base / "service-config.yaml", own_config
        if own_config:
            shutil.copytree(REPO / "config", self.workdir / "config", dirs_exist_ok=True)
            self.configfile = self.workdir / "config" / "config.yaml"
            config = {**yaml.safe_load(self.configfile.read_text()), **config}
        elif not (self.workdir / "config").exists():
            (self.workdir / "config").symlink_to(REPO / "config")
        self.configfile.write_text(json.dumps(config))  # JSON is YAML
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        env.pop("SHEETFILL_TOKEN", None)
        if self.token:
            env["SHEETFILL_TOKEN"] = self.token
        self.starts += 1
        log = open(self.base / f"server-{self.starts}.log", "wb")  # noqa: SIM115 - kept for the process's life
        command = [sys.executable, "-m", "sheetfill.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, *([] if self.own_config else ["--configfile", str(self.configfile)]), *self.args],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sheetfill serve exited {self.process.returncode}: {self.server_log()}")
            try:
                if self.api("GET", "/api/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"sheetfill serve did not answer in {START_TIMEOUT} s: {self.server_log()}")

    def server_log(self) -> str:
        return (self.base / f"server-{self.starts}.log").read_text(errors="replace")[-4000:]

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url(path), data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            return error.code, None

    def restart(self) -> None:
        """Kill the server hard (only the server process) and start it again on the same port."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            for run in self._active_runs():
                self.api("POST", f"/api/v1/runs/{run}/cancel", {"mode": "now"})
        finally:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def _active_runs(self) -> list[str]:
        try:
            status, data = self.api("GET", "/api/v1/runs?limit=20")
        except OSError:
            return []
        runs = data.get("runs", []) if isinstance(data, dict) else data or []
        return [r.get("run_id") or r.get("id") for r in runs if r.get("status") in ("queued", "running", "cancelling")]

    def seed_ledger(self, rows: list[tuple[str, str, str | None]], run_id: str) -> None:
        """One finished run holding the given (bundle, status, error) slots, written into the real ledger."""
        from sheetfill.runs.ledger import Ledger

        ledger = Ledger.for_root(self.restore)
        now = time.time()
        try:
            with ledger.transaction():
                failed = any(status.startswith("failed") for _, status, _ in rows)
                ledger.create_run(
                    run_id,
                    status="completed_with_failures" if failed else "succeeded",
                    kind="backfill",
                    origin="cli",
                    since=min(b for b, _, _ in rows)[:10],
                    until=max(b for b, _, _ in rows)[:10],
                    started=now - 60,
                    finished=now,
                )
                for bundle, status, error in rows:
                    ledger.update_slot(run_id, bundle, status=status, error=error, duration_s=1.0, reason="seeded")
        finally:
            ledger.close()
