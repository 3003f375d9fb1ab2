"""The web UI: server-rendered pages over the run service's own REST API (/api/v1).

Pages are Jinja templates (autoescaped) plus a little plain JavaScript in static/. The pages carry
the page frame and a few cheap server-side facts (versions found in archive_root, the bundles grid
payload); everything a run does comes from the API, so the UI and API never disagree. Logs and
data docs are served read-only from inside restore_root only.

When the server has a token (it must, off loopback), the login form keeps it for the browser session,
as a session cookie (for pages, logs and data docs) and in sessionStorage (for the API's Bearer header).
"""

from __future__ import annotations

import hmac
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sheetfill.service.ui_data import bundle_runs, grid_payload

HERE = Path(__file__).resolve().parent
COOKIE = "sheetfill_token"
MAX_FORM = 8192  # bytes of a login form read at most
# No inline script or style anywhere: a value that slips into the markup still cannot run.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Data docs and logs are documents built from spreadsheet values: they never run script.
FILE_POLICY = "default-src 'none'; img-src 'self'; style-src 'self'; sandbox"
FILE_AREAS = ("logs", "data-docs", "outputs")  # folders of restore_root the data docs and logs live in

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=HERE / "static")


class LoginRequired(Exception):
    """Raised by a page handler when the browser has no valid token; answered with a redirect."""


@dataclass(frozen=True)
class UIContext:
    """What the pages need from the service: where things are, and the token (None on loopback)."""

    restore_root: Path
    archive_root: Path
    archive_pattern: str
    token: str | None = None


def _service(request: Request) -> UIContext:
    return request.app.state.sheetfill_ui


def _token_ok(request: Request) -> bool:
    expected = _service(request).token
    if not expected:
        return True
    given = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given.encode(), expected.encode())


def _guard(request: Request) -> None:
    if not _token_ok(request):
        raise LoginRequired


def _page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    service = _service(request)
    html = templates.get_template(name).render(
        request=request,
        nav=request.url.path,
        needs_token=bool(service.token),
        signed_in=bool(service.token) and _token_ok(request),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=_headers(PAGE_POLICY))


def _headers(policy: str) -> dict:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def login_redirect(request: Request, exc: LoginRequired) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def install(app, settings, token: str | None = None) -> None:
    """Mount the UI on the service app: pages, static files and the login redirect.

    settings: the service's ServiceSettings (its .sheetfill settings and .token are used), or any
    object with restore_root, archive_root and archive_pattern. Paths are fixed by the server's config.
    """
    paths = getattr(settings, "sheetfill", settings)
    app.state.sheetfill_ui = UIContext(
        restore_root=Path(paths.restore_root),
        archive_root=Path(paths.archive_root),
        archive_pattern=paths.archive_pattern,
        token=token or getattr(settings, "token", None) or None,
    )
    app.include_router(router)
    app.mount("/static", static_files, name="static")
    app.add_exception_handler(LoginRequired, login_redirect)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/"):
    return _page(request, "login.html.j2", title="Log in", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    # a urlencoded form read by hand: no multipart parser needed for two fields
    form = parse_qs((await request.body())[:MAX_FORM].decode("utf-8", "replace"))
    token, next = form.get("token", [""])[0], form.get("next", ["/"])[0]
    expected = _service(request).token or ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return _page(
            request,
            "login.html.j2",
            status_code=401,
            title="Log in",
            next=_safe_next(next),
            error="That token is not valid.",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    # No max-age: a session cookie, gone when the browser closes.
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout():
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _safe_next(target: str) -> str:
    """Only same-site paths: a crafted ?next= never sends the user elsewhere."""
    plain = target.isprintable() and not any(c.isspace() or c == "\\" for c in target)
    return target if plain and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request):
    _guard(request)
    return _page(request, "runs.html.j2", title="Runs")


@router.get("/execute", response_class=HTMLResponse)
def execute_page(request: Request):
    _guard(request)
    return _page(request, "execute.html.j2", title="Execute", versions=_versions(request))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str):
    _guard(request)
    return _page(request, "run.html.j2", title=f"Run {run_id}", run_id=run_id)


@router.get("/bundles", response_class=HTMLResponse)
def bundles_page(request: Request):
    _guard(request)
    grid = grid_payload(_service(request).restore_root)
    # JSON in a data block (never run as script); tojson escapes <, > and & inside it
    return _page(request, "bundles.html.j2", title="Bundles", grid=grid)


@router.get("/ui/bundles/{bundle}/runs")
def bundle_history(request: Request, bundle: str):
    _guard(request)
    runs = bundle_runs(_service(request).restore_root, bundle)
    return JSONResponse({"bundle": bundle, "runs": runs}, headers=_headers(PAGE_POLICY))


@router.get("/cursor", response_class=HTMLResponse)
def cursor_page(request: Request):
    _guard(request)
    return _page(request, "cursor.html.j2", title="Cursor")


@router.get("/files/{area}/{path:path}")
def read_file(request: Request, area: str, path: str):
    """A log or data-docs file, resolved inside restore_root/<area>; anything else is 404."""
    _guard(request)
    if area not in FILE_AREAS:
        raise HTTPException(404, "no such file area")
    base = (_service(request).restore_root / area).resolve()
    try:
        target = (base / path).resolve()
        found = target.is_relative_to(base) and target.is_file()
    except (OSError, ValueError):  # e.g. a NUL byte in the path
        found = False
    if not found:
        raise HTTPException(404, f"no such file in {area}: {path}")
    kind = "text/plain; charset=utf-8" if target.suffix == ".log" else mimetypes.guess_type(target.name)[0]
    return FileResponse(target, media_type=kind or "application/octet-stream", headers=_headers(FILE_POLICY))


def _versions(request: Request) -> list[str]:
    from sheetfill.runs.discovery import scan

    service = _service(request)
    try:
        return sorted({a.version for a in scan(Path(service.archive_root), service.archive_pattern)})
    except Exception:  # noqa: BLE001 - a bad pattern is reported by the plan preview, with its message
        return []
