"use strict";
(() => {
  const value = document.getElementById("cursor-value");
  const status = document.getElementById("cursor-status");
  const dialog = document.getElementById("cursor-confirm");

  async function show() {
    const { ok, data } = await SF.api("GET", "/api/v1/cursor");
    if (!ok) { SF.showError(SF.message(data)); return; }
    const date = data && (data.cursor || data.last_date || data.date);
    value.textContent = date ? String(date) : "none yet: the next scheduled run processes every archive";
    value.dataset.cursor = date || "";
  }

  document.getElementById("cursor-reset").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "reset") return;
    const { ok, data } = await SF.api("DELETE", "/api/v1/cursor");
    status.textContent = ok ? "Cursor reset." : "Reset failed: " + SF.message(data);
    await show();
  });
  show();
})();
