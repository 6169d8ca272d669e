// What a CIFAR classifier learned: the confusion matrix (click a cell for its validation images,
// then page through all of them), the accuracy per class, and sample images with true and
// predicted labels.

import { request } from "./api.js";
import { el, percent } from "./format.js";

const CELL_PAGE = 24; // images per page of a cell: four rows of six at laptop width

// The cell whose pictures the panel shows: a page that comes back after another cell was
// clicked is dropped.
let shownCell = null;

// White to blue by the share of a true class's images in the cell; the count is always written,
// so the colour only helps.
function cellColor(share) {
  const t = Math.min(1, Math.max(0, share));
  const from = [255, 255, 255];
  const to = [8, 69, 148];
  return `rgb(${from.map((c, i) => Math.round(c + t * (to[i] - c))).join(",")})`;
}

// jobId: the run's, when its weights can be asked for every picture of a cell (GET
// /api/jobs/{id}/confusion/{true}/{pred}); only the result's matrix is theirs, not an epoch's.
export function renderConfusion(container, detailBox, result, { jobId = null } = {}) {
  const classes = result.classes || [];
  const matrix = result.confusion_matrix || [];
  const examples = result.confusion_examples || {};
  const pager = jobId && result.confusion_examples ? jobId : null;
  const table = el("table", { class: "confusion" });
  table.append(el("caption", { class: "visually-hidden" }, "Confusion matrix: rows are the true class, columns what the model predicted."));
  const head = el("tr", {}, el("th", { scope: "col", class: "corner" }, "true ↓ / predicted →"));
  for (const name of classes) head.append(el("th", { scope: "col" }, el("span", { class: "col-label" }, name)));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const tr = el("tr", {}, el("th", { scope: "row" }, classes[i]));
    row.forEach((count, j) => {
      const share = count / total;
      const images = examples?.[classes[i]]?.[classes[j]] ?? examples?.[i]?.[j] ?? [];
      const button = el(
        "button",
        {
          type: "button",
          class: `cell${i === j ? " diagonal" : ""}`,
          style: `background:${cellColor(share)};color:${share > 0.45 ? "#fff" : "#111"}`,
          "aria-label": `${count} ${classes[i]} images predicted as ${classes[j]}`,
          dataset: { trueClass: classes[i], predClass: classes[j] },
          onclick: () => showCell(detailBox, { trueClass: classes[i], predClass: classes[j], i, j, count, images, jobId: pager }),
        },
        String(count),
      );
      tr.append(el("td", {}, button));
    });
    body.append(tr);
  });
  table.append(body);
  container.replaceChildren(
    el("div", { class: "table-scroll" }, table),
    el("p", { class: "help" }, "Rows: the true class; columns: what the model predicted. Click a cell to see its validation images."),
  );
}

// The cell's pictures: first the few the result keeps (no request), then, with "Show all", every
// one a page at a time from the API. Each picture opens in "Try it".
function showCell(box, cell) {
  const { trueClass, predClass, count, images } = cell;
  const shown = (shownCell = {});
  const title = trueClass === predClass
    ? `${trueClass}: correctly classified (${count})`
    : `${trueClass} taken for ${predClass} (${count})`;
  const grid = el("div", { class: "image-grid", dataset: { cellImages: "" } });
  images.forEach((src, k) => grid.append(pictureButton(cell, src, `${k + 1}`)));
  const note = el("p", { class: "muted small", dataset: { cellRange: "" } },
    images.length && images.length < count ? `Showing ${images.length} of ${count}.` : "");
  const pages = cell.jobId && count > images.length ? cellPages(cell, grid, note, () => shownCell === shown) : null;
  box.replaceChildren(
    el("h4", {}, title),
    images.length || pages
      ? grid
      : el("p", { class: "muted" }, count ? "No example images were kept for this cell." : "No validation images here."),
    note,
    pages,
    images.length || pages ? el("p", { class: "help" }, "Click a picture to see the model's answer and inside the net for it (under Try it).") : null,
  );
  box.hidden = false;
}

// "Show all N", then Previous / Next over pages of CELL_PAGE pictures (or as many as the server's
// answer says it gave per page). current(): whether the panel still shows this cell.
function cellPages(cell, grid, note, current) {
  const nav = el("nav", { class: "button-row", "aria-label": `Pages of ${cell.trueClass} predicted as ${cell.predClass}` });
  const showAll = el("button", { type: "button", class: "small", dataset: { cellShowAll: "" } }, `Show all ${cell.count}`);
  const previous = el("button", { type: "button", class: "small", dataset: { cellPrevious: "" } }, "Previous");
  const next = el("button", { type: "button", class: "small", dataset: { cellNext: "" } }, "Next");
  let offset = 0;
  let limit = CELL_PAGE;
  let total = cell.count;
  let loaded = false;

  function enable() {
    showAll.disabled = false;
    previous.disabled = offset === 0;
    next.disabled = offset + limit >= total;
  }

  async function load(to, focus) {
    for (const button of [showAll, previous, next]) button.disabled = true;
    nav.setAttribute("aria-busy", "true");
    note.textContent = loaded ? "Loading…" : "Looking at every test image again with the run's net (seconds the first time)…";
    try {
      const page = await request("GET", `/api/jobs/${encodeURIComponent(cell.jobId)}/confusion/${cell.i}/${cell.j}?offset=${to}&limit=${CELL_PAGE}`);
      if (!current()) return;
      offset = page.offset;
      limit = page.limit;
      total = page.count;
      loaded = true;
      grid.replaceChildren(...page.images.map((image) => pictureFigure(cell, image)));
      note.textContent = page.images.length
        ? `${offset + 1}–${offset + page.images.length} of ${total}`
        : `None here: the cell holds ${total}.`;
      showAll.remove();
      if (!previous.isConnected) nav.append(previous, next);
      enable();
      // Keyboard users stay on the control they used; one that just became disabled hands over
      // to the other, and a cell of one page to its first picture.
      const target = [focus, focus === next ? previous : next].find((button) => !button.disabled);
      (target ?? grid.querySelector("button"))?.focus();
    } catch (error) {
      if (!current()) return;
      note.replaceChildren(el("span", { class: "field-error" }, error.message));
      enable();
    } finally {
      nav.removeAttribute("aria-busy");
    }
  }

  showAll.addEventListener("click", () => load(0, next));
  previous.addEventListener("click", () => load(Math.max(0, offset - limit), previous));
  next.addEventListener("click", () => load(offset + limit, next));
  nav.append(showAll);
  return nav;
}

function pictureButton(cell, src, which) {
  const name = `${cell.trueClass}-as-${cell.predClass}-${which}.png`;
  return el(
    "button",
    {
      type: "button",
      class: "image-button",
      title: "Look inside the net for this picture",
      onclick: () => document.dispatchEvent(new CustomEvent("playground:look-inside", { detail: { src, name } })),
    },
    el("img", { src, alt: `${cell.trueClass} predicted as ${cell.predClass}: look inside the net`, width: "64", height: "64" }),
  );
}

// A page's picture: its place in the test split and how sure the net was, under it.
function pictureFigure(cell, { index, image, confidence }) {
  return el(
    "figure",
    { class: "sample", dataset: { testIndex: String(index) }, title: `Test image ${index}: ${percent(confidence)} ${cell.predClass}` },
    pictureButton(cell, image, `test-${index}`),
    el("figcaption", {}, `#${index} · ${percent(confidence)}`),
  );
}

export function renderPerClass(container, result) {
  const entries = Object.entries(result.per_class_acc || {});
  const list = el("table", { class: "per-class" });
  list.append(el("caption", { class: "visually-hidden" }, "Validation accuracy per class"));
  for (const [name, acc] of entries) {
    list.append(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, name),
        el("td", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${Math.round(100 * (acc ?? 0))}%` })),
        el("td", { class: "num" }, percent(acc)),
      ),
    );
  }
  container.replaceChildren(list);
}

export function renderSamples(container, result) {
  const grid = el("div", { class: "samples" });
  for (const sample of result.samples || []) {
    const right = sample.true === sample.pred;
    grid.append(
      el(
        "figure",
        { class: `sample ${right ? "right" : "wrong"}` },
        el("img", { src: sample.image, alt: `a ${sample.true}`, width: "64", height: "64" }),
        el(
          "figcaption",
          {},
          el("span", { class: "mark", "aria-hidden": "true" }, right ? "✓ " : "✗ "),
          `${sample.pred} `,
          el("span", { class: "muted" }, sample.confidence != null ? `${percent(sample.confidence)}` : ""),
          el("br"),
          el("span", { class: "small" }, right ? "correct" : `true: ${sample.true}`),
        ),
      ),
    );
  }
  container.replaceChildren(grid);
}
