"""One progress line for a run: jobs done / total, bundles done, failures, elapsed, ETA.

A sink of the logger plugin (snakemake_logger_plugin_sheetfill, sink name "progress"): it sees only
RunEvents, and reads a finished bundle's status from its bundle.json (a bundle that failed to process
or failed validation is a successful job). On a terminal the line is redrawn in place; in a log file
or pipe it is printed at most every tenth of the run and on each failure, so a 10,000-bundle run
writes tens of lines, not thousands.

DocsPathSink (sink name "docs") gives a run its last word: the path of the data docs it built.
"""

from __future__ import annotations

import time
from pathlib import Path

from sheetfill.runs import events as ev
from sheetfill.runs.recorder import bundle_summary


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressSink:
    def __init__(self, stream, now=time.monotonic, restore_root: str | None = None):
        self.stream = stream
        self.restore_root = restore_root
        self.now = now
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = None
        self.total = None
        self.done = 0
        self.bundles: set[str] = set()
        self.failed: set[str] = set()
        self.failed_jobs = 0
        self.printed_tenth = -1
        self.open_line = False
        self.last = None

    def handle(self, event: ev.RunEvent) -> None:
        if event.kind == ev.RUN_STARTED:
            self.started = self.now()
            self.total = event.total
        elif event.kind == ev.JOB_FINISHED:
            self.done += 1
            if event.bundle and self._failed_status(event):
                self.failed.add(event.bundle)
                self._show(force=True)
                return
            if event.bundle:
                self.bundles.add(event.bundle)
        elif event.kind == ev.JOB_ERROR:
            self.done += 1
            self.failed_jobs += 1
            if event.bundle:
                self.failed.add(event.bundle)
            self._show(force=True)
            return
        elif event.kind == ev.PROGRESS and event.total:
            self.done, self.total = event.done or self.done, event.total
        elif event.kind == ev.RUN_FINISHED:
            self._show(force=True)
            self._end_line()
            return
        else:
            return
        self._show()

    def _failed_status(self, event: ev.RunEvent) -> bool:
        """The bundle job ran to its end but recorded failed_processing or failed_validation."""
        if event.rule != "bundle" or self.restore_root is None:
            return False
        summary = bundle_summary(self.restore_root, event.bundle) or {}
        return summary.get("status", "ok") != "ok"

    def line(self) -> str:
        elapsed = self.now() - (self.started if self.started is not None else self.now())
        total = self.total or 0
        parts = [f"{self.done}/{total} jobs" if total else f"{self.done} jobs"]
        parts.append(f"{len(self.bundles)} bundles done")
        failures = len(self.failed) or self.failed_jobs
        parts.append(f"{failures} failed" if failures else "no failures")
        parts.append(f"{clock(elapsed)} elapsed")
        if total and 0 < self.done < total:
            parts.append(f"ETA {clock(elapsed / self.done * (total - self.done))}")
        return "sheetfill: " + " · ".join(parts)

    def _show(self, force: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
            self.open_line = True
        else:
            tenth = int(10 * self.done / self.total) if self.total else self.done
            if not force and tenth == self.printed_tenth:
                return
            self.printed_tenth = tenth
            line = self.line()
            if line == self.last:
                return  # the run's end right after its last job: nothing new to say
            self.last = line
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False

    def close(self) -> None:
        self._end_line()


class DocsPathSink:
    """Prints `data docs: <index.html>` when the run closes, after everything Snakemake prints, if the
    run (re)built the data docs: a plain `snakemake` run then ends with their path, failed or not."""

    def __init__(self, stream, restore_root: str, now=time.time):
        self.stream = stream
        self.index = Path(restore_root) / "data-docs" / "index.html"
        self.started = now()

    def handle(self, event: ev.RunEvent) -> None:
        pass

    def close(self) -> None:
        try:
            built = self.index.stat().st_mtime >= self.started
        except OSError:
            return  # no data docs: a run that failed or stopped before them
        if built:
            self.stream.write(f"data docs: {self.index}\n")
            self.stream.flush()
