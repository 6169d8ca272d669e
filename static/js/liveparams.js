// Inputs for the live parameters of a kind (those its JSON Schema marks "x-live": true): the
// learning rate as a log-scale slider with a number beside it, other numbers as number inputs,
// switches as checkboxes. Used by the run page's controls (a change is PATCHed to the running
// job) and by its fork form (the values of the new run).

import { el, num } from "./format.js";

// The live parameters of a kind's schema, in the schema's order: [[name, property schema]].
export function liveProperties(kindInfo) {
  const properties = kindInfo?.params_schema?.properties ?? {};
  return Object.entries(properties).filter(([, schema]) => schema["x-live"] === true);
}

// Numbers the slider shows: 3 significant digits (0.00316, not 0.0031622776601683794).
function round3(value) {
  return Number(value.toPrecision(3));
}

// The slider's range in log10 units: the schema's bounds, or 1e-6 for a bound that is only "> 0".
function logRange(schema) {
  const lower = schema.minimum > 0 ? schema.minimum : schema.exclusiveMinimum > 0 ? schema.exclusiveMinimum : 1e-6;
  const upper = schema.maximum ?? schema.exclusiveMaximum ?? 10;
  return [Math.floor(Math.log10(lower)), Math.ceil(Math.log10(upper))];
}

// A learning rate (or any positive number whose scale matters more than its digits) is set on a
// log scale: a step of the slider multiplies it, from 1e-6 to the schema's maximum.
function isLogScale(name, schema) {
  return schema.type === "number" && (name === "lr" || name.endsWith("_lr"));
}

// One field: {node, name, value (get/set), setError(message), setDisabled(flag), focused()}.
//   onCommit(value): the user settled on a value (the slider let go, Enter or leaving the number).
export function liveField(name, schema, value, { idPrefix, onCommit }) {
  const id = `${idPrefix}-${name}`;
  const errorId = `${id}-error`;
  const error = el("p", { class: "field-error", id: errorId, role: "alert", hidden: true });
  const describe = schema.description ? `${id}-help` : null;
  const help = describe ? el("p", { class: "help", id: describe }, schema.description) : null;
  const describedBy = [errorId, describe].filter(Boolean).join(" ");
  let inputs;
  let read;
  let write;

  if (schema.type === "boolean") {
    const box = el("input", { type: "checkbox", id, name, "aria-describedby": describedBy });
    read = () => box.checked;
    write = (v) => (box.checked = Boolean(v));
    box.addEventListener("change", () => onCommit(read()));
    inputs = [box];
    const node = el("div", { class: "field live-field", dataset: { live: name } },
      el("div", { class: "checkbox-row" }, box, el("label", { for: id }, name)), help, error);
    return finish(node);
  }

  const integer = schema.type === "integer";
  const number = el("input", {
    type: "number",
    id,
    name,
    step: integer ? "1" : "any",
    min: schema.minimum,
    max: schema.maximum,
    "aria-describedby": describedBy,
  });
  read = () => (number.value === "" ? null : Number(number.value));
  write = (v) => (number.value = v === null || v === undefined ? "" : String(v));
  number.addEventListener("change", () => {
    if (number.value !== "" && Number.isFinite(Number(number.value))) onCommit(read());
  });
  inputs = [number];
  let row = number;
  if (isLogScale(name, schema)) {
    const [lo, hi] = logRange(schema);
    const slider = el("input", {
      type: "range",
      min: String(lo),
      max: String(hi),
      step: "0.01",
      "aria-label": `${name} (log scale)`,
      "aria-describedby": describedBy,
      dataset: { logSlider: name },
    });
    const numberWrite = write;
    write = (v) => {
      numberWrite(v);
      if (v > 0) slider.value = String(Math.log10(v));
      slider.setAttribute("aria-valuetext", num(v));
    };
    slider.addEventListener("input", () => {
      const v = round3(10 ** Number(slider.value));
      number.value = String(v);
      slider.setAttribute("aria-valuetext", num(v));
    });
    slider.addEventListener("change", () => onCommit(round3(10 ** Number(slider.value))));
    number.addEventListener("input", () => {
      const v = Number(number.value);
      if (v > 0) slider.value = String(Math.log10(v));
    });
    inputs = [slider, number];
    row = el("div", { class: "log-slider" }, slider, number);
  }
  const node = el("div", { class: "field live-field", dataset: { live: name } }, el("label", { for: id }, name), row, help, error);
  return finish(node);

  function finish(node) {
    write(value);
    return {
      node,
      name,
      get value() {
        return read();
      },
      set value(v) {
        write(v);
      },
      setError(message) {
        error.textContent = message || "";
        error.hidden = !message;
        for (const input of inputs) input.setAttribute("aria-invalid", message ? "true" : "false");
      },
      setDisabled(flag) {
        for (const input of inputs) input.disabled = flag;
      },
      focused() {
        return inputs.includes(document.activeElement);
      },
    };
  }
}
