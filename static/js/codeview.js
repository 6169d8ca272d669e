// The run as code, on its page: the standalone PyTorch script GET /api/jobs/{id}/script exports
// (its data, model, seed, optimizer and live changes), highlighted with the vendored highlight.js,
// with a copy button and the .py and .ipynb downloads. Nothing is fetched until it is opened.

import { authHeaders } from "./api.js";

const HIGHLIGHT = "/static/vendor/highlight";

async function highlighter() {
  if (!document.querySelector(`link[href="${HIGHLIGHT}/github.min.css"]`)) {
    document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: `${HIGHLIGHT}/github.min.css` }));
  }
  const [{ default: hljs }, { default: python }] = await Promise.all([
    import(`${HIGHLIGHT}/core.min.js`),
    import(`${HIGHLIGHT}/python.min.js`),
  ]);
  hljs.registerLanguage("python", python);
  return hljs;
}

export class CodePanel {
  constructor(root, jobId) {
    this.$ = (selector) => root.querySelector(selector);
    this.jobId = jobId;
    this.text = null;
    this.box = this.$("[data-code]");
    this.code = this.box.querySelector("code");
    this.showButton = this.$("[data-code-show]");
    this.copyButton = this.$("[data-code-copy]");
    this.message = this.$("[data-code-message]");
    const base = `/api/jobs/${encodeURIComponent(jobId)}/script`;
    this.$("[data-code-py]").href = `${base}?format=py`;
    this.$("[data-code-ipynb]").href = `${base}?format=ipynb`;
    this.showButton.addEventListener("click", () => this.toggle());
    this.copyButton.addEventListener("click", () => this.copy());
  }

  async toggle() {
    const open = this.box.hidden;
    this.showButton.setAttribute("aria-expanded", String(open));
    this.showButton.textContent = open ? "Hide the script" : "Show the script";
    if (!open) {
      this.box.hidden = true;
      this.copyButton.hidden = true;
      return;
    }
    // Read again each time it is opened: a run that goes on (or was changed live) changes its script.
    this.message.textContent = "Loading the script…";
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(this.jobId)}/script?format=py`, { headers: authHeaders() });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(typeof body.detail === "string" ? body.detail : `The server answered ${response.status}.`);
      }
      this.text = await response.text();
      const hljs = await highlighter();
      this.code.innerHTML = hljs.highlight(this.text, { language: "python" }).value; // hljs escapes the text
      this.box.dataset.lines = String(this.text.split("\n").length); // for the tests
      this.box.hidden = false;
      this.copyButton.hidden = false;
      this.message.textContent = "";
    } catch (error) {
      this.message.textContent = `No script: ${error.message}`;
      this.showButton.setAttribute("aria-expanded", "false");
      this.showButton.textContent = "Show the script";
    }
  }

  async copy() {
    try {
      await navigator.clipboard.writeText(this.text);
      this.message.textContent = "Copied: paste it into a file and run it with python.";
    } catch {
      // No clipboard (an insecure origin, a refused permission): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(this.code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      this.message.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  }
}
