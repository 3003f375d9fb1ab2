"""sheetfill's Snakemake logger plugin (`--logger sheetfill`, enabled by the default execution profile).

It turns Snakemake's log records into sheetfill RunEvents (convert.py) and hands them to sinks: by
default the run ledger, telemetry and the run's closing `data docs:` line; others by name through
`--logger-sheetfill-sinks` or SHEETFILL_SINKS. A sink module is imported only when its sink is used.
It does nothing in dry runs and in job processes.
"""

import importlib
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

DEFAULT_SINKS = "ledger,telemetry,docs"
DEFAULT_HEARTBEAT_S = 5.0


def _load(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


# name -> factory(context) -> Sink; context: run_id, restore_root, bundles, window, kind (see runs/recorder.py)
SINK_FACTORIES = {
    "ledger": lambda context: _load("sheetfill.runs.recorder:LedgerSink")(context),
    # reports the runs the gate could not (docs/observability.md); exports only when OTEL_* ask for it
    "telemetry": lambda context: _load("sheetfill.telemetry.sink:TelemetrySink")(context),
    # the CLI's and API's one progress line, on stderr (sheetfill/runs/progress.py)
    "progress": lambda context: _load("sheetfill.runs.progress:ProgressSink")(
        sys.stderr, restore_root=context["restore_root"]
    ),
    # the run's last line on stderr: the path of the data docs it built
    "docs": lambda context: _load("sheetfill.runs.progress:DocsPathSink")(sys.stderr, context["restore_root"]),
}


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    sinks: Optional[str] = field(  # noqa: UP045 - the plugin registry reads typing.Optional only
        default=None,
        metadata={
            "help": f"comma-separated sinks: {', '.join(SINK_FACTORIES)} (default: SHEETFILL_SINKS or {DEFAULT_SINKS})"
        },
    )
    heartbeat: Optional[float] = field(  # noqa: UP045
        default=None,
        metadata={"help": f"seconds between heartbeats (default: SHEETFILL_HEARTBEAT_S or {DEFAULT_HEARTBEAT_S})"},
    )


def sink_names(settings) -> list[str]:
    text = getattr(settings, "sinks", None) or os.environ.get("SHEETFILL_SINKS") or DEFAULT_SINKS
    return [name.strip() for name in text.split(",") if name.strip()]


def heartbeat_interval(settings) -> float:
    value = getattr(settings, "heartbeat", None) or os.environ.get("SHEETFILL_HEARTBEAT_S") or DEFAULT_HEARTBEAT_S
    return max(0.1, float(value))


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        self.active = not getattr(self.common_settings, "dryrun", False)
        self.converter = None
        self.sinks: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None

    @property
    def writes_to_stream(self) -> bool:
        return False

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True  # every record, whatever the console's quietness

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record) -> None:
        if not self.active:
            return
        try:
            self._dispatch(self._converter().convert(record))
        except Exception as error:  # logging must never break the run
            self._warn("could not read a log record", error)

    def _converter(self):
        if self.converter is None:
            from sheetfill.runs.events import current_run_id
            from snakemake_logger_plugin_sheetfill.convert import Converter

            self.converter = Converter(current_run_id())
        return self.converter

    def _dispatch(self, events) -> None:
        for event in events:
            if event.kind == "run_started":
                self._open_sinks()
            with self._lock:
                for sink in list(self.sinks):
                    try:
                        sink.handle(event)
                    except Exception as error:
                        self._warn(f"sink {type(sink).__name__} failed and is dropped", error)
                        self.sinks.remove(sink)

    def _open_sinks(self) -> None:
        from sheetfill.runs.recorder import announced

        context = announced(self.converter.run_id)
        if context is None:
            return  # not a sheetfill Snakefile, or one that announced nothing: nothing to record
        for name in sink_names(self.settings):
            factory = SINK_FACTORIES.get(name)
            if factory is None:
                self._warn(f"unknown sink {name!r} (known: {', '.join(SINK_FACTORIES)})", None)
                continue
            try:
                self.sinks.append(factory(context))
            except Exception as error:
                self._warn(f"sink {name!r} could not start", error)
        self._beat = threading.Thread(target=self._heartbeats, name="sheetfill-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeats(self) -> None:
        from sheetfill.runs.events import HEARTBEAT, RunEvent

        interval = heartbeat_interval(self.settings)
        while not self._stop.wait(interval):
            self._dispatch([RunEvent(kind=HEARTBEAT, run_id=self.converter.run_id)])

    def close(self) -> None:
        try:
            self._stop.set()
            if self._beat is not None:
                self._beat.join(timeout=5)
            if self.converter is not None:
                finished = self.converter.finished()
                if finished is not None:
                    self._dispatch([finished])
            with self._lock:
                for sink in self.sinks:
                    try:
                        sink.close()
                    except Exception as error:
                        self._warn(f"sink {type(sink).__name__} did not close", error)
                self.sinks = []
        finally:
            super().close()

    @staticmethod
    def _warn(what: str, error) -> None:
        print(f"sheetfill logger plugin: {what}{f': {error}' if error else ''}", file=sys.stderr)
