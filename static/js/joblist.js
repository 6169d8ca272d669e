// The list of runs: sorted and filtered by the server (kind, status, parameters and final metrics:
// GET /api/jobs?sort=...&filter=...), with cancel, delete, rename and a selection for Compare. It
// reads a page of summaries when the server's event stream says so (its first connection, a reset)
// or the order or filters change, and is kept current by the stream's job changes
// (static/js/serverevents.js): nothing polls. A change that moves a run in the order, or a new run
// that matches the filters where only the server knows its place, reads the page again. A status
// it sees change is announced to the page (the "playground:jobs-changed" event).

import { api, request } from "./api.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, keyResult, mayChange, statusBadge, timeAgo } from "./format.js";
import { onSignedIn } from "./header.js";
import { editInPlace, NAME_MAX, saveLabel } from "./labels.js";
import { onServerEvents } from "./serverevents.js";

const PAGE = 25;
const AGE_REDRAW_MS = 15_000;
// Where a filter's field is on a summary (app/job_filters.py): these in the result, these on the
// run itself, any other in its parameters.
const METRICS = new Set(["train_loss", "val_loss", "train_acc", "val_acc", "w", "b"]);
const COLUMNS = new Set(["name", "owner", "seed"]);
const OPERATOR = /^([a-z_]+)\s*(<=|>=|!=|=|<|>|~)\s*/;

// "lr = 0.01, val_acc>0.8" -> ["lr=0.01", "val_acc>0.8"]: one API filter per comma-separated part,
// without blanks around its operator.
export function parseWhere(text) {
  return String(text || "")
    .split(",")
    .map((part) => part.trim().replace(OPERATOR, "$1$2"))
    .filter(Boolean);
}

const asciiLower = (text) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

// Whether a summary meets one filter, as the server decides it (a run without the field never does).
function meets(job, condition) {
  const [, field, op, raw] = condition.match(/^([a-z_]+)(<=|>=|!=|=|<|>|~)(.*)$/s) || [];
  if (!field) return true; // the server took it, so it has this form
  const value = METRICS.has(field) ? job.result?.[field] : COLUMNS.has(field) ? job[field] : job.params?.[field];
  if (value === null || value === undefined) return false;
  if (op === "~") return asciiLower(String(value)).includes(asciiLower(raw));
  if (typeof value === "number") {
    const wanted = Number(raw);
    const near = Math.abs(value - wanted) <= Math.abs(wanted) * 1e-9;
    const results = { "=": near, "!=": !near, "<": value < wanted, "<=": value <= wanted, ">": value > wanted, ">=": value >= wanted };
    return results[op];
  }
  return op === "=" ? String(value) === raw : String(value) !== raw;
}

// What a run's place in an order depends on, besides its age.
function sortKey(job, sort) {
  const field = sort.replace(/^-/, "");
  if (field === "newest" || field === "oldest") return null;
  if (field === "name") return job.name ?? null;
  if (field === "status") return job.status;
  return job.result?.[field] ?? null;
}

export function mountJobList(root) {
  const rows = root.querySelector("[data-job-rows]");
  const count = root.querySelector("[data-job-count]");
  const announcer = root.querySelector("[data-job-announce]");
  const more = root.querySelector("[data-more]");
  const kindFilter = root.querySelector("#filter-kind");
  const statusFilter = root.querySelector("#filter-status");
  const sortSelect = root.querySelector("#sort-by");
  const whereInput = root.querySelector("#filter-where");
  const whereError = root.querySelector("[data-where-error]");
  const compareButton = root.querySelector("[data-compare-selected]");
  const selected = new Set();
  const rowById = new Map();
  let limit = PAGE;
  let page = null; // {items, total}: what the rows show
  let loading = null; // the list read under way
  let again = false; // another read was asked for while one was under way
  let pending = []; // events that came while a read was under way: applied after it
  let viewer = null; // who reads the list (GET /api/me): a student changes only their own runs
  let where = []; // the filters the rows are read with (the server took them)
  let tried = null; // filters typed and sent: the answer says whether the server takes them

  if (root.dataset.syncUrl !== undefined) {
    const fromUrl = new URLSearchParams(location.search);
    kindFilter.value = fromUrl.get("filter_kind") || "";
    statusFilter.value = fromUrl.get("filter_status") || "";
    sortSelect.value = fromUrl.get("sort") || "newest";
    if (!sortSelect.value) sortSelect.value = "newest"; // an order this page does not offer
    whereInput.value = fromUrl.get("filter") || "";
    if (whereInput.value) tried = parseWhere(whereInput.value); // an address edited by hand may hold a bad one
  }

  function listQuery() {
    const query = new URLSearchParams({ limit: String(limit) });
    if (kindFilter.value) query.set("kind", kindFilter.value);
    if (statusFilter.value) query.set("status", statusFilter.value);
    if (sortSelect.value !== "newest") query.set("sort", sortSelect.value);
    for (const condition of tried ?? where) query.append("filter", condition);
    return query;
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
          page = await request("GET", `/api/jobs?${listQuery()}`);
          if (tried) [where, tried] = [tried, null];
          showRefusal(null);
          const events = pending;
          pending = [];
          for (const [type, data] of events) apply(type, data, false);
          show();
        } catch (error) {
          if (tried && error.status === 422) {
            tried = null; // the rows stay those of the filters that were taken
            showRefusal(error);
            if (!page) again = true; // none yet: read them without
          } else count.textContent = `Could not load the runs: ${error.message}`;
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
      : "No runs yet" + (kindFilter.value || statusFilter.value || where.length ? " that match the filters." : ".");
    more.hidden = page.items.length >= page.total;
  }

  function showRefusal(error) {
    whereError.hidden = !error;
    whereError.textContent = error ? error.fieldErrors().map((e) => e.msg).join(" ") || error.message : "";
    if (error) whereInput.setAttribute("aria-invalid", "true");
    else whereInput.removeAttribute("aria-invalid");
  }

  const matches = (job) =>
    (!kindFilter.value || job.kind === kindFilter.value) &&
    (!statusFilter.value || job.status === statusFilter.value) &&
    where.every((condition) => meets(job, condition));

  // By age, a run past the page's last one belongs to a later page; in another order, where it
  // goes is the server's to say.
  const byAge = () => sortSelect.value === "newest" || sortSelect.value === "oldest";
  function onThisPage(job) {
    if (page.items.length < limit) return true;
    const last = page.items[page.items.length - 1].created_at;
    if (sortSelect.value === "newest") return job.created_at >= last;
    return sortSelect.value === "oldest" ? job.created_at <= last : true;
  }

  // A job change from the server's stream, applied to the page of runs shown; true when it needs
  // the list read again (a run that now matches the filters, or one that moves in the order).
  function apply(type, data, live = true) {
    if (loading && live) {
      pending.push([type, data]);
      return;
    }
    if (!page) return;
    const at = page.items.findIndex((job) => job.id === data.id);
    let reread = false;
    if (type === "created") {
      if (at < 0 && matches(data) && sortSelect.value === "newest") {
        page.items.unshift(data);
        page.total += 1;
        if (page.items.length > limit) page.items.pop();
      } else if (at < 0 && matches(data)) {
        if (onThisPage(data)) reread = true;
        else page.total += 1;
      }
    } else if (type === "status") {
      if (at >= 0 && matches(data)) {
        // A new name, status or final metric moves it in that order: the server places it.
        reread = !byAge() && sortKey(page.items[at], sortSelect.value) !== sortKey(data, sortSelect.value);
        page.items[at] = data;
      } else if (at >= 0) {
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
    row.job = job;
    // While its name is edited, the editor stays as it is; the rest of the row follows.
    const shown = `${jobLabel(job)} ${job.owner} ${mayChange(job, viewer)} ${job.created_at}`;
    if (!row.dataset.editing && (row.dataset.shown !== shown || !nameCell.firstChild)) {
      row.dataset.shown = shown;
      nameCell.replaceChildren(...nameParts(job));
    }
    if (!row.dataset.editing) updateSub(nameCell, job);
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

  // The name (a link to the run), Rename where the viewer may change it, and who made it when.
  function nameParts(job) {
    const link = el("a", { href: `/jobs/${job.id}` }, jobLabel(job));
    const rename = mayChange(job, viewer)
      ? el("button", {
          type: "button",
          class: "small",
          "aria-label": `Rename ${jobLabel(job)}`,
          dataset: { rename: "" },
          onclick: (event) => renameRow(event.currentTarget.closest("tr"), event.currentTarget),
        }, "Rename")
      : null;
    return [link, rename ? " " : null, rename, el("span", { class: "muted small job-sub" })];
  }

  function updateSub(nameCell, job) {
    const parts = [
      el("span", { class: "phone-only" }, `${job.kind} · `),
      job.owner ? `by ${job.owner} · ` : null,
      timeAgo(job.created_at),
      job.started_at ? el("span", { class: "phone-only" }, ` · ${duration(elapsedMs(job))}`) : null,
    ];
    // replaceChildren writes a null as the text "null": only the parts this run has.
    nameCell.querySelector(".job-sub")?.replaceChildren(...parts.filter((part) => part !== null));
  }

  // The name becomes a text field in place; the list's own row shows the new name at once, other
  // tabs' lists when the server's stream tells them.
  function renameRow(row, button) {
    const nameCell = row.children[1];
    const shown = el("span", {}, ...nameCell.childNodes);
    nameCell.replaceChildren(shown);
    row.dataset.editing = "1";
    editInPlace(shown, {
      value: row.job.name ?? "",
      label: `New name for ${jobLabel(row.job)}`,
      maxLength: NAME_MAX,
      save: async (name) => {
        // The row shows it now; the page's copy changes with the server's event, which also
        // tells whether the run moves in the order.
        const job = await saveLabel(row.job.id, { name: name || null });
        row.job = { ...row.job, name: job.name };
      },
      closed: () => {
        delete row.dataset.editing;
        delete row.dataset.shown;
        updateRow(row, row.job);
        row.querySelector("[data-rename]")?.focus();
      },
    });
    button.blur();
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

  // The page's address keeps the order and the filters (Back and reload restore them).
  function syncUrl() {
    if (root.dataset.syncUrl === undefined) return;
    const query = new URLSearchParams(location.search);
    const values = [
      ["filter_kind", kindFilter.value],
      ["filter_status", statusFilter.value],
      ["sort", sortSelect.value === "newest" ? "" : sortSelect.value],
      ["filter", where.join(", ")],
    ];
    for (const [key, value] of values) {
      if (value) query.set(key, value);
      else query.delete(key);
    }
    history.replaceState(null, "", `${location.pathname}${query.size ? `?${query}` : ""}`);
  }

  for (const filter of [kindFilter, statusFilter, sortSelect]) {
    filter.addEventListener("change", async () => {
      limit = PAGE;
      await refresh();
      syncUrl();
    });
  }
  // Filters apply on Enter (or the Filter button); a refused one leaves the rows as they were.
  whereInput.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    tried = parseWhere(whereInput.value);
    limit = PAGE;
    await refresh();
    syncUrl();
  });
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
