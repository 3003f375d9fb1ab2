"""Runs queued runs as `snakemake` subprocesses, one at a time per restore_root, and watches them.

Each run's Snakemake gets its own process group (so a cancel reaches its jobs), the run id through
SHEETFILL_RUN_ID (its logger plugin records the run under it) and a config file holding the server's
config plus the request's window: no request value is ever parsed by a shell. Snakemake is tied to
the server's life (PR_SET_PDEATHSIG): if the server dies, so does the run, and its stopped heartbeat
marks it failed when the server is back. Queued runs wait in the ledger and survive restarts.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sheetfill.runs.events import RUN_ID_VARIABLE
from sheetfill.runs.ledger import FINAL, Ledger
from sheetfill.runs.lock import holder
from sheetfill.runs.recorder import mark_stale_runs

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    run_id: str
    process: subprocess.Popen
    log: Path


def run_files(settings, run_id: str) -> tuple[Path, Path]:
    """(config file, log) of one run, inside restore_root."""
    root = settings.restore_root
    return root / ".sheetfill" / "service" / f"{run_id}.json", root / "logs" / "runs" / f"{run_id}.log"


def forcerun(settings, run: dict) -> list[str]:
    """What the run forces: every bundle (reprocess all), or the bundles it was asked to redo."""
    if run.get("force") or run.get("reprocess") == "all":
        return ["bundle"]
    forced = (run.get("request") or {}).get("forced") or []
    return [str(settings.restore_root / "outputs" / bundle) for bundle in forced]


def snakemake_command(settings, run: dict, configfile: Path, *extra: str, record: bool = True) -> list[str]:
    """record=False: a Snakemake that records nothing (no logger plugin, no default profile)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(settings.snakefile), "--directory", str(settings.workdir)]
    logging = ["--logger", "sheetfill"] if record else ["--workflow-profile", "none"]
    command += ["--cores", str(settings.cores), "--configfile", str(configfile), *logging, *extra]
    targets = forcerun(settings, run)
    return command + (["--forcerun", *targets] if targets else [])


def plan_command(settings, run: dict, configfile: Path) -> list[str]:
    """A dry-run request: the planner records what would run under the run's id."""
    return [sys.executable, "-m", "sheetfill.service.planning", "--record", run["id"], str(configfile)]


def run_environment(settings, run: dict) -> dict:
    env = dict(os.environ)
    path = [str(settings.snakefile.parent), env.get("PYTHONPATH", "")]
    env.update(
        {
            RUN_ID_VARIABLE: run["id"],
            "SHEETFILL_ORIGIN": run.get("origin") or "service",
            "SHEETFILL_HEARTBEAT_S": str(settings.heartbeat_s),
            "PYTHONPATH": os.pathsep.join(filter(None, path)),
        }
    )
    return env


def write_run_config(settings, run: dict) -> Path:
    """Snakemake's --configfile for the run; for a dry run, the planner's input (config and forced targets)."""
    configfile, _ = run_files(settings, run["id"])
    configfile.parent.mkdir(parents=True, exist_ok=True)
    bundles = (run.get("request") or {}).get("bundles")
    config = settings.run_config(run.get("since"), run.get("until"), run.get("versions"), bundles)
    if run.get("dry_run"):
        config = {"config": config, "workdir": str(settings.workdir), "snakefile": str(settings.snakefile)}
        config["forcerun"] = forcerun(settings, run)
    configfile.write_text(json.dumps(config, indent=2))
    return configfile


def spawn(settings, run: dict, die_with_parent: bool = True) -> Child:
    configfile = write_run_config(settings, run)
    _, log = run_files(settings, run["id"])
    log.parent.mkdir(parents=True, exist_ok=True)
    build = plan_command if run.get("dry_run") else snakemake_command
    with open(log, "ab") as out:
        process = subprocess.Popen(
            build(settings, run, configfile),
            cwd=settings.workdir,
            env=run_environment(settings, run),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return Child(run["id"], process, log)


def unlock_if_stale(settings, ledger: Ledger, run: dict) -> None:
    """A Snakemake killed hard leaves its lock; with no other run alive in the ledger, it is stale."""
    locks = settings.workdir / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return
    if any(r["id"] != run["id"] and r["status"] != "queued" for r in ledger.active_runs()):
        return
    configfile = write_run_config(settings, {**run, "dry_run": False})
    command = snakemake_command(settings, {}, configfile, "--unlock", record=False)
    env = {key: value for key, value in run_environment(settings, run).items() if key != RUN_ID_VARIABLE}
    subprocess.run(command, cwd=settings.workdir, env=env, capture_output=True, timeout=300)


def finish(ledger: Ledger, run_id: str, returncode: int, log: Path | None) -> dict:
    """Settle a run whose process ended: the plugin's verdict stands; otherwise the exit tells."""
    run = ledger.run(run_id) or {}
    with ledger.transaction():
        ledger.update_run(run_id, exit_code=returncode)
        if run.get("status") not in FINAL:
            cancelled = bool(run.get("cancel_mode"))
            status = "cancelled" if cancelled else ("succeeded" if returncode == 0 else "failed")
            error = None if status == "succeeded" else _failure(returncode, log, cancelled)
            ledger.set_status(run_id, status, error=error)
            ledger.set_slots_where(run_id, "running", "not_run", "stopped")
            ledger.set_slots_where(run_id, "pending", "not_run", "the run ended first")
            ledger.add_event(run_id, "run_finished", {"status": status, "exit_code": returncode, "message": error})
    return ledger.run(run_id)


def _failure(returncode: int, log: Path | None, cancelled: bool) -> str:
    if cancelled:
        return "cancelled"
    tail = ""
    if log is not None and log.exists():
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail = " | ".join(lines[-3:])
    return f"snakemake exited with code {returncode}" + (f": {tail}" if tail else "")


class Runner:
    """The service's one background thread: starts queued runs, watches them, recovers dead ones."""

    def __init__(self, settings, ledger: Ledger):
        self.settings, self.ledger = settings, ledger
        self.child: Child | None = None
        self._lock = threading.RLock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sheetfill-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Server shutdown: stop the active run (its jobs too) and settle it; queued runs stay queued."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout)
        with self._lock:
            child, self.child = self.child, None
        if child is None:
            return
        stopped = child.process.poll() is None and not (self.ledger.run(child.run_id) or {}).get("cancel_mode")
        if child.process.poll() is None:
            _signal_group(child.process.pid, signal.SIGINT)
            try:
                child.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=10)
        finish(self.ledger, child.run_id, child.process.returncode, child.log)
        if stopped:  # not the user's cancel: the run failed, and says why
            self.ledger.update_run(child.run_id, status="failed", error="stopped: the service shut down during the run")

    def signal_run(self, run: dict, mode: str) -> bool:
        """Cancel a run this runner started: SIGTERM to Snakemake (drain) or SIGINT to its group (now)."""
        with self._lock:
            child = self.child if self.child and self.child.run_id == run["id"] else None
        if child is None or child.process.poll() is not None:
            return False
        if mode == "now":
            _signal_group(child.process.pid, signal.SIGINT)
        else:
            child.process.send_signal(signal.SIGTERM)
        self.wake()
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # the loop must outlive a bad moment (disk full, locked ledger)
                print(f"sheetfill serve: runner: {error!r}", file=sys.stderr)
            self._wake.wait(self.settings.poll_s)
            self._wake.clear()

    def tick(self) -> None:
        with self._lock:
            if self.child is not None and self.child.process.poll() is not None:
                child, self.child = self.child, None
                finish(self.ledger, child.run_id, child.process.returncode, child.log)
            watched = {self.child.run_id} if self.child else set()
            for run in mark_stale_runs(self.ledger, self.settings.heartbeat_timeout_s, watched=watched):
                if run.get("origin") in ("service", "api") and run.get("pid"):
                    _signal_group(run["pid"], signal.SIGKILL)  # jobs left behind by a Snakemake killed hard
            if self.child is None and not self._stop.is_set():
                self._start_next()

    def _start_next(self) -> None:
        active = self.ledger.active_runs()
        if not active or any(run["status"] != "queued" for run in active):
            return  # nothing queued, or a run (ours or a plain snakemake's) is still going
        if holder(self.settings.restore_root) is not None:
            return  # the restore_root lock (sheetfill.runs.lock) is held by a run the ledger has not seen yet
        run = active[0]
        if not run.get("dry_run"):
            unlock_if_stale(self.settings, self.ledger, run)
        now = time.time()
        if not self.ledger.set_status(run["id"], "running", only_from=("queued",), started=now, heartbeat=now):
            return  # cancelled meanwhile
        try:
            self.child = spawn(self.settings, run)
        except OSError as error:
            self.ledger.set_status(run["id"], "failed", error=f"could not start snakemake: {error}")
            return
        self.ledger.update_run(run["id"], pid=self.child.process.pid)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
