"use strict";
(() => {
  const form = document.getElementById("execute");
  const backfill = document.getElementById("backfill");
  const windowSet = document.getElementById("window");
  const note = document.getElementById("scheduled-note");
  const count = document.getElementById("preview-count");
  const details = document.getElementById("preview-details");
  const list = document.getElementById("preview-list");
  const previewError = document.getElementById("preview-error");
  const formError = document.getElementById("form-error");
  const $cursor = document.getElementById("scheduled-cursor");
  const FIELDS = ["since", "until", "versions"];
  let sequence = 0, timer = null;

  function choice() {
    const versions = [...form.querySelectorAll("input[name=versions]:checked")].map((i) => i.value);
    const body = {
      versions: versions.length ? versions : null,
      reprocess: form.querySelector("input[name=reprocess]:checked").value,
      force: document.getElementById("force").checked,
    };
    if (backfill.checked) {
      body.since = form.since.value || null;
      body.until = form.until.value || null;
    }
    return body;
  }

  function clearErrors() {
    for (const name of FIELDS) {
      document.getElementById(name + "-error").textContent = "";
      const input = document.getElementById(name);
      input && input.removeAttribute("aria-invalid");
    }
    previewError.textContent = "";
    formError.hidden = true;
  }

  // An error answer shown next to the field it is about (the API's own message), else under the form.
  function showFieldError(data, fallback) {
    const field = SF.fieldOf(data, backfill.checked ? FIELDS : ["versions"]);
    const text = SF.message(data);
    if (field) {
      document.getElementById(field + "-error").textContent = text;
      document.getElementById(field).setAttribute("aria-invalid", "true");
    } else {
      fallback.textContent = text;
      fallback.hidden = false;
    }
  }

  async function preview() {
    const mine = ++sequence;
    delete count.dataset.count; // never leave a stale figure for the old choice
    clearErrors();
    const c = choice();
    if (backfill.checked && !c.since) {
      count.textContent = "Choose the first date of the window.";
      details.hidden = true;
      return;
    }
    count.textContent = "Working out the plan…";
    const { ok, data, items, n } = await SF.plan(c, () => mine !== sequence);
    if (mine !== sequence) return; // a newer choice was made meanwhile
    if (!ok) {
      count.textContent = "No plan for this choice.";
      details.hidden = true;
      showFieldError(data, previewError);
      return;
    }
    const fresh = data && Number.isInteger(data.up_to_date) ? ", " + data.up_to_date + " up to date" : "";
    count.textContent = n + (n === 1 ? " bundle" : " bundles") + " to build" + fresh + (data && data.note ? " — " + data.note : "");
    count.dataset.count = n;
    list.replaceChildren(...items.map((b) => SF.el("li", { dataset: { bundle: b.bundle } },
      SF.el("span", { class: "mono" }, b.bundle), b.reason ? " — " + b.reason : "",
      b.detail ? SF.el("span", { class: "hint" }, " (" + b.detail + ")") : "")));
    // why, in one line: "3 new archive; 1 archive bytes changed"
    const why = new Map();
    for (const b of items) if (b.reason) why.set(b.reason, (why.get(b.reason) || 0) + 1);
    details.querySelector("summary").textContent = "Show the bundles" +
      (why.size ? " (" + [...why].map(([r, k]) => k + " " + r).join("; ") + ")" : "");
    details.hidden = !items.length;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(preview, 250);
  }

  backfill.addEventListener("change", () => {
    windowSet.hidden = !backfill.checked;
    note.hidden = backfill.checked;
    if (backfill.checked) form.since.focus();
    schedule();
  });
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const button = document.getElementById("submit");
    button.disabled = true;
    const { ok, status, data } = await SF.api("POST", "/api/v1/runs", choice());
    button.disabled = false;
    if (ok && data && (data.run_id || data.id)) {
      location.assign("/runs/" + encodeURIComponent(data.run_id || data.id));
      return;
    }
    if (status === 409) {
      const active = data && data.detail && (data.detail.run_id || data.detail.active_run_id);
      formError.replaceChildren(SF.message(data), active ? " " : "",
        active ? SF.el("a", { href: "/runs/" + encodeURIComponent(active) }, "Open the active run") : "");
      formError.hidden = false;
      return;
    }
    showFieldError(data, formError);
  });

  windowSet.hidden = !backfill.checked;
  note.hidden = backfill.checked;
  preview();
  SF.api("GET", "/api/v1/cursor").then(({ ok, data }) => {
    if (ok) $cursor.textContent = data && data.cursor ? "cursor at " + data.cursor : "no cursor yet: every archive";
  });
})();
