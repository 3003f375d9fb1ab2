"use strict";
(() => {
  const root = document.getElementById("run");
  const id = root.dataset.runId;
  const base = "/api/v1/runs/" + encodeURIComponent(id);
  const $ = (x) => document.getElementById(x);
  const PENDING = new Set(["queued", "pending", "planned", "running", "waiting", "started"]);
  let current = null, stop = null, timer = null, poll = null, settled = false, finalReads = 0;

  const isPending = (b) => PENDING.has(String(b.status || "").toLowerCase());
  const isFailed = (b) => SF.FAILED.test(String(b.status || "").toLowerCase());
  const num = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));

  // Work of this run: bundle slots skipped as up to date are listed but are not work to wait for.
  function progress(r) {
    const rows = (r.bundles || []).filter((b) => String(b.status).toLowerCase() !== "skipped");
    const total = rows.length || (r.bundles && r.bundles.length ? 0 : r.total || 0);
    const done = rows.length ? rows.filter((b) => !isPending(b)).length : r.done || 0;
    const failed = rows.length ? rows.filter(isFailed).length : r.failed || 0;
    return { total, done, failed };
  }

  function render(raw) {
    const r = SF.run(raw);
    current = r;
    const status = $("run-status");
    status.textContent = r.status;
    status.dataset.status = r.status;
    status.className = "badge " + SF.statusClass(r.status);
    $("run-kind").textContent = r.kind;
    $("run-window").textContent = SF.windowText(r);
    $("run-reprocess").textContent = r.reprocess || "missing";
    $("run-source").textContent = r.source || "–";
    const error = $("run-error");
    error.textContent = r.error ? "Error: " + r.error : "";
    error.hidden = !r.error;

    const p = progress(r);
    const final = SF.FINAL.has(r.status);
    const percent = p.total ? Math.round((100 * p.done) / p.total) : final ? 100 : 0;
    $("progress-bar").style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(percent));
    $("progress").dataset.percent = String(percent);
    $("progress-done").textContent = p.done;
    $("progress-total").textContent = p.total;
    $("progress-percent").textContent = percent;
    $("progress-failed").textContent = p.failed;
    const end = r.finished || (final ? null : Date.now() / 1000);
    const elapsed = r.started && end ? end - r.started : null;
    $("progress-elapsed").textContent = SF.duration(elapsed);
    const worked = (r.bundles || []).filter((b) => !isPending(b) && b.duration_s).length;
    const eta = final ? 0 : elapsed && worked ? (elapsed / Math.max(p.done, 1)) * (p.total - p.done) : null;
    $("progress-eta").textContent = final ? "done" : SF.duration(eta);

    $("cancel").hidden = final || r.status === "cancelling";
    $("retry").hidden = !(final && p.failed > 0);
    $("data-docs").hidden = !final;
    table(r.bundles || []);
    // The verdict can land a moment before the last bundle rows: re-read until they settle too.
    settled = final && !(r.bundles || []).some(isPending);
    if (settled && stop) { stop(); stop = null; $("run-live").textContent = ""; }
  }

  // "Missing output files: /long/path/..." reads as its first words; the whole text is the cell's title.
  function shortReason(reason) {
    if (!reason) return "–";
    const cut = String(reason).search(/:\s*\//);
    return cut > 0 ? String(reason).slice(0, cut) : String(reason);
  }

  function order(b) { return isFailed(b) ? 0 : String(b.status).toLowerCase() === "running" ? 1 : isPending(b) ? 2 : 3; }

  function table(bundles) {
    const rows = [...bundles].sort((a, b) => order(a) - order(b) || String(a.bundle).localeCompare(String(b.bundle)));
    $("bundles").tBodies[0].replaceChildren(...rows.map((b) => {
      const name = String(b.bundle);
      const log = "/files/logs/bundle/" + encodeURIComponent(name) + ".log";
      const docs = "/files/data-docs/bundles/" + encodeURIComponent(name) + ".html";
      return SF.el("tr", { dataset: { bundle: name, status: b.status || "" } },
        SF.el("th", { scope: "row", class: "mono" }, name),
        SF.el("td", {}, SF.badge(b.status)),
        SF.el("td", { class: "reason", title: b.reason || null }, shortReason(b.reason)),
        SF.el("td", {}, b.duration_s === null || b.duration_s === undefined ? "–" : SF.duration(b.duration_s)),
        SF.el("td", { class: "num" }, num(b.rows_in)),
        SF.el("td", { class: "num" }, num(b.records_out)),
        SF.el("td", { class: "error-text" }, b.error || ""),
        SF.el("td", { class: "links" }, SF.el("a", { href: log, class: "log-link" }, "log"), " ",
          SF.el("a", { href: docs, class: "docs-link" }, "data docs")));
    }));
  }

  async function load() {
    const { ok, status, data } = await SF.api("GET", base);
    if (!ok) {
      $("run-live").textContent = status === 0 ? "server unreachable, retrying…" : "";
      if (status !== 0) SF.showError(SF.message(data));
      return;
    }
    SF.showError("");
    render(data);
  }

  // Events only say "something changed": the run is re-read, at most a few times a second.
  function refreshSoon() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 300);
  }

  $("cancel").addEventListener("click", () => $("cancel-confirm").showModal());
  $("cancel-confirm").addEventListener("close", async () => {
    const dialog = $("cancel-confirm");
    if (dialog.returnValue !== "cancel") return;
    const mode = dialog.querySelector("input[name=mode]:checked").value;
    const { ok, data } = await SF.api("POST", base + "/cancel", { mode });
    if (!ok) SF.showError(SF.message(data));
    load();
  });
  $("retry").addEventListener("click", async () => {
    const { ok, data } = await SF.api("POST", base + "/retry");
    if (ok && data && (data.run_id || data.id)) location.assign("/runs/" + encodeURIComponent(data.run_id || data.id));
    else SF.showError(SF.message(data));
  });

  load().then(() => {
    if (settled) return;
    stop = SF.stream(base + "/events", refreshSoon, (state) => {
      $("run-live").textContent = state === "live" ? "live" : state === "reconnecting" ? "reconnecting…" : "";
      if (state === "live") refreshSoon(); // after a reconnect (e.g. server restart), catch up at once
    });
    // A safety net when the event stream is down: re-read every few seconds until the run ends.
    // Bounded: a finished run whose rows never settle (a crashed run) is re-read ten times at most.
    poll = setInterval(() => {
      if (settled || (current && SF.FINAL.has(current.status) && ++finalReads > 10)) clearInterval(poll);
      else load();
    }, 1000);
  });
})();
