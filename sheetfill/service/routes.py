"""The /api/v1 endpoints (see docs/service.md for curl examples)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from sheetfill.errors import SheetfillError
from sheetfill.runs.cursor import read_cursor, reset_cursor
from sheetfill.runs.ledger import FAILED_BUNDLE, FINAL, RUN_STATUSES
from sheetfill.service import control
from sheetfill.service.models import CancelRequest, RunRequest

router = APIRouter()
SSE_POLL_S = 0.1
SSE_KEEPALIVE_S = 15.0
DONE_SLOTS = ("ok", "failed_validation", "failed_processing", "skipped", "not_run", "planned")


def _state(request: Request):
    return request.app.state.service


def split_names(values: list[str] | None) -> list[str] | None:
    """Query values given repeated or comma-separated."""
    return [name for item in values or [] for name in item.split(",") if name] or None


def run_view(ledger, run: dict, with_bundles: bool = False) -> dict:
    counts = ledger.counts(run["id"])
    slots = sum(counts.values())
    view = {
        "run_id": run["id"],
        "kind": run["kind"],
        "origin": run["origin"],
        "status": run["status"],
        "since": run["since"],
        "until": run["until"],
        "versions": run["versions"],
        "reprocess": run["reprocess"],
        "force": bool(run["force"]),
        "dry_run": bool(run["dry_run"]),
        "retry_of": (run.get("request") or {}).get("retry_of"),
        "created": run["created"],
        "started": run["started"],
        "finished": run["finished"],
        "exit_code": run["exit_code"],
        "error": run["error"],
        "cancel_mode": run["cancel_mode"],
        "bundles_planned": run["bundles_planned"],
        "total": slots or run["bundles_planned"],
        "done": sum(counts.get(status, 0) for status in DONE_SLOTS),
        "failed": sum(counts.get(status, 0) for status in FAILED_BUNDLE),
        "jobs_done": run["done"],
        "jobs_total": run["total"],
        "counts": counts,
    }
    if with_bundles:
        view["bundles"] = [_slot_view(slot) for slot in ledger.slots(run["id"])]
    return view


def _slot_view(slot: dict) -> dict:
    keys = ("bundle", "status", "reason", "duration_s", "error", "rows_in", "records_out", "started", "finished")
    return {key: slot[key] for key in keys} | {"run_id": slot["run_id"]}


def _found(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except control.RunNotFound as error:
        raise HTTPException(404, str(error)) from None
    except control.RunConflict as error:
        raise HTTPException(409, {"message": str(error), "run_id": error.run_id}) from None
    except SheetfillError as error:
        raise HTTPException(422, str(error)) from None


@router.post("/runs", status_code=202, summary="Start a backfill (or a scheduled run, without since)")
def start_run(
    request: Request,
    body: RunRequest,
    queue: bool = Query(False, description="queue behind an active run instead of answering 409"),
):
    state = _state(request)
    run = _found(
        control.submit,
        state.settings,
        state.ledger,
        since=body.since,
        until=body.until,
        versions=body.chosen_versions,
        bundles=body.bundles,
        reprocess=body.mode,
        dry_run=body.dry_run,
        origin="service",
        queue=queue,
    )
    if state.runner is not None:
        state.runner.wake()
    return {"run_id": run["id"], "status": run["status"], "bundles_planned": run["bundles_planned"]}


@router.get("/runs", summary="Runs, newest first")
def list_runs(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    status: Literal[RUN_STATUSES] | None = Query(None),
):
    ledger = _state(request).ledger
    runs = [run_view(ledger, run) for run in ledger.runs(limit, offset, status)]
    return {"runs": runs, "total": ledger.count_runs(status), "limit": limit, "offset": offset}


@router.get("/runs/{run_id}", summary="One run with its per-bundle rows")
def show_run(request: Request, run_id: str):
    ledger = _state(request).ledger
    return run_view(ledger, _found(control.get_run, ledger, run_id), with_bundles=True)


@router.post("/runs/{run_id}/cancel", status_code=202, summary="Cancel: drain (running jobs finish) or now")
def cancel_run(request: Request, run_id: str, body: Annotated[CancelRequest | None, Body()] = None):
    state = _state(request)
    mode = (body or CancelRequest()).mode
    signal_run = state.runner.signal_run if state.runner is not None else None
    run = _found(control.cancel, state.ledger, run_id, mode, signal_run=signal_run)
    return {"run_id": run["id"], "status": run["status"], "mode": mode}


@router.post("/runs/{run_id}/retry", status_code=202, summary="A new run of exactly the bundles that failed")
def retry_run(request: Request, run_id: str, queue: bool = Query(False)):
    state = _state(request)
    run = _found(control.retry, state.settings, state.ledger, run_id, origin="service", queue=queue)
    if state.runner is not None:
        state.runner.wake()
    request_info = run.get("request") or {}
    return {
        "run_id": run["id"],
        "status": run["status"],
        "bundles_planned": run["bundles_planned"],
        "bundles": request_info.get("forced", []),
        "retry_of": run_id,
    }


@router.get("/runs/{run_id}/events", summary="Server-sent events of a run, resumable with Last-Event-ID")
async def run_events(
    request: Request,
    run_id: str,
    last_event_id: str | None = Header(None),
    after: int | None = Query(None, ge=0, description="like Last-Event-ID, for clients that cannot set it"),
):
    ledger = _state(request).ledger
    _found(control.get_run, ledger, run_id)
    start = after if after is not None else _event_id(last_event_id)
    stream = _event_stream(request, ledger, run_id, start)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _event_id(value: str | None) -> int:
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        raise HTTPException(422, f"Last-Event-ID {value!r} is not an event number") from None


async def _event_stream(request: Request, ledger, run_id: str, after: int):
    yield "retry: 1000\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        events = await run_in_threadpool(ledger.events, run_id, after)
        for event in events:
            after = event["seq"]
            data = json.dumps({"seq": event["seq"], "kind": event["kind"], "time": event["time"], **event["data"]})
            yield f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n"
        if events:
            quiet_since = time.monotonic()
            continue
        run = await run_in_threadpool(ledger.run, run_id)
        if run is None or run["status"] in FINAL:
            return  # every event of a finished run has been sent
        if time.monotonic() - quiet_since > SSE_KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(SSE_POLL_S)


@router.get("/plan", summary="The dry run of a window, with a reason per bundle (same plan as snakemake -n)")
def plan(
    request: Request,
    since: str | None = Query(None, max_length=10),
    until: str | None = Query(None, max_length=10),
    versions: Annotated[list[str] | None, Query(description="repeat or comma-separate")] = None,
    bundles: Annotated[list[str] | None, Query(description="only these DATE--VERSION bundles of the window")] = None,
):
    from sheetfill.service.planning import PlanError, plan_window

    settings = _state(request).settings
    try:
        return _found(plan_window, settings, since, until, split_names(versions), bundles=split_names(bundles))
    except PlanError as error:
        raise HTTPException(500, str(error)) from None


@router.get("/bundles", summary="The latest status of every date x version, paginated and filterable")
def bundles(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    status: str | None = Query(None, max_length=32),
    version: str | None = Query(None, max_length=64),
    since: str | None = Query(None, max_length=10),
    until: str | None = Query(None, max_length=10),
):
    ledger = _state(request).ledger
    filters = {"status": status, "version": version, "since": since, "until": until}
    rows = ledger.latest_bundles(limit=limit, offset=offset, **filters)
    total = ledger.count_latest_bundles(**filters)
    # a plain JSONResponse: FastAPI's generic encoder costs ~0.1 s per 10,000 rows
    return JSONResponse(
        {"bundles": [_slot_view(row) for row in rows], "total": total, "limit": limit, "offset": offset}
    )


@router.get("/cursor", summary="The scheduled-run cursor")
def get_cursor(request: Request):
    path = _state(request).settings.sheetfill.cursor_file
    cursor = _found(read_cursor, path)
    return {"cursor": cursor.isoformat() if cursor else None}


@router.delete("/cursor", summary="Reset the cursor: the next scheduled run starts from the first archive")
def delete_cursor(request: Request):
    state = _state(request)
    active = state.ledger.active_runs()
    if active:
        message = f"run {active[0]['id']} is {active[0]['status']}; reset the cursor once it has ended"
        raise HTTPException(409, {"message": message, "run_id": active[0]["id"]})
    return {"reset": reset_cursor(state.settings.sheetfill.cursor_file), "cursor": None}


@router.get("/health", summary="Liveness, and what the service is doing")
def health(request: Request):
    state = _state(request)
    active = state.ledger.active_runs()
    running = next((run["id"] for run in active if run["status"] != "queued"), None)
    return {
        "status": "ok",
        "active_run": running,
        "queued": sum(run["status"] == "queued" for run in active),
        "runner": state.runner is not None,
    }
