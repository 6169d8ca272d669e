// What every page shows in its header and footer: the server's state and the token button.

import { api, authHeaders, getToken, setToken } from "./api.js";

// The counts are re-read from /api/health (a few hundred bytes, no database read) every few
// seconds while the tab is in view, and at once when the page sees a run change (the job list's
// "playground:jobs-changed" event). A server-wide event stream will replace the timer.
const HEALTH_REFRESH_MS = 5000;
let refreshTimer = null;

async function showServerStatus() {
  const node = document.getElementById("server-status");
  if (!node) return null;
  clearTimeout(refreshTimer);
  try {
    const health = await api.health();
    node.textContent = `${health.executor} · ${health.devices.join(", ")} · ${health.running} running, ${health.queued} queued`;
    node.title = `version ${health.version}, ${health.workers} workers`;
    node.classList.remove("offline");
    return health;
  } catch (error) {
    node.textContent = "server not answering";
    node.classList.add("offline");
    return null;
  } finally {
    if (!document.hidden) refreshTimer = setTimeout(showServerStatus, HEALTH_REFRESH_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) showServerStatus();
});
document.addEventListener("playground:jobs-changed", () => showServerStatus());

function wireTokenButton() {
  const button = document.getElementById("token-button");
  const dialog = document.getElementById("token-dialog");
  if (!button || !dialog) return;
  button.addEventListener("click", () => {
    const input = dialog.querySelector("input[name=token]");
    dialog.querySelector("[data-token-message]").textContent = getToken()
      ? "A token is saved in this browser. Change it, or empty the field and save to forget it."
      : "Only needed when the server was started with PLAYGROUND_API_TOKEN.";
    input.value = getToken();
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "save") setToken(input.value.trim());
      },
      { once: true },
    );
    dialog.showModal();
  });
}

// Who is signed in (GET /api/me, issue 16): "ann (student)", "admin" for PLAYGROUND_API_TOKEN,
// nothing on an open server. A plain fetch: the header never prompts for a token (a page's own
// reads do, on their first 401).
async function showSignedIn() {
  const node = document.getElementById("signed-in");
  if (!node) return;
  let text = "";
  try {
    const response = await fetch("/api/me", { headers: { Accept: "application/json", ...authHeaders() } });
    if (response.status === 401) text = "not signed in";
    else if (response.ok) {
      const me = await response.json();
      if (me.role !== "open") text = me.name ? `${me.name} (${me.role})` : me.role;
    }
  } catch {
    // the server status says it is not answering
  }
  node.textContent = text ? `· ${text}` : "";
  node.hidden = !text;
}

wireTokenButton();
showSignedIn();
// After the token dialog closes (the footer's button, or a page's prompt on a 401), once the
// dialog's own close handler has saved the token.
document.getElementById("token-dialog")?.addEventListener("close", () => setTimeout(showSignedIn, 0));
export const health = showServerStatus();
