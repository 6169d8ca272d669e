// "Try it": ask the trained model (POST /api/jobs/{id}/predict). A number in and the prediction
// out for the temperature models; an uploaded or dropped image and its class probabilities for
// CIFAR.

import { api } from "./api.js";
import { el, num, percent } from "./format.js";
import { showInside } from "./insideview.js";

// ownData: the run's own points, whose x and y are not the book's thermometers; example: the x the
// field starts with (one in the data's range).
export function mountNumberPredict(container, jobId, { ownData = false, example = 80 } = {}) {
  const input = el("input", { id: "predict-input", name: "x", type: "number", step: "any", value: String(example), inputmode: "decimal" });
  const output = el("output", { id: "predict-output", for: "predict-input", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "predict-form" },
    el("label", { for: "predict-input" }, ownData ? "Input x" : "Input x (like the book's t_u, the unknown thermometer)"),
    el("div", { class: "inline" }, input, el("button", { type: "submit" }, "Predict")),
    el("p", {}, ownData ? "Prediction y: " : "Prediction y (like t_c, °C): ", output),
  );
  // An answer belongs to the input it was asked for: a change clears it.
  let asked = 0;
  function show(text, value = null) {
    output.textContent = text;
    if (value === null) delete output.dataset.value;
    else output.dataset.value = String(value);
  }
  input.addEventListener("input", () => {
    asked += 1;
    show("");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    asked += 1;
    const question = asked;
    if (input.value.trim() === "") {
      show(input.validity.badInput ? "That is not a number." : "Type a number first.");
      return;
    }
    const x = Number(input.value);
    show("…");
    try {
      const { outputs } = await api.predictNumbers(jobId, [x]);
      if (question !== asked) return; // the input changed while the answer was on its way
      const y = outputs[0];
      if (typeof y === "number" && Number.isFinite(y)) show(num(y), y);
      else show(`no number: the model computes in 32-bit floats, whose largest value is about 3.4e38; ` +
        `with x = ${num(x)} its arithmetic overflows. Try an input nearer the data.`);
    } catch (error) {
      if (question === asked) show(error.message);
    }
  });
  container.replaceChildren(form);
}

export function mountImagePredict(container, jobId) {
  const fileInput = el("input", { id: "predict-file", name: "file", type: "file", accept: "image/*" });
  const preview = el("img", { class: "preview", alt: "", hidden: true, width: "96", height: "96" });
  const results = el("div", { class: "probabilities", "aria-live": "polite" });
  const insideBox = el("div", { class: "inside", dataset: { inside: "" } });
  const drop = el(
    "div",
    { class: "drop-zone", tabindex: "-1" },
    el("label", { for: "predict-file" }, "Choose an image, or drop one here"),
    fileInput,
    preview,
  );

  async function predict(file) {
    if (!file) return;
    preview.src = URL.createObjectURL(file);
    preview.alt = `uploaded ${file.name}`;
    preview.hidden = false;
    results.replaceChildren(el("p", { class: "muted" }, "Asking the model…"));
    try {
      const answer = await api.predictImage(jobId, file);
      const rows = Object.entries(answer.probabilities).sort((a, b) => b[1] - a[1]);
      const table = el("table", { class: "per-class" });
      table.append(el("caption", {}, el("strong", { dataset: { predictedLabel: answer.label } }, answer.label), " is the model's answer"));
      for (const [name, p] of rows) {
        table.append(
          el(
            "tr",
            {},
            el("th", { scope: "row" }, name),
            el("td", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${Math.round(100 * p)}%` })),
            el("td", { class: "num" }, percent(p)),
          ),
        );
      }
      results.replaceChildren(table);
    } catch (error) {
      results.replaceChildren(el("p", { class: "field-error" }, error.message));
      return;
    }
    await showInside(insideBox, jobId, file);
  }

  // An image picked elsewhere on the page (a confusion cell's example) is asked about here.
  document.addEventListener("playground:look-inside", (event) => {
    // Decoded here: the page's Content-Security-Policy (connect-src 'self') does not let fetch() read a data: URI.
    const [header, base64] = event.detail.src.split(",", 2);
    const type = header.slice("data:".length).split(";")[0] || "image/png";
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    container.closest("section")?.scrollIntoView({ block: "start" });
    predict(new File([bytes], event.detail.name || "example.png", { type }));
  });

  fileInput.addEventListener("change", () => predict(fileInput.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    predict(event.dataTransfer.files[0]);
  });
  container.replaceChildren(drop, results, insideBox);
}
