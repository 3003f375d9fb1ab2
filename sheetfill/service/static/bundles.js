"use strict";
// The date x version grid. One request per page of /api/v1/bundles, then one pass that builds the
// cells into a fragment: no layout work per cell, one delegated listener for the whole grid.
(() => {
  const $ = (x) => document.getElementById(x);
  const grid = $("grid");
  const selected = new Set();
  let cells = [];       // [{bundle, date, version, status, run_id}]
  let byPos = new Map(); // "dateIndex:versionIndex" -> element
  let dates = [], versions = [], focused = null;

  function items(data) {
    if (Array.isArray(data)) return data;
    return (data && (data.runs || data.items || data.results)) || [];
  }

  // The page carries the latest status of every bundle as parallel lists (see ui_data.grid_payload).
  function decode(payload) {
    const out = [], c = payload.cells;
    for (let i = 0; i < c.length; i += 5) {
      const date = payload.dates[c[i]], version = payload.versions[c[i + 1]];
      out.push({ bundle: date + "--" + version, date, version, status: payload.statuses[c[i + 2]] || "unknown",
        run_id: payload.runs[c[i + 3]], error: payload.errors[c[i + 4]] });
    }
    return out;
  }

  function draw() {
    const dateIndex = new Map(dates.map((d, i) => [d, i]));
    const versionIndex = new Map(versions.map((v, i) => [v, i]));
    const lookup = new Map(cells.map((c, i) => [c.date + "\u0000" + c.version, i]));
    const classes = new Map();
    const months = new Map();
    for (const d of dates) { const m = d.slice(0, 7); if (!months.has(m)) months.set(m, []); months.get(m).push(d); }
    const fragment = document.createDocumentFragment();
    byPos = new Map();
    for (const [month, monthDates] of months) {
      const section = document.createElement("section");
      section.className = "month";
      section.append(SF.el("h2", { class: "month-title" }, month));
      const table = document.createElement("div");
      table.className = "month-grid";
      table.setAttribute("role", "rowgroup");
      const days = new Map(monthDates.map((d) => [Number(d.slice(8, 10)), d]));
      const present = new Set(monthDates.flatMap((d) => versions.filter((v) => lookup.has(d + "\u0000" + v))));
      for (const version of versions) {
        if (!present.has(version)) continue;
        const row = document.createElement("div");
        row.className = "grid-row";
        row.setAttribute("role", "row");
        row.append(SF.el("div", { class: "version", role: "rowheader", title: version }, version));
        for (let day = 1; day <= 31; day++) {
          const date = days.get(day);
          const k = date === undefined ? undefined : lookup.get(date + "\u0000" + version);
          const cell = document.createElement("div");
          if (k === undefined) { cell.className = "cell empty"; cell.setAttribute("aria-hidden", "true"); row.append(cell); continue; }
          const c = cells[k];
          cell.className = "cell " + (classes.get(c.status) || classes.set(c.status, SF.statusClass(c.status)).get(c.status));
          cell.setAttribute("role", "gridcell");
          cell.dataset.k = k;
          byPos.set(dateIndex.get(date) + ":" + versionIndex.get(version), cell);
          row.append(cell);
        }
        table.append(row);
      }
      section.append(table);
      fragment.append(section);
    }
    grid.replaceChildren(fragment);
    const first = grid.querySelector(".cell[data-k]");
    if (first) { first.tabIndex = 0; describe(first); focused = first; }
  }

  function legend() {
    const counts = new Map();
    for (const c of cells) counts.set(c.status, (counts.get(c.status) || 0) + 1);
    $("legend").replaceChildren(...[...counts].sort().map(([s, n]) =>
      SF.el("span", { class: "legend-item" }, SF.el("span", { class: "swatch " + SF.statusClass(s) }), s + " (" + n + ")")));
    const failed = cells.filter((c) => SF.FAILED.test(c.status)).length;
    $("grid-summary").textContent = cells.length + " bundles, " + dates.length + " dates × " + versions.length +
      " versions; " + failed + " failed.";
  }

  function toggle(cell) {
    const k = Number(cell.dataset.k);
    if (selected.has(k)) { selected.delete(k); cell.classList.remove("selected"); cell.removeAttribute("aria-selected"); }
    else { selected.add(k); cell.classList.add("selected"); cell.setAttribute("aria-selected", "true"); }
    $("selected-count").textContent = selected.size;
    $("rerun").disabled = selected.size === 0;
  }

  // Names a cell for assistive technology and hover; done on demand, not for every cell up front.
  function describe(cell) {
    if (cell.title) return;
    const c = cells[Number(cell.dataset.k)];
    cell.title = c.bundle + ": " + c.status;
    cell.setAttribute("aria-label", c.bundle + " " + c.status);
  }

  function focusCell(cell) {
    if (!cell) return;
    describe(cell);
    if (focused) focused.removeAttribute("tabindex");
    cell.tabIndex = 0;
    cell.focus();
    focused = cell;
  }

  async function open(cell) {
    const c = cells[Number(cell.dataset.k)];
    const panel = $("cell-detail");
    $("cell-title").textContent = c.bundle;
    $("cell-status").replaceChildren("Latest status: ", SF.badge(c.status), c.error ? " — " + c.error : "");
    $("cell-docs").href = "/files/data-docs/bundles/" + encodeURIComponent(c.bundle) + ".html";
    $("cell-log").href = "/files/logs/bundle/" + encodeURIComponent(c.bundle) + ".log";
    const list = $("cell-runs");
    list.replaceChildren(SF.el("li", {}, "Loading…"));
    panel.hidden = false;
    panel.focus();
    const response = await fetch("/ui/bundles/" + encodeURIComponent(c.bundle) + "/runs", { headers: { Accept: "application/json" } });
    const runs = response.ok ? (await response.json()).runs : [];
    list.replaceChildren(...runs.map((r) => SF.el("li", {},
      SF.el("a", { href: "/runs/" + encodeURIComponent(r.run_id), class: "mono" }, r.run_id), " ", SF.badge(r.status),
      r.error ? " " + r.error : "", r.started || r.created ? " · " + SF.when(r.started || r.created) : "")));
    if (!runs.length) list.replaceChildren(SF.el("li", {}, "No run recorded."));
  }

  grid.addEventListener("mouseover", (event) => {
    const cell = event.target.closest && event.target.closest(".cell[data-k]");
    if (cell) describe(cell);
  });

  grid.addEventListener("click", (event) => {
    const cell = event.target.closest(".cell[data-k]");
    if (!cell) return;
    focusCell(cell);
    if (event.ctrlKey || event.metaKey || event.shiftKey) toggle(cell);
    else open(cell);
  });

  grid.addEventListener("keydown", (event) => {
    const cell = event.target.closest(".cell[data-k]");
    if (!cell) return;
    const c = cells[Number(cell.dataset.k)];
    const d = dates.indexOf(c.date), v = versions.indexOf(c.version);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      const [dd, dv] = moves[event.key];
      for (let i = d + dd, j = v + dv; i >= 0 && i < dates.length && j >= 0 && j < versions.length; i += dd, j += dv) {
        const next = byPos.get(i + ":" + j);
        if (next) { focusCell(next); break; }
      }
    } else if (event.key === "Enter") { event.preventDefault(); open(cell); }
    else if (event.key === " ") { event.preventDefault(); toggle(cell); }
  });

  $("cell-close").addEventListener("click", () => { $("cell-detail").hidden = true; focused && focused.focus(); });
  $("select-failed").addEventListener("click", () => {
    for (const cell of grid.querySelectorAll(".cell.bad[data-k]")) if (!selected.has(Number(cell.dataset.k))) toggle(cell);
  });
  $("clear-selection").addEventListener("click", () => {
    for (const cell of grid.querySelectorAll(".cell.selected")) toggle(cell);
  });

  // A run of exactly the chosen cells, each rebuilt; the dialog shows its plan before anything runs.
  function rerunBody() {
    const chosen = [...selected].map((k) => cells[k]);
    const days = chosen.map((c) => c.date).sort();
    return { since: days[0], until: days[days.length - 1], versions: [...new Set(chosen.map((c) => c.version))].sort(),
      bundles: chosen.map((c) => c.bundle).sort(), reprocess: "all", force: false };
  }

  $("rerun").addEventListener("click", async () => {
    const body = rerunBody();
    $("rerun-plan").textContent = "Working out the plan…";
    $("rerun-list").replaceChildren();
    $("rerun-confirm").showModal();
    const { ok, data, items, n } = await SF.plan(body);
    $("rerun-plan").textContent = ok
      ? "The " + body.bundles.length + " chosen " + (body.bundles.length === 1 ? "bundle" : "bundles") + ", " +
        body.since + " … " + body.until + ": " + n + (n === 1 ? " bundle" : " bundles") + " to build."
      : SF.message(data);
    $("rerun-list").replaceChildren(...items.map((b) => SF.el("li", { class: "mono" }, b.bundle)));
  });
  $("rerun-confirm").addEventListener("close", async () => {
    if ($("rerun-confirm").returnValue !== "go") return;
    const { ok, data } = await SF.api("POST", "/api/v1/runs", rerunBody());
    if (ok && data && (data.run_id || data.id)) location.assign("/runs/" + encodeURIComponent(data.run_id || data.id));
    else SF.showError(SF.message(data));
  });

  (async () => {
    const payload = JSON.parse($("grid-data").textContent);
    cells = decode(payload);
    dates = [...payload.dates].sort();
    versions = [...payload.versions].sort();
    draw();
    legend();
    if (!cells.length) $("grid-summary").textContent = "No bundle has been run yet.";
    document.body.dataset.gridReady = String(Math.round(performance.now()));
  })();
})();
