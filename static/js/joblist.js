// The list of runs: newest first, filtered by kind and status, with cancel, delete and a selection
// for Compare. It reads a page of summaries (GET /api/jobs) when the server's event stream says so
// (its first connection, a reset) or the filters change, and is kept current by the stream's job
// changes (static/js/serverevents.js): nothing polls. A status it sees change is announced to the
// page (the "playground:jobs-changed" event).

import { api } from "./api.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, keyResult, mayChange, statusBadge, timeAgo } from "./format.js";
import { onSignedIn } from "./header.js";
import { onServerEvents } from "./serverevents.js";

const PAGE = 25;
const AGE_REDRAW_MS = 15_000;

export function mountJobList(root) {
  const rows = root.querySelector("[data-job-rows]");
  const count = root.querySelector("[data-job-count]");
  const announcer = root.querySelector("[data-job-announce]");
  const more = root.querySelector("[data-more]");
  const kindFilter = root.querySelector("#filter-kind");
  const statusFilter = root.querySelector("#filter-status");
  const compareButton = root.querySelector("[data-compare-selected]");
  const selected = new Set();
  const rowById = new Map();
  let limit = PAGE;
  let page = null; // {items, total}: what the rows show
  let loading = null; // the list read under way
  let again = false; // another read was asked for while one was under way
  let pending = []; // events that came while a read was under way: applied after it
  let viewer = null; // who reads the list (GET /api/me): a student changes only their own runs

  const filtersFromUrl = new URLSearchParams(location.search);
  if (root.dataset.syncUrl !== undefined) {
    kindFilter.value = filtersFromUrl.get("filter_kind") || "";
    statusFilter.value = filtersFromUrl.get("filter_status") || "";
  }

  function refresh() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        try {
          page = await api.listJobs({ kind: kindFilter.value, status: statusFilter.value, limit });
          const events = pending;
          pending = [];
          for (const [type, data] of events) apply(type, data, false);
          show();
        } catch (error) {
          count.textContent = `Could not load the runs: ${error.message}`;
        }
      } while (again);
      loading = null;
    })();
    return loading;
  }

  function show() {
    render(page);
    count.textContent = page.total
      ? `${page.items.length} of ${page.total} run${page.total === 1 ? "" : "s"}`
      : "No runs yet" + (kindFilter.value || statusFilter.value ? " that match the filters." : ".");
    more.hidden = page.items.length >= page.total;
  }

  const matches = (job) => (!kindFilter.value || job.kind === kindFilter.value) && (!statusFilter.value || job.status === statusFilter.value);

  // Newest first: a run older than the page's last one belongs to a later page.
  const onThisPage = (job) => page.items.length < limit || job.created_at >= page.items[page.items.length - 1].created_at;

  // A job change from the server's stream, applied to the page of runs shown; true when it needs
  // the list read again (a run that now matches the status filter: where it goes in the order).
  function apply(type, data, live = true) {
    if (loading && live) {
      pending.push([type, data]);
      return;
    }
    if (!page) return;
    const at = page.items.findIndex((job) => job.id === data.id);
    let reread = false;
    if (type === "created") {
      if (at < 0 && matches(data)) {
        page.items.unshift(data);
        page.total += 1;
        if (page.items.length > limit) page.items.pop();
      }
    } else if (type === "status") {
      if (at >= 0 && matches(data)) page.items[at] = data;
      else if (at >= 0) {
        page.items.splice(at, 1);
        page.total -= 1;
        reread = page.total > page.items.length;
      } else if (matches(data) && onThisPage(data)) reread = true;
    } else if (type === "progress") {
      if (at >= 0) page.items[at] = { ...page.items[at], progress: data.progress };
    } else if (type === "deleted") {
      if (at >= 0) {
        page.items.splice(at, 1);
        page.total -= 1;
        reread = page.total > page.items.length;
      }
    }
    if (reread && live) refresh();
    else if (live) show();
  }

  function render(page) {
    const seen = new Set();
    let previous = null;
    let changed = false;
    for (const job of page.items) {
      seen.add(job.id);
      let row = rowById.get(job.id);
      if (!row) {
        row = createRow(job);
        rowById.set(job.id, row);
        changed = true;
      } else if (row.dataset.status !== job.status) changed = true;
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
        changed = true;
      }
    }
    if (changed) document.dispatchEvent(new CustomEvent("playground:jobs-changed"));
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
        job.owner ? `by ${job.owner} · ` : null,
        timeAgo(job.created_at),
        job.started_at ? el("span", { class: "phone-only" }, ` · ${duration(elapsedMs(job))}`) : null,
      ),
    );
    const actions = `${job.status} ${mayChange(job, viewer)}`;
    if (row.dataset.status !== job.status || row.dataset.actions !== actions) {
      row.dataset.status = job.status;
      row.dataset.actions = actions;
      statusCell.replaceChildren(statusBadge(job.status));
      // Cancel becomes Delete: a keyboard user's focus moves to the new button, not to the page.
      const hadFocus = actionsCell.contains(document.activeElement);
      actionsCell.replaceChildren(...actionButtons(job));
      if (hadFocus) actionsCell.querySelector("button")?.focus();
    }
    const progress = job.progress && job.status === "running" ? ` (epoch ${job.progress.epoch ?? 0}/${job.progress.epochs ?? "?"})` : "";
    resultCell.textContent = keyResult(job) + progress;
    durationCell.textContent = job.started_at ? duration(elapsedMs(job)) : "–";
  }

  function actionButtons(job) {
    // Another student's run: its page offers "Continue from a step"; here, nothing to press (the
    // server would answer 403).
    if (!mayChange(job, viewer)) return [];
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
        act(button, () => api.deleteJob(job.id), { removes: `Deleted ${jobLabel(job)}.` });
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

  // removes: the message once the action has taken the button's row away; focus goes to the
  // next run's button (the previous run's at the end of the list, else the list's count line).
  async function act(button, action, { removes = null } = {}) {
    const row = button.closest("tr");
    const neighbours = removes ? [row.nextElementSibling, row.previousElementSibling] : [];
    button.disabled = true;
    let failed = false;
    try {
      await action();
    } catch (error) {
      failed = true;
      count.textContent = error.message;
    }
    await refresh();
    button.disabled = false;
    if (!removes || row.isConnected) return;
    const next = neighbours.find((node) => node?.isConnected);
    const target = next?.querySelector(".job-actions button") ?? next?.querySelector("a") ?? count;
    target.focus();
    if (!failed) announcer.textContent = removes;
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
  // "2 minutes ago" and the durations move on without a request: the rows are redrawn from what
  // the page has.
  setInterval(() => page && !loading && !document.hidden && show(), AGE_REDRAW_MS);
  onSignedIn((me) => {
    viewer = me;
    if (page) show();
  });
  onServerEvents({
    reload: refresh,
    // The stream cannot open (the server refuses it, or wants a token first): the list once anyway.
    connection: (state) => state === "reopening" && !page && !loading && refresh(),
    created: (job) => apply("created", job),
    status: (job) => apply("status", job),
    progress: (change) => apply("progress", change),
    deleted: (change) => apply("deleted", change),
  });
  return { refresh };
}
