// The experiment form, generated from a kind's JSON Schema (GET /api/kinds -> params_schema).
//
// Each parameter becomes the input its type asks for: a number input with the schema's bounds, a
// select for an enum, a checkbox for a boolean, a textarea for a list of [x, y] pairs. Every input
// is named after its parameter, labelled, and described by the field's description.

import { parsePoints, pointsToText } from "./datapoints.js";
import { el } from "./format.js";
import { PointEditor } from "./pointeditor.js";

// The parts of a JSON Schema property the form uses. pydantic writes `X | None` as anyOf [X, null].
export function describeField(name, prop) {
  let schema = prop;
  let nullable = false;
  if (Array.isArray(prop.anyOf)) {
    const options = prop.anyOf.filter((option) => option.type !== "null");
    nullable = options.length < prop.anyOf.length;
    schema = { ...options[0], ...prop, anyOf: undefined };
  }
  let type = schema.type;
  if (Array.isArray(schema.enum)) type = "enum";
  else if (type === "array" || type === "object") type = "json";
  else if (!["integer", "number", "boolean"].includes(type)) type = "string";
  return {
    name,
    type,
    nullable,
    title: prop.title || name,
    description: prop.description || "",
    default: prop.default,
    enum: schema.enum,
    minimum: schema.minimum,
    maximum: schema.maximum,
    exclusiveMinimum: schema.exclusiveMinimum,
    exclusiveMaximum: schema.exclusiveMaximum,
    minItems: schema.minItems,
    maxItems: schema.maxItems,
  };
}

export function describeFields(paramsSchema) {
  return Object.entries(paramsSchema.properties || {}).map(([name, prop]) => describeField(name, prop));
}

// "> 0 and ≤ 10", written out so the help text says what is allowed.
export function boundsText(field) {
  const parts = [];
  if (field.exclusiveMinimum !== undefined) parts.push(`> ${field.exclusiveMinimum}`);
  if (field.minimum !== undefined) parts.push(`≥ ${field.minimum}`);
  if (field.exclusiveMaximum !== undefined) parts.push(`< ${field.exclusiveMaximum}`);
  if (field.maximum !== undefined) parts.push(`≤ ${field.maximum}`);
  if (field.type === "integer") parts.unshift("a whole number");
  return parts.join(", ");
}

function inputId(name) {
  return `param-${name}`;
}

// One field: label, input, help text and a place for its error message.
// context (the start page's): {defaultData, onFitPoints} for the data points' chart; a lesson's
// page adds {locked: true, lockNote} for a parameter that is shown but not editable.
export function renderField(field, value, context = {}) {
  const wrapper = field.name === "data" && field.type === "json"
    ? renderDataField(field, value, context)
    : renderInput(field, value);
  if (context.locked) lockField(wrapper, context.lockNote);
  return wrapper;
}

// The fields of a form with some values set by someone else (a lesson): the `hidden` ones are left
// out, the `locked` ones shown disabled with a note. values: name -> value (missing: the default).
export function renderFields(fields, values = {}, { hidden = [], locked = [], lockNote, context = {} } = {}) {
  return fields
    .filter((field) => !hidden.includes(field.name))
    .map((field) => renderField(field, values[field.name], { ...context, locked: locked.includes(field.name), lockNote }));
}

// Shown, not editable: the inputs are disabled (readParams still reads them), the data chart inert,
// and a note, which the inputs name as part of their description, says why.
export function lockField(wrapper, note = "Locked: set for you, not editable here.") {
  const noteId = `param-${wrapper.dataset.field}-lock`;
  wrapper.dataset.locked = "true";
  for (const input of wrapper.querySelectorAll("input, select, textarea")) {
    input.disabled = true;
    input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${noteId}`.trim());
  }
  const chart = wrapper.querySelector(".point-editor");
  if (chart) chart.inert = true;
  wrapper.append(el("p", { class: "help lock-note", id: noteId, dataset: { lockNote: "" } }, note));
}

function renderInput(field, value) {
  const id = inputId(field.name);
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const common = { id, name: field.name, "aria-describedby": `${helpId} ${errorId}` };
  let input;
  if (field.type === "enum") {
    input = el("select", common, field.enum.map((option) => el("option", { value: option }, option)));
    input.value = value ?? field.default;
  } else if (field.type === "boolean") {
    input = el("input", { ...common, type: "checkbox" });
    input.checked = Boolean(value ?? field.default);
  } else if (field.type === "integer" || field.type === "number") {
    input = el("input", {
      ...common,
      type: "number",
      inputmode: field.type === "integer" ? "numeric" : "decimal",
      step: field.type === "integer" ? "1" : "any",
      min: field.minimum,
      max: field.maximum,
      required: !field.nullable,
      placeholder: field.nullable ? emptyMeaning(field) : null,
    });
    const v = value === undefined ? field.default : value;
    input.value = v === null || v === undefined ? "" : String(v);
    input.addEventListener("input", () => checkExclusiveBounds(field, input));
    checkExclusiveBounds(field, input);
  } else if (field.type === "json") {
    input = el("textarea", {
      ...common,
      rows: "3",
      spellcheck: "false",
      placeholder: field.nullable ? "empty: the book's data. Or pairs like [[35.7, 0.5], [55.9, 14.0]], or one 'x, y' per line" : "",
    });
    const v = value === undefined ? field.default : value;
    input.value = v === null || v === undefined ? "" : JSON.stringify(v);
  } else {
    input = el("input", { ...common, type: "text" });
    input.value = value ?? field.default ?? "";
  }
  const bounds = boundsText(field);
  const help = el("p", { class: "help", id: helpId }, field.description, bounds ? ` Allowed: ${bounds}.` : "");
  const label = el("label", { for: id }, el("code", {}, field.name));
  const error = el("p", { class: "field-error", id: errorId, role: "alert", hidden: true });
  const wrapper = el("div", { class: `field field-${field.type}`, dataset: { field: field.name } });
  if (field.type === "boolean") wrapper.append(el("div", { class: "checkbox-row" }, input, label), help, error);
  else wrapper.append(label, input, help, error);
  return wrapper;
}

// The points a linear or mlp run fits: a chart to draw them on (pointeditor.js) over the data box,
// a textarea of "x, y" lines that takes a paste. The wrapper's pointEditor is the chart's editor.
function renderDataField(field, value, { defaultData = null, onFitPoints = null } = {}) {
  const id = inputId(field.name);
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const textarea = el("textarea", {
    id,
    name: field.name,
    rows: "5",
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": `${helpId} ${errorId}`,
    placeholder: "empty: the book's readings. Or paste yours, one point per line:\n35.7, 0.5\n55.9, 14.0",
  });
  const v = value === undefined ? field.default : value;
  textarea.value = Array.isArray(v) ? pointsToText(v) : typeof v === "string" ? v : "";
  if (textarea.value.trim()) textarea.dataset.own = "true";
  const error = el("p", { class: "field-error", id: errorId, role: "alert", hidden: true });
  const editorBox = el("div", { class: "point-editor" });
  const max = field.maxItems ?? Infinity;
  const allowed = `2 to ${Number.isFinite(max) ? max.toLocaleString("en") : "any number of"} points`;
  const wrapper = el(
    "div",
    { class: "field field-json field-points", dataset: { field: field.name } },
    editorBox,
    error,
    el("label", { for: id }, el("code", {}, field.name), " (the points, one ", el("code", {}, "x, y"), " per line)"),
    textarea,
    el("p", { class: "help", id: helpId }, field.description,
      ` Paste CSV here (a header line is fine) or JSON [[x, y], ...]. Allowed: ${allowed}, each two finite numbers.`),
  );
  wrapper.pointEditor = new PointEditor(editorBox, { textarea, errorNode: error, bookPoints: defaultData, max, onSubmit: onFitPoints });
  return wrapper;
}

// What an empty nullable field means, as its description says ("...; empty: all."), else "none".
function emptyMeaning(field) {
  const said = /empty: ([^.;]+)/.exec(field.description || "");
  return `empty: ${said ? said[1].trim() : "none"}`;
}

// min/max attributes cover inclusive bounds; an exclusive bound (lr > 0) needs a custom message.
function checkExclusiveBounds(field, input) {
  let message = "";
  if (input.value !== "") {
    const v = Number(input.value);
    if (field.exclusiveMinimum !== undefined && !(v > field.exclusiveMinimum)) {
      message = `${field.name} must be greater than ${field.exclusiveMinimum}.`;
    } else if (field.exclusiveMaximum !== undefined && !(v < field.exclusiveMaximum)) {
      message = `${field.name} must be less than ${field.exclusiveMaximum}.`;
    }
  }
  input.setCustomValidity(message);
}

// Pairs as JSON ([[x, y], ...]) or one "x, y" (or "x y") per line.
export function parsePairs(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (trimmed.startsWith("[")) return JSON.parse(trimmed);
  return trimmed.split(/\n+/).map((line, i) => {
    const values = line.trim().split(/[\s,;]+/).map(Number);
    if (values.length !== 2 || values.some(Number.isNaN)) {
      throw new Error(`line ${i + 1} ("${line.trim()}") is not two numbers`);
    }
    return values;
  });
}

// The params object the API takes, read from the inputs. Throws FieldErrors for what cannot even
// be parsed here; bounds are the browser's and then the server's job.
export class FieldErrors extends Error {
  constructor(errors) {
    super(errors.map((e) => `${e.field}: ${e.msg}`).join("; "));
    this.errors = errors;
  }
}

export function readParams(form, fields) {
  const params = {};
  const errors = [];
  for (const field of fields) {
    const input = form.elements.namedItem(field.name);
    if (!input) continue;
    if (field.type === "boolean") params[field.name] = input.checked;
    else if (field.type === "integer" || field.type === "number") {
      params[field.name] = input.value === "" ? null : Number(input.value);
    } else if (field.name === "data" && field.type === "json") {
      try {
        params[field.name] = parsePoints(input.value, { min: field.minItems, max: field.maxItems, own: input.dataset.own === "true" });
      } catch (error) {
        errors.push({ field: field.name, msg: error.message });
      }
    } else if (field.type === "json") {
      try {
        params[field.name] = parsePairs(input.value);
      } catch (error) {
        errors.push({ field: field.name, msg: `not a list of [x, y] pairs: ${error.message}` });
      }
    } else params[field.name] = input.value;
  }
  if (errors.length) throw new FieldErrors(errors);
  return params;
}

// A value from the query string, typed by its field; an Error saying why when it does not parse.
export function parseQueryValue(field, text) {
  if (field.type === "integer" || field.type === "number") {
    if (text.trim() === "") {
      if (field.nullable) return null;
      throw new Error("is empty, and a number is needed");
    }
    const value = Number(text);
    if (!Number.isFinite(value)) throw new Error(`"${text}" is not a number`);
    if (field.type === "integer" && !Number.isInteger(value)) throw new Error(`"${text}" is not a whole number`);
    return value;
  }
  if (field.type === "boolean") {
    const word = text.toLowerCase();
    if (["1", "true", "yes", "on"].includes(word)) return true;
    if (["0", "false", "no", "off"].includes(word)) return false;
    throw new Error(`"${text}" is not true or false`);
  }
  if (field.type === "enum") {
    if (!field.enum.includes(text)) throw new Error(`"${text}" is not one of ${field.enum.join(", ")}`);
    return text;
  }
  if (field.type === "json") {
    if (text === "") return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new Error("is not JSON");
    }
  }
  return text;
}

// ?kind=linear&lr=0.001&... for the parameters that differ from the defaults.
export function shareQuery(kind, params, defaults, extra = {}) {
  const query = new URLSearchParams({ kind });
  for (const [name, value] of Object.entries(params)) {
    if (JSON.stringify(value) === JSON.stringify(defaults?.[name])) continue;
    query.set(name, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value ?? ""));
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value !== null && value !== undefined && value !== "" && value !== "auto") query.set(name, String(value));
  }
  return query;
}

// ---- errors next to their fields ------------------------------------------------------------

export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const general = form.querySelector("[data-form-error]");
  if (general) {
    general.hidden = true;
    general.textContent = "";
  }
}

// errors: [{field, msg}]; one whose field has no input goes to the form's general message.
export function showErrors(form, errors) {
  const general = [];
  let first = null;
  for (const { field, msg } of errors) {
    const wrapper = field ? form.querySelector(`[data-field="${CSS.escape(field)}"]`) : null;
    if (!wrapper) {
      general.push(field ? `${field}: ${msg}` : msg);
      continue;
    }
    const node = wrapper.querySelector(".field-error");
    node.textContent = node.textContent ? `${node.textContent} ${msg}` : msg;
    node.hidden = false;
    const input = wrapper.querySelector("input, select, textarea");
    input?.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  const box = form.querySelector("[data-form-error]");
  if (box && general.length) {
    box.textContent = general.join(" ");
    box.hidden = false;
  }
  first?.focus();
}
