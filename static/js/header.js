// What every page shows in its header and footer: the server's state and the token button.

import { api, authHeaders, getToken, setToken } from "./api.js";
import { onServerEvents } from "./serverevents.js";

// /api/health is read once (the executor, the devices, the version); the running and queued counts
// then follow the server's job events (GET /api/events: every event but progress carries them).
// Nothing is re-read on a timer: after the server was unreachable, health is read again once the
// event stream is back.
let server = null; // the last health read
let offline = false;
let pendingCounts = null; // counts that came before the first health read

function render(node) {
  if (!server) return;
  node.textContent = `${server.executor} · ${server.devices.join(", ")} · ${server.running} running, ${server.queued} queued`;
  node.title = `version ${server.version}, ${server.workers} workers`;
  node.classList.toggle("offline", offline);
}

async function showServerStatus() {
  const node = document.getElementById("server-status");
  if (!node) return null;
  try {
    server = await api.health();
    if (pendingCounts) server = { ...server, ...pendingCounts };
    pendingCounts = null;
    offline = false;
    render(node);
    return server;
  } catch (error) {
    offline = true;
    node.textContent = "server not answering";
    node.classList.add("offline");
    return null;
  }
}

function showCounts({ running, queued }) {
  const node = document.getElementById("server-status");
  if (!node || running === undefined) return;
  if (!server) {
    pendingCounts = { running, queued };
    return;
  }
  server = { ...server, running, queued };
  node.dataset.counts = `${running},${queued}`;
  render(node);
}

onServerEvents({
  counts: showCounts,
  connection(state) {
    const node = document.getElementById("server-status");
    if (state === "reopening" && node) {
      offline = true;
      node.textContent = "server not answering";
      node.classList.add("offline");
    } else if (state === "live" && offline) showServerStatus();
  },
});

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
// The parts of a page that depend on who reads it (the runs list's buttons) learn it here, without
// a request of their own: onSignedIn(handler) calls handler(me) now if known, and at every change.
let signedIn = null; // GET /api/me's answer, null until known or when not signed in
const signedInHandlers = new Set();

export function onSignedIn(handler) {
  signedInHandlers.add(handler);
  if (signedIn) handler(signedIn);
  return () => signedInHandlers.delete(handler);
}

async function showSignedIn() {
  const node = document.getElementById("signed-in");
  if (!node) return;
  let text = "";
  let me = null;
  try {
    const response = await fetch("/api/me", { headers: { Accept: "application/json", ...authHeaders() } });
    if (response.status === 401) text = "not signed in";
    else if (response.ok) {
      me = await response.json();
      if (me.role !== "open") text = me.name ? `${me.name} (${me.role})` : me.role;
    }
  } catch {
    // the server status says it is not answering
  }
  node.textContent = text ? `· ${text}` : "";
  node.hidden = !text;
  signedIn = me;
  if (me) for (const handler of signedInHandlers) handler(me);
}

wireTokenButton();
showSignedIn();
// After the token dialog closes (the footer's button, or a page's prompt on a 401), once the
// dialog's own close handler has saved the token.
document.getElementById("token-dialog")?.addEventListener("close", () => setTimeout(showSignedIn, 0));
export const health = showServerStatus();
