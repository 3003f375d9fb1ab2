"""A real OTLP/HTTP receiver for tests and benches: http.server on a free 127.0.0.1 port that decodes
the protobuf requests with opentelemetry-proto and keeps them."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ROUTES = {
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
}


class Receiver:
    def __init__(self) -> None:
        self.requests: dict[str, list] = {path: [] for path in ROUTES}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                route = ROUTES.get(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if route is None or self.headers.get("Content-Encoding"):
                    self.send_response(404 if route is None else 415)
                    self.end_headers()
                    return
                receiver.requests[self.path].append(route[0].FromString(body))
                reply = route[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # ------------------------------------------------------------ decoded views

    def metrics(self) -> dict[str, list]:
        """{metric name: [its data points, over every request]}."""
        found: dict[str, list] = {}
        for request in self.requests["/v1/metrics"]:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        data = getattr(metric, metric.WhichOneof("data"))
                        found.setdefault(metric.name, []).extend(data.data_points)
        return found

    def spans(self) -> list:
        return [
            span
            for request in self.requests["/v1/traces"]
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def resources(self) -> list[dict]:
        requests = self.requests["/v1/metrics"] + self.requests["/v1/traces"]
        return [
            {a.key: a.value.string_value for a in r.resource.attributes}
            for request in requests
            for r in getattr(request, "resource_metrics", None) or request.resource_spans
        ]


def attributes(item) -> dict:
    """An OTLP attribute list as a dict of plain values."""
    out = {}
    for a in item.attributes:
        kind = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, kind) if kind else None
    return out
