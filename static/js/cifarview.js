// What a CIFAR classifier learned: the confusion matrix (click a cell for its validation images),
// the accuracy per class, and sample images with true and predicted labels.

import { el, percent } from "./format.js";

// White to blue by the share of a true class's images in the cell; the count is always written,
// so the colour only helps.
function cellColor(share) {
  const t = Math.min(1, Math.max(0, share));
  const from = [255, 255, 255];
  const to = [8, 69, 148];
  return `rgb(${from.map((c, i) => Math.round(c + t * (to[i] - c))).join(",")})`;
}

export function renderConfusion(container, detailBox, result) {
  const classes = result.classes || [];
  const matrix = result.confusion_matrix || [];
  const examples = result.confusion_examples || {};
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
          onclick: () => showCell(detailBox, classes[i], classes[j], count, images),
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

function showCell(box, trueClass, predClass, count, images) {
  const title = trueClass === predClass
    ? `${trueClass}: correctly classified (${count})`
    : `${trueClass} taken for ${predClass} (${count})`;
  const grid = el("div", { class: "image-grid" });
  // Each picture opens in "Try it": the model's answer and the view inside the net for it.
  images.forEach((src, k) => {
    const name = `${trueClass}-as-${predClass}-${k + 1}.png`;
    grid.append(
      el(
        "button",
        {
          type: "button",
          class: "image-button",
          title: "Look inside the net for this picture",
          onclick: () => document.dispatchEvent(new CustomEvent("playground:look-inside", { detail: { src, name } })),
        },
        el("img", { src, alt: `${trueClass} predicted as ${predClass}: look inside the net`, width: "64", height: "64" }),
      ),
    );
  });
  box.replaceChildren(
    el("h4", {}, title),
    images.length
      ? grid
      : el("p", { class: "muted" }, count ? "No example images were kept for this cell." : "No validation images here."),
    images.length && images.length < count ? el("p", { class: "muted small" }, `Showing ${images.length} of ${count}.`) : null,
    images.length ? el("p", { class: "help" }, "Click a picture to see the model's answer and inside the net for it (under Try it).") : null,
  );
  box.hidden = false;
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
