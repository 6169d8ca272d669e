// What every page shows in its header and footer: the server's state and the token button.

import { api, getToken, setToken } from "./api.js";

async function showServerStatus() {
  const node = document.getElementById("server-status");
  if (!node) return;
  try {
    const health = await api.health();
    node.textContent = `${health.executor} · ${health.devices.join(", ")} · ${health.running} running, ${health.queued} queued`;
    node.title = `version ${health.version}, ${health.workers} workers`;
    return health;
  } catch (error) {
    node.textContent = "server not answering";
    node.classList.add("offline");
    return null;
  }
}

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

wireTokenButton();
export const health = showServerStatus();
