"""The FastAPI app of `sheetfill serve`: create_app(settings) -> app, API under /api/v1, docs at /docs.

Extending it: routers come in through `include_router` in create_app (the UI's pages, /metrics);
everything they need is on `app.state.service` (settings, ledger, runner).
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from sheetfill.runs.ledger import Ledger
from sheetfill.service.runner import Runner
from sheetfill.service.settings import ServiceSettings

API_PREFIX = "/api/v1"
OPEN_PATHS = (f"{API_PREFIX}/health",)  # answered without a token: load balancers and the UI's probe


@dataclass
class ServiceState:
    settings: ServiceSettings
    ledger: Ledger
    runner: Runner | None


def create_app(settings: ServiceSettings, *, run_jobs: bool = True) -> FastAPI:
    """The service over settings.restore_root's ledger; run_jobs=False serves the API without a runner."""
    from sheetfill.service.routes import router
    from sheetfill.telemetry.prometheus import router as metrics_router

    ledger = Ledger.for_root(settings.restore_root)
    runner = Runner(settings, ledger) if run_jobs else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            ledger.close()

    app = FastAPI(
        title="sheetfill run service",
        version="1",
        description="Backfills and scheduled runs of the sheetfill workflow, recorded in the run ledger.",
        lifespan=lifespan,
    )
    app.state.service = ServiceState(settings, ledger, runner)
    app.add_middleware(Guard, settings=settings)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(metrics_router)  # GET /metrics for Prometheus (sheetfill.telemetry.prometheus)
    _install_ui(app, settings)
    return app


def _install_ui(app: FastAPI, settings: ServiceSettings) -> None:
    try:
        from sheetfill.service import ui
    except ImportError:  # the API works without the pages
        return
    ui.install(app, settings.sheetfill, token=settings.token)


class Guard:
    """ASGI middleware: the token on every API call (when the server has one) and a bound on bodies.

    The body is counted as it arrives, so an oversized one is refused without being read whole.
    """

    def __init__(self, app, settings: ServiceSettings):
        self.app = app
        self.expected = (settings.token or "").encode()
        self.limit = settings.max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.expected and path.startswith(API_PREFIX) and path not in OPEN_PATHS and not self._token_ok(scope):
            detail = "missing or wrong token: send Authorization: Bearer <token>"
            response = JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._too_big(scope, receive, send)
        seen = 0

        async def bounded_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooBig
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except BodyTooBig:
            await self._too_big(scope, receive, send)

    def _token_ok(self, scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.expected)

    async def _too_big(self, scope, receive, send):
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


class BodyTooBig(Exception):
    pass
