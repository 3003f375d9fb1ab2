"""The progress line, fed the RunEvents the logger plugin produces."""

from __future__ import annotations

import io

from sheetfill.runs import events as ev
from sheetfill.runs.progress import ProgressSink, clock


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def feed(sink, clock_, jobs: int, fail: set[int] = frozenset()):
    sink.handle(ev.RunEvent(ev.RUN_STARTED, total=jobs + 2))
    for i in range(jobs):
        clock_.t += 10
        kind = ev.JOB_ERROR if i in fail else ev.JOB_FINISHED
        sink.handle(ev.RunEvent(kind, rule="bundle", bundle=f"2025-01-{i + 1:02d}--v1"))


def test_line_shows_done_total_failures_elapsed_and_eta():
    now = Clock()
    sink = ProgressSink(io.StringIO(), now=now)
    feed(sink, now, 4, fail={1})
    assert sink.line() == "sheetfill: 4/6 jobs · 3 bundles done · 1 failed · 0:40 elapsed · ETA 0:20"


def test_a_pipe_gets_a_line_per_tenth_and_per_failure_not_per_job():
    now = Clock()
    stream = io.StringIO()
    sink = ProgressSink(stream, now=now)
    feed(sink, now, 200, fail={50, 51})
    sink.handle(ev.RunEvent(ev.RUN_FINISHED, ok=False))
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 14  # ten tenths, two failures, the last line
    assert lines[-1].startswith("sheetfill: 200/202 jobs · 198 bundles done · 2 failed · 33:20 elapsed")


def test_a_terminal_gets_one_line_redrawn_in_place():
    now = Clock()
    stream = Tty()
    sink = ProgressSink(stream, now=now)
    feed(sink, now, 3)
    sink.handle(ev.RunEvent(ev.RUN_FINISHED, ok=True))
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r\x1b[K") == 5  # start, three jobs, the end
    assert "no failures" in text.splitlines()[-1]


def test_clock():
    assert (clock(59), clock(61), clock(3725)) == ("0:59", "1:01", "1:02:05")
