"""The web UI in a real browser: Debian's headless Chromium driven by Playwright, against the real
`sheetfill serve` (uvicorn on a free 127.0.0.1 port) and real Snakemake runs on generated archives.

Playwright's own browser download is not available here: it drives /usr/bin/chromium
(.ci/run installs it as root with apt-get install -y chromium).
Screenshots of every page go to <tmp>/screenshots; with SHEETFILL_SCREENSHOTS=docs/screenshots
they are also written there (the PNGs the README shows).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import REPO, make_archives, unavailable
from ui_server import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUN_TIMEOUT = 240_000  # ms a real Snakemake run of a few small bundles may take on a loaded 2-CPU machine
UI_TIMEOUT = 15_000  # ms for the page to react to a click or an API answer
PLAN_TIMEOUT = 120_000  # ms for a preview: the plan is a Snakemake dry run in a subprocess
PWNED = "window.__pwned=1"
WINDOW = ("2025-09-29", "2025-09-30")
FOUR = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2"]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("playwright is not installed: python -m pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        unavailable("Debian's chromium is not installed; install it as root with: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    yield tab
    context.close()


@pytest.fixture
def service(tmp_path):
    archives = tmp_path / "archives"
    make_archives(archives)
    started = Service(tmp_path, archives)
    started.start()
    yield started
    started.stop()


def shoot(page, name: str, tmp_path: Path, full_page: bool = True) -> None:
    """A screenshot kept with the test's files, and in docs/screenshots when asked for."""
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)
    target = os.environ.get("SHEETFILL_SCREENSHOTS")
    if target:
        Path(REPO / target).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{name}.png", REPO / target / f"{name}.png")


def wait_final(page, timeout: int = RUN_TIMEOUT) -> str:
    page.wait_for_selector(
        "#run-status[data-status=succeeded], #run-status[data-status=completed_with_failures], "
        "#run-status[data-status=failed], #run-status[data-status=cancelled]",
        timeout=timeout,
    )
    return page.get_attribute("#run-status", "data-status")


def bundle_rows(page) -> list[tuple[str, str]]:
    rows = page.eval_on_selector_all("#bundles tbody tr", "rows => rows.map(r => [r.dataset.bundle, r.dataset.status])")
    return [tuple(row) for row in rows]


def start_long_backfill(tmp_path, page) -> Service:
    """A 16-bundle backfill launched from the page, once one of its bundles is running: work enough
    that a cancel or a restart lands mid-run even on an idle machine."""
    archives = tmp_path / "archives"
    make_archives(archives, days=8, scale=0.2)
    service = Service(tmp_path, archives)
    service.start()
    try:
        launch_backfill(page, service, "2025-09-29", "2025-10-06")
        page.wait_for_selector("#bundles tbody tr[data-status=running]", timeout=RUN_TIMEOUT)
    except BaseException:
        service.stop()
        raise
    return service


def launch_backfill(page, service, since: str, until: str) -> str:
    page.goto(service.url("/execute"))
    page.check("#backfill")
    page.fill("#since", since)
    page.fill("#until", until)
    page.wait_for_selector("#preview-count[data-count]", timeout=PLAN_TIMEOUT)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    return page.url.rsplit("/", 1)[1]


def test_backfill_from_the_execute_form_to_a_finished_run(service, page, tmp_path):
    page.goto(service.url("/execute"))
    assert page.is_hidden("#since") and page.is_hidden("#until")
    assert page.eval_on_selector_all("input[name=versions]", "xs => xs.map(x => x.value)") == ["v1", "v2"]
    page.check("#backfill")
    assert page.is_visible("input[name=since]") and page.is_visible("input[name=until]")
    page.fill("#since", WINDOW[0])
    page.fill("#until", WINDOW[1])
    page.wait_for_selector("#preview-count[data-count='4']", timeout=PLAN_TIMEOUT)
    assert page.inner_text("#preview-count").startswith("4 bundles to build")
    page.click("#preview-details summary")
    assert page.eval_on_selector_all("#preview-list li", "xs => xs.map(x => x.dataset.bundle)") == FOUR
    shoot(page, "execute", tmp_path)

    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.wait_for_selector("#progress[data-percent='100']", timeout=RUN_TIMEOUT)
    assert wait_final(page) == "succeeded"
    assert sorted(b for b, _ in bundle_rows(page)) == FOUR
    assert {s for _, s in bundle_rows(page)} == {"ok"}
    assert page.inner_text("#progress-done") == page.inner_text("#progress-total") == "4"
    shoot(page, "run", tmp_path)

    page.reload()  # the page is rebuilt from the ledger
    assert wait_final(page, UI_TIMEOUT) == "succeeded"
    assert len(bundle_rows(page)) == 4
    with page.expect_navigation():
        page.click("#data-docs")  # the run's data docs, served from restore_root: charts and styles load
    images = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert images and all(width > 0 for width in images), images

    page.goto(service.url("/execute"))
    page.check("#backfill")
    page.fill("#since", WINDOW[0])
    page.fill("#until", WINDOW[1])
    page.wait_for_selector(
        "#preview-count[data-count='0']", timeout=PLAN_TIMEOUT
    )  # built already: nothing to do, said plainly
    assert page.inner_text("#preview-count").startswith("0 bundles to build")
    assert page.errors == []


def test_form_errors_show_the_apis_message_next_to_the_field(service, page):
    page.goto(service.url("/execute"))
    page.check("#backfill")
    page.fill("#since", "2025-09-30")
    page.fill("#until", "2025-09-29")
    page.wait_for_selector("#since-error:not(:empty), #until-error:not(:empty)", timeout=PLAN_TIMEOUT)
    message = page.inner_text("#since-error") + page.inner_text("#until-error")
    assert "since" in message and "until" in message
    page.fill("#since", "2031-01-01")
    page.fill("#until", "2031-01-02")
    page.wait_for_function(
        "document.getElementById('since-error').innerText.includes('2025-')", timeout=PLAN_TIMEOUT
    )  # nearest dates
    page.click("#submit")
    page.wait_for_selector("#since-error:not(:empty), #until-error:not(:empty)")
    assert page.url.endswith("/execute")


def test_a_failing_bundle_shows_failed_with_its_error_and_log_then_retry_runs_only_it(service, page, tmp_path):
    bad = service.archives / "2025-09-30" / "hotpass-inputs-v1.zip"
    bad.write_bytes(b"not a zip at all")
    launch_backfill(page, service, *WINDOW)
    assert wait_final(page) == "completed_with_failures"
    rows = bundle_rows(page)
    assert rows[0] == ("2025-09-30--v1", "failed_processing")  # failed first
    assert sorted(b for b, _ in rows) == FOUR
    first = page.locator("#bundles tbody tr").first
    assert "not a readable zip" in first.locator(".error-text").inner_text()
    assert page.inner_text("#progress-failed") == "1"
    shoot(page, "run-failed", tmp_path)

    log = page.request.get(service.url(first.locator("a.log-link").get_attribute("href")))
    assert log.status == 200 and "not a readable zip" in log.text()
    docs = page.request.get(service.url(first.locator("a.docs-link").get_attribute("href")))
    assert docs.status == 200 and "2025-09-30--v1" in docs.text()
    outside = ["/files/logs/..%2F..%2Farchives%2F2025-09-29%2Fhotpass-inputs-v1.zip", "/files/logs/%2Fetc%2Fpasswd"]
    outside += ["/files/logs/bundle%00.log", "/files/.sheetfill/ledger.sqlite", "/files/logs/"]
    assert [page.request.get(service.url(path)).status for path in outside] == [404] * len(outside)

    from sheetfill.sample import generate_bundle

    generate_bundle(bad, dt.date(2025, 9, 30), "v1", scale=0.05, seed=1)  # the archive is fixed: new bytes
    failed_run = page.url
    page.click("#retry")
    page.wait_for_url(lambda url: url != failed_run and "/runs/" in url)
    assert wait_final(page) == "succeeded"
    assert bundle_rows(page) == [("2025-09-30--v1", "ok")]

    page.goto(service.url("/"))  # history, newest first: the retry, then the failed run
    page.wait_for_selector("#runs tbody tr[data-run-id]")
    statuses = page.eval_on_selector_all("#runs tbody tr[data-run-id]", "rs => rs.map(r => r.dataset.status)")
    assert statuses == ["succeeded", "completed_with_failures"]
    assert "2025-09-29 … 2025-09-30" in page.inner_text("#runs tbody tr:nth-child(2)")
    started_by = page.eval_on_selector_all(
        "#runs tbody tr[data-run-id] td:last-child", "cs => cs.map(c => c.innerText)"
    )
    assert started_by == ["API (web UI or REST)"] * 2
    shoot(page, "runs", tmp_path)


def test_failed_cells_of_the_grid_re_run_as_one_run_of_only_those(service, page, tmp_path):
    chosen = ["2025-09-29--v2", "2025-09-30--v1"]  # their dates x versions span two bundles that did not fail
    for bundle in chosen:
        date, _, version = bundle.partition("--")
        (service.archives / date / f"hotpass-inputs-{version}.zip").write_bytes(b"truncated capture")
    launch_backfill(page, service, *WINDOW)
    assert wait_final(page) == "completed_with_failures"

    page.goto(service.url("/bundles"))
    page.wait_for_selector("body[data-grid-ready]")
    assert page.locator(".cell[data-k]").count() == 4
    failed = page.locator(".cell.bad[data-k]")
    assert failed.count() == 2
    for index in range(2):
        failed.nth(index).click(modifiers=["Control"])  # Ctrl+click selects without opening
    assert page.inner_text("#selected-count") == "2"
    page.click("#rerun")
    page.wait_for_selector("#rerun-confirm[open] #rerun-list li", timeout=PLAN_TIMEOUT)
    assert page.eval_on_selector_all("#rerun-list li", "xs => xs.map(x => x.innerText)") == chosen
    page.click("#rerun-confirm button[value=go]")
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    wait_final(page)
    assert sorted(b for b, _ in bundle_rows(page)) == chosen  # exactly those: no other bundle of the span


@pytest.mark.parametrize("mode", ["now", "drain"])
def test_cancel_mid_run_ends_cancelled(tmp_path, page, mode):
    service = start_long_backfill(tmp_path, page)
    try:
        page.wait_for_selector("#run-status[data-status=running]", timeout=RUN_TIMEOUT)
        page.click("#cancel")
        page.click("#cancel-confirm button[value=keep]")  # the confirmation can be declined
        assert page.get_attribute("#run-status", "data-status") == "running"
        page.click("#cancel")
        page.check(f"#mode-{mode}")
        if mode == "now":
            shoot(page, "cancel", tmp_path, full_page=False)  # the modal and its backdrop
        running = [b for b, s in bundle_rows(page) if s == "running"]
        page.click("#cancel-go")
        assert wait_final(page) == "cancelled"
        page.wait_for_selector("#bundles tbody tr[data-status=not_run]")
        rows = dict(bundle_rows(page))
        assert set(rows.values()) <= {"ok", "not_run", "skipped"}, rows  # nothing left running or failed
        if mode == "drain":  # the bundles running at the cancel were let finish
            assert {rows[b] for b in running} == {"ok"}, (running, rows)
        assert page.is_hidden("#cancel")
    finally:
        service.stop()


def test_markup_in_errors_and_bundle_names_is_shown_as_text_never_run(service, page, tmp_path):
    evil = service.archives / "2025-09-29" / "hotpass-inputs-v2.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr(f"../<script>{PWNED}</script><img src=x onerror={PWNED}>.xlsx", "a,b\n1,2\n")
    launch_backfill(page, service, "2025-09-29", "2025-09-29")
    assert wait_final(page) == "completed_with_failures"
    error = page.locator("#bundles tbody tr[data-bundle='2025-09-29--v2'] .error-text").inner_text()
    assert f"<script>{PWNED}</script>" in error  # shown as the text it is
    run_id = page.url.rsplit("/", 1)[1]

    name = f"2025-10-01--<img src=x onerror={PWNED}>"
    service.seed_ledger([(name, "failed_processing", f"<script>{PWNED}</script>")], run_id="seeded-markup")
    for path in (f"/runs/{run_id}", "/runs/seeded-markup", "/bundles", "/"):
        page.goto(service.url(path))
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
    page.goto(service.url("/runs/seeded-markup"))
    page.wait_for_selector("#bundles tbody tr")
    assert page.inner_text("#bundles tbody th") == name  # the name as text, not an element
    assert page.locator("#bundles tbody img").count() == 0

    page.goto(service.url("/bundles"))
    page.wait_for_selector("body[data-grid-ready]")
    page.locator(".cell.processing[data-k]").last.click()  # the seeded bundle sorts last
    page.wait_for_function(f"document.getElementById('cell-title').innerText === {name!r}")
    assert page.locator("#cell-detail img, #grid img").count() == 0

    page.goto(service.url(f"/runs/{run_id}"))  # the data docs page of the evil bundle, reached from the run
    page.wait_for_selector("#bundles tbody tr[data-bundle='2025-09-29--v2']")
    with page.expect_navigation():
        page.click("#bundles tbody tr[data-bundle='2025-09-29--v2'] a.docs-link")
    assert "2025-09-29--v2" in page.content() and PWNED in page.inner_text("body")  # the error, as text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.errors == []


def test_bundles_grid_at_10000_ledger_bundles(tmp_path, page):
    archives = tmp_path / "archives"
    make_archives(archives, days=1, versions=("v1",))
    service = Service(tmp_path, archives)
    start = dt.date(2020, 1, 1)
    rows = []
    for i in range(10_000):
        date, version = start + dt.timedelta(days=i // 5), f"v{i % 5 + 1}"
        status = "failed_validation" if i % 97 == 0 else "ok"
        rows.append((f"{date.isoformat()}--{version}", status, "2 expectations failed" if status != "ok" else None))
    service.seed_ledger(rows, run_id="seeded-history")
    service.start()
    try:
        page.goto(service.url("/bundles"))
        page.wait_for_selector("body[data-grid-ready]", timeout=30_000)
        ready_ms = int(page.get_attribute("body", "data-grid-ready"))
        print(f"bundles grid: 10,000 bundles interactive {ready_ms} ms after navigation (budget 1000 ms)")
        (tmp_path / "grid-timing.txt").write_text(f"{ready_ms}\n")
        assert page.locator(".cell[data-k]").count() == 10_000
        failed = page.locator(".cell.bad[data-k]")
        assert failed.count() == len([r for r in rows if r[1] != "ok"])
        shoot(page, "bundles", tmp_path, full_page=False)

        failed.first.click()
        page.wait_for_selector("#cell-runs a[href='/runs/seeded-history']")
        assert page.inner_text("#cell-title") == "2020-01-01--v1"
        page.click("#cell-close")
        page.keyboard.press("ArrowRight")  # keyboard: the focused cell moves a date on, Enter opens it
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('cell-title').innerText === '2020-01-02--v1'")
        page.click("#select-failed")
        assert page.inner_text("#selected-count") == str(failed.count())
        assert page.is_enabled("#rerun")
    finally:
        service.stop()


def test_scheduled_run_moves_the_cursor_which_resets_after_confirmation(service, page, tmp_path):
    page.goto(service.url("/execute"))
    assert not page.is_checked("#backfill")
    page.wait_for_selector("#scheduled-cursor:text('no cursor yet')")
    page.wait_for_selector("#preview-count[data-count='6']", timeout=PLAN_TIMEOUT)  # no cursor yet: every archive
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    assert wait_final(page) == "succeeded"
    assert page.inner_text("#run-kind") == "scheduled"

    page.goto(service.url("/cursor"))
    page.wait_for_selector("#cursor-value[data-cursor='2025-10-01']")
    shoot(page, "cursor", tmp_path)
    page.click("#cursor-reset")
    page.click("#cursor-confirm button[value=cancel]")
    assert page.get_attribute("#cursor-value", "data-cursor") == "2025-10-01"
    page.click("#cursor-reset")
    page.click("#cursor-confirm button[value=reset]")
    page.wait_for_selector("#cursor-value[data-cursor='']")


def test_run_page_follows_the_run_across_a_server_restart(tmp_path, page):
    service = start_long_backfill(tmp_path, page)
    try:
        page.wait_for_selector("#run-live:text('live')", timeout=RUN_TIMEOUT)
        run_id = page.url.rsplit("/", 1)[1]
        service.restart()  # the same page, no reload: it reconnects and shows where the run ended
        final = wait_final(page)
        assert final == "failed"  # its Snakemake died with the server: failed with the reason, not "running"
        _, run = service.api("GET", f"/api/v1/runs/{run_id}")
        page.wait_for_function(f"document.querySelectorAll('#bundles tbody tr').length === {len(run['bundles'])}")
        assert {b for b, _ in bundle_rows(page)} == {b["bundle"] for b in run["bundles"]}
        assert page.inner_text("#run-error")  # the reason is shown
    finally:
        service.stop()


def test_off_loopback_the_token_is_asked_once_and_kept_for_the_session(tmp_path, page):
    archives = tmp_path / "archives"
    make_archives(archives, days=1)
    service = Service(tmp_path, archives, token="s3cret-token")
    service.start()
    try:
        page.goto(service.url("/bundles"))
        page.wait_for_url(re.compile(r"/login\?next="))
        assert page.get_attribute("label[for=token]", "for") == "token"
        assert page.locator("form.logout").count() == 0  # not signed in yet
        assert page.get_attribute("input[name=next]", "value") == "/bundles"
        page.fill("#token", "wrong")
        page.click("#login button[type=submit]")
        assert "not valid" in page.inner_text("#token-error")
        shoot(page, "login", tmp_path)
        page.fill("#token", "s3cret-token")
        page.click("#login button[type=submit]")
        page.wait_for_url(service.url("/bundles"))
        for elsewhere in ("//example.org/x", "/\t/example.org", "https://example.org/"):  # never sent away
            page.goto(service.url("/login?next=" + quote(elsewhere, safe="")))
            assert page.get_attribute("input[name=next]", "value") == "/"
        page.goto(service.url("/execute"))
        page.wait_for_selector(
            "#preview-count[data-count='2']", timeout=PLAN_TIMEOUT
        )  # the API answered with the stored token
        assert page.request.get(service.url("/api/v1/runs")).status == 401  # the API itself still wants it
    finally:
        service.stop()


UNLABELLED = """[...document.querySelectorAll('input, select, textarea, button')]
    .filter(i => i.type !== 'hidden' && !(i.labels && i.labels.length) && !i.getAttribute('aria-label')
        && !i.innerText.trim())
    .map(i => i.name || i.id)"""


def test_pages_are_usable_on_a_phone(service, browser, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        for path in ("/", "/execute", "/bundles", "/cursor", "/login"):
            phone.goto(service.url(path))
            phone.wait_for_load_state("networkidle")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)  # nothing wider than the screen
            assert phone.evaluate(UNLABELLED) == [], path
            phone.keyboard.press("Tab")  # the first stop is the skip link, then the page's own controls
            assert phone.evaluate("document.activeElement.className") == "skip", path
        phone.goto(service.url("/execute"))
        shoot(phone, "execute-phone", tmp_path)
    finally:
        context.close()
