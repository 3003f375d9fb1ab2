// Shared helpers for the sheetfill pages. Values from the API only ever reach the page as text
// (textContent, attributes set one by one): no HTML is built from data anywhere.
"use strict";
const SF = (() => {
  const TOKEN_KEY = "sheetfill-token";

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    if (token()) h.Authorization = "Bearer " + token();
    return h;
  }

  function toLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // One API call: {ok, status, data}. A 401 means the session has no (valid) token: log in again.
  async function api(method, path, body) {
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, data: { detail: "The server cannot be reached (" + e.message + ")." } };
    }
    if (response.status === 401 && document.body.dataset.needsToken === "yes") { toLogin(); }
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    return { ok: response.ok, status: response.status, data };
  }

  // The message of an error answer, whatever shape FastAPI or the service gave it.
  function message(data) {
    if (!data) return "Unknown error.";
    const d = data.detail !== undefined ? data.detail : data;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((x) => (x && (x.msg || x.message)) || String(x)).join(" ");
    if (d && typeof d === "object") return d.message || d.msg || d.error || JSON.stringify(d);
    return String(d);
  }

  // Which form field an error answer is about: its loc / field, else a name it starts with.
  function fieldOf(data, names) {
    const d = data && data.detail;
    const items = Array.isArray(d) ? d : d && typeof d === "object" ? [d] : [];
    for (const item of items) {
      const loc = [].concat(item.loc || [], item.field || [], item.fields || []);
      for (const name of names) if (loc.includes(name)) return name;
    }
    const text = message(data);
    let best = null, at = Infinity;
    for (const name of names) {
      const i = text.search(new RegExp("\\b" + name + "\\b"));
      if (i >= 0 && i < at) { best = name; at = i; }
    }
    return best;
  }

  // el("td", {class: "x", href: ...}, child, "text", ...): children are nodes or plain text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function seconds(value) {
    if (value === null || value === undefined || value === "") return null;
    if (typeof value === "number") return value > 1e11 ? value / 1000 : value;
    const t = Date.parse(value);
    return Number.isNaN(t) ? null : t / 1000;
  }

  function duration(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60), r = s % 60;
    if (m < 60) return m + " min" + (r ? " " + r + " s" : "");
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function when(value) {
    const s = seconds(value);
    return s === null ? "–" : new Date(s * 1000).toLocaleString();
  }

  function showError(text) {
    const box = document.getElementById("page-error");
    box.textContent = text;
    box.hidden = !text;
  }

  // Who started a run, in the words of the docs: the REST API (this service), the CLI, Python, snakemake.
  const ORIGINS = { service: "API (web UI or REST)", api: "Python API", cli: "CLI", snakemake: "snakemake" };
  function originLabel(origin) { return origin ? ORIGINS[origin] || String(origin) : null; }

  // Normalised view of one run from the API, so pages do not care about field spellings.
  function run(r) {
    const counts = r.counts || {};
    const pick = (...keys) => { for (const k of keys) { if (r[k] !== undefined && r[k] !== null) return r[k]; if (counts[k] !== undefined && counts[k] !== null) return counts[k]; } return null; };
    return {
      id: pick("run_id", "id"),
      status: pick("status") || "unknown",
      kind: pick("kind") || (r.since ? "backfill" : "scheduled"),
      since: pick("since"), until: pick("until"),
      versions: pick("versions"),
      reprocess: pick("reprocess"),
      source: originLabel(pick("started_by", "source", "origin", "entry_point", "front_end")),
      created: seconds(pick("created", "created_at")),
      started: seconds(pick("started", "started_at")),
      finished: seconds(pick("finished", "finished_at")),
      error: pick("error"),
      exitCode: pick("exit_code"),
      total: pick("total", "bundles_total", "bundles_planned", "planned"),
      done: pick("done", "bundles_done", "finished_bundles"),
      failed: pick("failed", "bundles_failed", "failures"),
      bundles: Array.isArray(r.bundles) ? r.bundles : null,
    };
  }

  function windowText(r) {
    const v = Array.isArray(r.versions) && r.versions.length ? r.versions.join(", ") : "all versions";
    if (!r.since && !r.until) return "after the cursor · " + v;
    return (r.since || "first") + " … " + (r.until || "newest") + " · " + v;
  }

  const FAILED = /fail|error/;
  const FINAL = new Set(["succeeded", "completed_with_failures", "failed", "cancelled"]);
  function statusClass(status) {
    const s = String(status || "unknown").toLowerCase();
    if (s.includes("processing")) return "bad processing"; // could not be read at all: a darker red
    if (FAILED.test(s) || s === "completed_with_failures") return "bad";
    if (s === "ok" || s === "succeeded" || s === "built" || s === "done") return "good";
    if (s === "running" || s === "cancelling") return "busy";
    if (s === "cancelled") return "warn";
    if (s === "skipped" || s === "up_to_date" || s === "uptodate") return "quiet";
    return "idle";
  }

  function badge(status) {
    return el("span", { class: "badge " + statusClass(status), dataset: { status: status || "" } }, status || "unknown");
  }

  // Server-sent events over fetch (so the Bearer header goes along), resumed with Last-Event-ID
  // after any drop, e.g. a server restart. onEvent(type, data, id); stop with the returned function.
  function stream(url, onEvent, onState) {
    let lastId = null, stopped = false, controller = null, delay = 500;
    async function connect() {
      while (!stopped) {
        controller = new AbortController();
        const h = headers({ Accept: "text/event-stream" });
        if (lastId !== null) h["Last-Event-ID"] = lastId;
        try {
          const response = await fetch(url, { headers: h, signal: controller.signal, cache: "no-store" });
          if (response.status === 401 && document.body.dataset.needsToken === "yes") { toLogin(); return; }
          if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
          onState && onState("live");
          delay = 500;
          await read(response.body.getReader());
          onState && onState("ended");
        } catch (e) {
          if (stopped) return;
          onState && onState("reconnecting");
        }
        if (stopped) return;
        await new Promise((ok) => setTimeout(ok, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
    async function read(reader) {
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let type = "message", data = [], id = null;
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") type = val;
            else if (field === "data") data.push(val);
            else if (field === "id") id = val;
          }
          if (id !== null) lastId = id;
          if (data.length || type !== "message") {
            let parsed = data.join("\n");
            try { parsed = JSON.parse(parsed); } catch (e) { /* plain text event */ }
            onEvent(type, parsed, id);
          }
        }
      }
    }
    connect();
    return () => { stopped = true; controller && controller.abort(); };
  }

  function planItems(data) {
    const raw = Array.isArray(data) ? data : (data && (data.bundles || data.planned || data.items)) || [];
    return raw.map((b) => (typeof b === "string" ? { bundle: b, reason: "" } : b));
  }

  // Bundles of the window whose latest result is a failure, and that the plan does not list already.
  async function failedInWindow(c, planned) {
    const query = new URLSearchParams({ limit: "10000" });
    if (c.since) query.set("since", c.since);
    if (c.until) query.set("until", c.until);
    const { ok, data } = await api("GET", "/api/v1/bundles?" + query);
    if (!ok) return [];
    return ((data && data.bundles) || [])
      .filter((b) => FAILED.test(String(b.status)) && !planned.has(b.bundle))
      .filter((b) => !c.versions || c.versions.includes(String(b.bundle).split("--")[1]))
      .map((b) => b.bundle);
  }

  // What a run of choice c {since, until, versions, reprocess, force} would build: Snakemake's plan
  // (GET /api/v1/plan: what is stale, and why) plus what reprocess forces on top of it.
  // {ok, data, items: [{bundle, reason, detail}], n}; data.up_to_date is what stays as it is.
  async function plan(c, stale) {
    const query = new URLSearchParams();
    if (c.since) query.set("since", c.since);
    if (c.until) query.set("until", c.until);
    if (c.versions) query.set("versions", c.versions.join(","));
    if (c.bundles) query.set("bundles", c.bundles.join(","));
    const { ok, data } = await api("GET", "/api/v1/plan?" + query);
    if (!ok) return { ok, data, items: [], n: 0 };
    const items = planItems(data);
    const upToDate = Number.isInteger(data.up_to_date) ? data.up_to_date : 0;
    let n = items.length;
    if (c.force || c.reprocess === "all") {
      n += upToDate;
      const listed = new Set(items.map((b) => b.bundle));
      const chosen = (c.bundles || []).filter((b) => !listed.has(b));
      if (chosen.length) items.push(...chosen.map((bundle) => ({ bundle, reason: "forced (chosen to re-run)" })));
      else if (upToDate) items.push({ bundle: "+ " + upToDate + " up to date", reason: "forced (reprocess all)" });
      data.up_to_date = 0;
    } else if (c.reprocess === "failed" && !(stale && stale())) {
      const failed = await failedInWindow(c, new Set(items.map((b) => b.bundle)));
      for (const bundle of failed) items.push({ bundle, reason: "failed last time" });
      n += failed.length;
      data.up_to_date = Math.max(0, upToDate - failed.length);
    }
    return { ok, data, items, n };
  }

  function setToken(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode: cookie still works for pages */ }
  }

  return { api, message, fieldOf, el, duration, when, seconds, showError, run, windowText, statusClass, badge,
    stream, setToken, plan, FINAL, FAILED };
})();
