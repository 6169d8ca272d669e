// The list of runs: newest first, filtered by kind and status, kept current by polling the API
// (GET /api/jobs every two seconds while the tab is visible), with cancel, delete and a selection
// for Compare.

import { api } from "./api.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, keyResult, statusBadge, timeAgo } from "./format.js";

const POLL_MS = 2000;
const PAGE = 25;

export function mountJobList(root) {
  const rows = root.querySelector("[data-job-rows]");
  const count = root.querySelector("[data-job-count]");
  const more = root.querySelector("[data-more]");
  const kindFilter = root.querySelector("#filter-kind");
  const statusFilter = root.querySelector("#filter-status");
  const compareButton = root.querySelector("[data-compare-selected]");
  const selected = new Set();
  const rowById = new Map();
  let limit = PAGE;
  let timer = null;
  let inFlight = false;

  const filtersFromUrl = new URLSearchParams(location.search);
  if (root.dataset.syncUrl !== undefined) {
    kindFilter.value = filtersFromUrl.get("filter_kind") || "";
    statusFilter.value = filtersFromUrl.get("filter_status") || "";
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const page = await api.listJobs({ kind: kindFilter.value, status: statusFilter.value, limit });
      render(page);
      count.textContent = page.total
        ? `${page.items.length} of ${page.total} run${page.total === 1 ? "" : "s"}`
        : "No runs yet" + (kindFilter.value || statusFilter.value ? " that match the filters." : ".");
      more.hidden = page.items.length >= page.total;
    } catch (error) {
      count.textContent = `Could not load the runs: ${error.message}`;
    } finally {
      inFlight = false;
    }
  }

  function render(page) {
    const seen = new Set();
    let previous = null;
    for (const job of page.items) {
      seen.add(job.id);
      let row = rowById.get(job.id);
      if (!row) {
        row = createRow(job);
        rowById.set(job.id, row);
      }
      updateRow(row, job);
      // Keep the order of the answer without re-creating rows (focus stays where it was).
      const expectedNext = previous ? previous.nextSibling : rows.firstChild;
      if (expectedNext !== row) rows.insertBefore(row, expectedNext);
      previous = row;
    }
    for (const [id, row] of rowById) {
      if (!seen.has(id)) {
        row.remove();
        rowById.delete(id);
      }
    }
  }

  function createRow(job) {
    const checkbox = el("input", {
      type: "checkbox",
      "aria-label": `Select ${jobLabel(job)} for comparison`,
      onchange: (event) => {
        if (event.target.checked) selected.add(job.id);
        else selected.delete(job.id);
        compareButton.disabled = selected.size < 2;
      },
    });
    checkbox.checked = selected.has(job.id);
    const row = el("tr", { dataset: { jobId: job.id } });
    row.append(
      el("td", { class: "col-select" }, checkbox),
      el("td", { class: "job-name" }),
      el("td", { class: "col-kind" }, job.kind),
      el("td", { class: "job-status" }),
      el("td", { class: "job-result" }),
      el("td", { class: "job-duration col-duration" }),
      el("td", { class: "job-actions" }),
    );
    return row;
  }

  function updateRow(row, job) {
    const [, nameCell, , statusCell, resultCell, durationCell, actionsCell] = row.children;
    nameCell.replaceChildren(
      el("a", { href: `/jobs/${job.id}` }, jobLabel(job)),
      el(
        "span",
        { class: "muted small job-sub" },
        el("span", { class: "phone-only" }, `${job.kind} · `),
        timeAgo(job.created_at),
        job.started_at ? el("span", { class: "phone-only" }, ` · ${duration(elapsedMs(job))}`) : null,
      ),
    );
    if (row.dataset.status !== job.status) {
      row.dataset.status = job.status;
      statusCell.replaceChildren(statusBadge(job.status));
      actionsCell.replaceChildren(...actionButtons(job));
    }
    const progress = job.progress && job.status === "running" ? ` (epoch ${job.progress.epoch ?? 0}/${job.progress.epochs ?? "?"})` : "";
    resultCell.textContent = keyResult(job) + progress;
    durationCell.textContent = job.started_at ? duration(elapsedMs(job)) : "–";
  }

  function actionButtons(job) {
    if (!isTerminal(job.status)) {
      return [
        el("button", {
          type: "button",
          class: "small",
          "aria-label": `Cancel ${jobLabel(job)}`,
          onclick: (event) => act(event.target, () => api.cancelJob(job.id)),
        }, "Cancel"),
      ];
    }
    // Two clicks to delete: a run is lost for good.
    const button = el("button", { type: "button", class: "small danger", "aria-label": `Delete ${jobLabel(job)}` }, "Delete");
    button.addEventListener("click", () => {
      if (button.dataset.armed) {
        act(button, () => api.deleteJob(job.id));
        return;
      }
      button.dataset.armed = "1";
      button.textContent = "Really delete?";
      button.setAttribute("aria-label", `Really delete ${jobLabel(job)}?`);
      setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = "Delete";
        button.setAttribute("aria-label", `Delete ${jobLabel(job)}`);
      }, 4000);
    });
    return [button];
  }

  async function act(button, action) {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      count.textContent = error.message;
    }
    await refresh();
    button.disabled = false;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, POLL_MS);
  }

  for (const filter of [kindFilter, statusFilter]) {
    filter.addEventListener("change", () => {
      limit = PAGE;
      if (root.dataset.syncUrl !== undefined) {
        const query = new URLSearchParams(location.search);
        for (const [key, node] of [["filter_kind", kindFilter], ["filter_status", statusFilter]]) {
          if (node.value) query.set(key, node.value);
          else query.delete(key);
        }
        history.replaceState(null, "", `${location.pathname}${query.size ? `?${query}` : ""}`);
      }
      refresh();
    });
  }
  more.addEventListener("click", () => {
    limit += PAGE;
    refresh();
  });
  compareButton.addEventListener("click", () => {
    location.href = `/compare?ids=${[...selected].join(",")}`;
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });

  refresh();
  schedule();
  return { refresh };
}
