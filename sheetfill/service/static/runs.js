"use strict";
(() => {
  const body = document.querySelector("#runs tbody");
  const more = document.getElementById("more");
  const PAGE = 50;
  let offset = 0;

  function items(data) {
    if (Array.isArray(data)) return data;
    return (data && (data.runs || data.items || data.results)) || [];
  }

  function row(raw) {
    const r = SF.run(raw);
    const end = r.finished || (SF.FINAL.has(r.status) ? null : Date.now() / 1000);
    const length = r.started && end ? end - r.started : null;
    const counts = r.total !== null ? (r.done ?? 0) + " / " + r.total + (r.failed ? ", " + r.failed + " failed" : "") : "–";
    return SF.el("tr", { dataset: { runId: r.id, status: r.status } },
      SF.el("td", { class: "mono" }, SF.el("a", { href: "/runs/" + encodeURIComponent(r.id) }, r.id)),
      SF.el("td", {}, SF.badge(r.status)),
      SF.el("td", {}, r.kind),
      SF.el("td", {}, SF.windowText(r)),
      SF.el("td", {}, counts),
      SF.el("td", {}, SF.when(r.started || r.created)),
      SF.el("td", {}, SF.duration(length)),
      SF.el("td", {}, r.source || "–"));
  }

  async function load() {
    const { ok, data } = await SF.api("GET", "/api/v1/runs?limit=" + PAGE + "&offset=" + offset);
    if (!ok) { SF.showError(SF.message(data)); return; }
    const runs = items(data);
    if (offset === 0) body.replaceChildren();
    for (const r of runs) body.append(row(r));
    if (offset === 0 && !runs.length) body.append(SF.el("tr", {}, SF.el("td", { colspan: 8 }, "No run yet. Start one from Execute.")));
    offset += runs.length;
    more.hidden = runs.length < PAGE;
  }

  // While a run is active the list keeps itself current (first page only; older runs do not change).
  setInterval(() => {
    const active = body.querySelector("tr[data-status=queued], tr[data-status=running], tr[data-status=cancelling]");
    if (active && offset <= PAGE) { offset = 0; load(); }
  }, 3000);

  more.addEventListener("click", load);
  load();
})();
