"""The data docs as a browser renders them: Debian's headless Chromium, driven over the DevTools protocol.

The protocol runs over --remote-debugging-pipe (fd 3: commands in, fd 4: replies out, each JSON
message ended by a NUL byte), so the test needs no websocket or browser-automation package.
.ci/run installs the browser as root: apt-get install -y chromium. Without it the test skips, or fails
under CI=true.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import unavailable
from test_datadocs import SCRIPT, WINDOW, make_window

from sheetfill.datadocs import build_data_docs

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")  # Debian installs it to /usr/bin, on every PATH
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--remote-debugging-pipe",
]
TIMEOUT = 60  # seconds to wait for one reply or event; generous for a loaded CI machine


class Chromium:
    """A headless Chromium and a minimal DevTools-protocol client over its debugging pipe."""

    def __init__(self, profile_dir: Path, log: Path):
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()
        # Copies above 10, so wiring them to 3 and 4 in the child cannot overwrite one with the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_r, replies_w)]
        for fd in (commands_r, replies_w):
            os.close(fd)

        def wire():  # in the child, before exec: fd 3 reads our commands, fd 4 carries its replies
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        with open(log, "wb") as err:
            self.process = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(3, 4, *high),
                preexec_fn=wire,
                start_new_session=True,
            )
        for fd in high:
            os.close(fd)
        self._buffer, self._next_id, self.events = b"", 0, []

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise ConnectionError(f"Chromium closed the pipe (exit code {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in .events."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(self._receive(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a hung or dead browser is stopped below either way
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only the browser we started
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


class Tab:
    """One page target attached in flat mode, with network, page and runtime events on."""

    def __init__(self, browser: Chromium):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Page", "Runtime"):
            self.send(f"{domain}.enable")

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def open(self, path: Path) -> None:
        self.send("Page.navigate", {"url": path.as_uri()})
        self.browser.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]


@pytest.fixture
def tab(tmp_path):
    if not CHROMIUM:
        unavailable("Debian's chromium is not on PATH; install it as root with: apt-get install -y chromium")
    browser = Chromium(tmp_path / "chromium-profile", tmp_path / "chromium.log")
    try:
        yield Tab(browser)
    finally:
        browser.close()


def test_rendered_docs_show_failures_load_charts_and_run_no_script(tmp_path, tab):
    index = build_data_docs(make_window(tmp_path), tmp_path / "data-docs", WINDOW)

    tab.open(index.parent / "window.html")
    rows = tab.js("""Array.from(document.querySelectorAll('#bundles tr[data-bundle]')).map(tr => {
        const cell = tr.querySelector('td.status');
        return [tr.dataset.bundle, cell.innerText.trim(), getComputedStyle(cell).color];
    })""")
    red, green = "rgb(180, 35, 24)", "rgb(26, 127, 55)"  # style.css: the stylesheet loaded and applied
    assert rows == [
        ["2025-09-29--v1", "✓ ok", green],
        ["2025-09-29--v2", "✗ failed validation", red],
        ["2025-09-30--v1", "✗ failed to process", red],
        ["2025-09-30--v2", "✓ ok", green],
    ]
    tab.open(index)
    tab.screenshot(tmp_path / "index.png")
    assert "2 of 4 bundles failed" in tab.js("document.getElementById('verdict').innerText")
    images = tab.js("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert len(images) == 4
    assert all(complete and width > 0 for _, complete, width in images), images

    tab.open(index.parent / "bundles" / "2025-09-29--v2.html")
    tab.screenshot(tmp_path / "bundle.png")
    assert tab.js("typeof window.__pwned") == "undefined"
    assert tab.js("document.querySelectorAll('script').length") == 0
    assert SCRIPT in tab.js("document.getElementById('expectations').innerText")
    assert tab.js("document.getElementById('verdict').dataset.status") == "failed_validation"

    urls = tab.requested_urls()
    assert any(url.endswith("/charts/records.png") for url in urls)  # the collector saw the page's loads
    assert [url for url in urls if not url.startswith("file://")] == []
    assert (tmp_path / "index.png").read_bytes()[:4] == b"\x89PNG"
