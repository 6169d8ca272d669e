// The start page: the experiment form (generated from GET /api/kinds), a shareable link of its
// settings, and the list of runs.

import { api, ApiError } from "./api.js";
import {
  boundsText,
  clearErrors,
  describeFields,
  FieldErrors,
  parseQueryValue,
  readParams,
  renderField,
  shareQuery,
  showErrors,
} from "./form.js";
import { INLINE_CHARS, keepPoints, keptPoints, newDataKey } from "./datapoints.js";
import { el, variantName } from "./format.js";
import { health } from "./header.js";
import { mountJobList } from "./joblist.js";
import { mountLessonDialog } from "./lessonform.js";
import { estimateTraining, formDefaults, matchingPreset, PRESETS } from "./presets.js";
import { StartSurface } from "./startsurface.js";

const form = document.getElementById("train-form");
const fieldsBox = document.getElementById("param-fields");
const deviceSelect = form.elements.namedItem("device");
const sweepSelect = form.elements.namedItem("sweep_param");
const sweepValues = form.elements.namedItem("sweep_values");
const shareStatus = document.getElementById("share-status");
const formError = form.querySelector("[data-form-error]");
const presetsBox = document.getElementById("presets");
const estimate = document.getElementById("train-estimate");

// A form's named inputs shadow its own properties (a parameter called `dataset` hides
// form.dataset), so the form's state lives here and its attributes are set with setAttribute.
let kinds = {}; // kind -> {kind, title, description, params_schema, defaults}
let wantedDevice = null; // from the link, applied when the server's devices are known
let fields = []; // describeField() of the current kind
let dataKey = null; // where this page keeps points too many for the address (datapoints.js)

// The line fit's start (init_w, init_b) on its loss surface, with the path the form's settings take.
const startSurface = new StartSurface({
  getState: () => {
    let params = null;
    try {
      params = readParams(form, fields);
    } catch {
      // a field that does not parse: the surface says it waits for it
    }
    return { params, points: params?.data ?? kinds[currentKind()]?.default_data };
  },
  setStart: (w, b) => {
    form.elements.namedItem("init_w").value = String(w);
    form.elements.namedItem("init_b").value = String(b);
    form.elements.namedItem("init_b").dispatchEvent(new Event("input", { bubbles: true }));
  },
});

function currentKind() {
  return form.querySelector("input[name=kind]:checked")?.value;
}

// The form's defaults for `kind`: the server's, with the page's first preset over them (chapter 7
// starts with the book's CIFAR-2 and convnet, see presets.js).
function defaultsOf(kind) {
  return formDefaults(kind, kinds[kind].defaults);
}

// The chart of the data points (linear, mlp), or undefined.
function pointEditor() {
  return fieldsBox.querySelector('[data-field="data"]')?.pointEditor;
}

function renderKind(kind, values = {}) {
  const info = kinds[kind];
  fields = describeFields(info.params_schema);
  const start = { ...defaultsOf(kind), ...values };
  pointEditor()?.destroy();
  const context = { defaultData: info.default_data, onFitPoints: () => HTMLFormElement.prototype.requestSubmit.call(form) };
  fieldsBox.replaceChildren(...fields.map((field) => renderField(field, start[field.name], context)));
  renderPresets(kind);
  startSurface.place(fieldsBox);
  // "also try" varies one numeric parameter of this kind.
  const numeric = fields.filter((field) => field.type === "integer" || field.type === "number");
  sweepSelect.replaceChildren(new Option("nothing else", ""), ...numeric.map((field) => new Option(field.name, field.name)));
  countRuns();
  for (const card of form.querySelectorAll(".kind-card")) {
    card.classList.toggle("selected", card.dataset.kind === kind);
  }
  showEstimate();
}

// One button per preset of the kind (chapter 7: CIFAR-2 and CIFAR-10); the one the form matches
// is pressed.
function renderPresets(kind) {
  const presets = PRESETS[kind] ?? [];
  presetsBox.hidden = presets.length === 0;
  presetsBox.replaceChildren(
    ...(presets.length ? [el("span", { class: "presets-label" }, "Presets:")] : []),
    ...presets.map((preset) =>
      el(
        "button",
        {
          type: "button",
          class: "small",
          dataset: { preset: preset.id },
          "aria-pressed": "false",
          onclick: () => {
            let current = {};
            try {
              current = readParams(form, fields);
            } catch {
              // a field that does not parse takes the preset's value or its default
            }
            clearErrors(form);
            renderKind(kind, { ...current, ...preset.params });
            syncAddress();
          },
        },
        preset.label,
      ),
    ),
  );
}

// The pressed preset and the time estimate follow the form.
function showEstimate() {
  const kind = currentKind();
  let params = null;
  try {
    params = readParams(form, fields);
  } catch {
    params = null;
  }
  const matched = params ? matchingPreset(kind, params) : null;
  for (const button of presetsBox.querySelectorAll("[data-preset]")) {
    button.setAttribute("aria-pressed", String(button.dataset.preset === matched?.id));
  }
  const guess = params ? estimateTraining(kind, params, deviceSelect.value) : null;
  estimate.hidden = !guess;
  // On a phone the sticky bar shows the figure only; the reckoning is in the title too.
  estimate.replaceChildren(...(guess ? [guess.head, el("span", { class: "estimate-detail" }, guess.detail)] : []));
  estimate.title = guess ? guess.text : "";
}

// The address follows the form (replaceState, no new history entry), so Back after Train, a
// reload or a bookmark come back to these settings. A form with an out-of-bounds value keeps the
// address it had.
function syncAddress() {
  const kind = currentKind();
  if (!kind || !kinds[kind] || !HTMLFormElement.prototype.checkValidity.call(form)) return;
  let params;
  try {
    params = readParams(form, fields);
  } catch {
    return;
  }
  const query = shareQuery(kind, params, defaultsOf(kind), runOptions());
  const sweep = sweepSelect.value && sweepTokens().length ? `${sweepSelect.value}:${sweepTokens().join(",")}` : "";
  if (sweep) query.set("also_try", sweep);
  keepLongData(query);
  const address = `/?${query}`;
  if (`${location.pathname}${location.search}` !== address) history.replaceState(null, "", address);
}

// Points too many for the address are kept in this tab's sessionStorage, and the address says
// data_key=... instead (datapoints.js). True when the query still has all of the data.
function keepLongData(query) {
  const text = query.get("data");
  if (!text || text.length <= INLINE_CHARS) return true;
  query.delete("data");
  dataKey ??= newDataKey();
  if (!keepPoints(dataKey, JSON.parse(text))) return false;
  query.set("data_key", dataKey);
  return false;
}

// data_from=<run id> (the run page's "Edit these settings" for many points): that run's points,
// put in the query as data. A message for the data field when they cannot be read.
async function fetchDataFrom(query) {
  const id = query.get("data_from");
  if (!id) return null;
  query.delete("data_from");
  try {
    const job = await api.getJob(id);
    if (job.params?.data) query.set("data", JSON.stringify(job.params.data));
    return null;
  } catch (error) {
    return `The points of run ${id} could not be read (${error.message}): the chart shows the book's data.`;
  }
}

// /?kind=linear&lr=0.0001&device=cpu&seed=1&name=... fills the form. dataProblem: a message for
// the data field (fetchDataFrom's).
function applyQuery(query, dataProblem = null) {
  const kind = query.get("kind");
  const values = {};
  const ignored = [];
  const invalid = []; // [{field, msg}]: a value of the link that does not parse, said by its field
  const kindFields = describeFields(kinds[kind].params_schema);
  for (const [name, text] of query) {
    if (["kind", "device", "seed", "name", "also_try", "data_key"].includes(name) || name.startsWith("filter_")) continue;
    const field = kindFields.find((f) => f.name === name);
    if (!field) {
      ignored.push(name);
      continue;
    }
    try {
      values[name] = parseQueryValue(field, text);
    } catch (error) {
      const fallback = defaultsOf(kind)[name];
      invalid.push({
        field: name,
        msg: `The link's ${name} ${error.message}: the form shows ${fallback === null || fallback === undefined ? "it empty" : `the default, ${fallback}`} instead.`,
      });
    }
  }
  if (dataProblem) invalid.push({ field: "data", msg: dataProblem });
  if (query.has("data_key") && kindFields.some((f) => f.name === "data")) {
    dataKey = query.get("data_key");
    const kept = keptPoints(dataKey);
    if (kept) values.data = kept;
    else {
      invalid.push({
        field: "data",
        msg: "This address's points were kept in the browser tab that made it (too many for an address), and this tab does not have them: the chart shows the book's data.",
      });
    }
  }
  form.querySelector(`input[name=kind][value="${CSS.escape(kind)}"]`).checked = true;
  renderKind(kind, values);
  if (query.has("seed")) {
    const seed = query.get("seed");
    if (/^\d+$/.test(seed)) form.elements.namedItem("seed").value = seed;
    else invalid.push({ field: "seed", msg: `The link's seed "${seed}" is not a whole number ≥ 0: the seed is left empty (random).` });
  }
  if (query.has("name")) form.elements.namedItem("name").value = query.get("name");
  form.elements.namedItem("paused").checked = query.get("paused") === "true";
  if (query.has("device")) wantedDevice = query.get("device");
  const [sweepName, sweepText] = (query.get("also_try") || "").split(":");
  if (sweepName && kindFields.some((f) => f.name === sweepName && ["integer", "number"].includes(f.type))) {
    sweepSelect.value = sweepName;
    sweepValues.value = (sweepText || "").split(",").join(", ");
    countRuns();
  }
  const messages = [];
  if (ignored.length) {
    messages.push(`The link's ${ignored.join(", ")} ${ignored.length === 1 ? "is not a parameter" : "are not parameters"} of ${kind}; ignored.`);
  }
  if (invalid.length) messages.push(`Some of the link's values were not used: ${invalid.map((e) => e.field).join(", ")} (see by the field).`);
  for (const { field, msg } of invalid) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
    const node = wrapper?.querySelector(".field-error");
    if (!node) continue;
    node.textContent = msg;
    node.hidden = false;
    wrapper.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
  }
  if (messages.length) {
    formError.textContent = messages.join(" ");
    formError.hidden = false;
  }
}

function fillDevices(devices) {
  for (const device of devices) deviceSelect.append(new Option(device, device));
  const wanted = wantedDevice;
  if (wanted) {
    if (!devices.includes(wanted) && wanted !== "auto") deviceSelect.append(new Option(`${wanted} (not on this server)`, wanted));
    deviceSelect.value = wanted;
  }
}

function runOptions() {
  const seedText = form.elements.namedItem("seed").value;
  return {
    device: deviceSelect.value || "auto",
    seed: seedText === "" ? null : Number(seedText),
    name: form.elements.namedItem("name").value.trim() || null,
    // Only when ticked: the address then says paused=true, and a run made without it starts at once.
    ...(form.elements.namedItem("paused").checked ? { paused: true } : {}),
  };
}

// The other values typed for "also try", as written.
function sweepTokens() {
  return sweepValues.value.split(/[\s,;]+/).filter(Boolean);
}

// The Train button says how many runs it starts.
function countRuns() {
  const others = sweepSelect.value ? sweepTokens().length : 0;
  document.getElementById("train-button").textContent = others ? `Train ${others + 1} runs` : "Train";
}

// "also try" starts at most this many runs at once (the run and 11 other values): a sweep is for
// comparing a few values side by side, and the server's queue is shared.
const MAX_SWEEP_RUNS = 12;

// "also try": the other values of the chosen parameter, each checked as its input would be.
function readSweep(params) {
  const name = sweepSelect.value;
  if (!name) return null;
  const field = fields.find((f) => f.name === name);
  const tokens = sweepTokens();
  if (!tokens.length) throw new FieldErrors([{ field: "sweep", msg: `List one or more other values of ${name}, separated by commas.` }]);
  if (tokens.length > MAX_SWEEP_RUNS - 1) {
    throw new FieldErrors([{
      field: "sweep",
      msg: `${tokens.length} values of ${name} is too many: also try at most ${MAX_SWEEP_RUNS - 1} other values (${MAX_SWEEP_RUNS} runs at once).`,
    }]);
  }
  const values = [];
  for (const token of tokens) {
    const value = Number(token);
    const bounds = boundsText(field);
    const ok =
      Number.isFinite(value) &&
      (field.type !== "integer" || Number.isInteger(value)) &&
      (field.minimum === undefined || value >= field.minimum) &&
      (field.maximum === undefined || value <= field.maximum) &&
      (field.exclusiveMinimum === undefined || value > field.exclusiveMinimum) &&
      (field.exclusiveMaximum === undefined || value < field.exclusiveMaximum);
    if (!ok) throw new FieldErrors([{ field: "sweep", msg: `${name} = ${token} is not allowed: ${name} must be ${bounds || "a number"}.` }]);
    if (value !== params[name] && !values.includes(value)) values.push(value);
  }
  if (!values.length) throw new FieldErrors([{ field: "sweep", msg: `Those are the value of ${name} above already: list other ones.` }]);
  return { name, values };
}

// The run, and with "also try" one more run per value: same seed (drawn here when empty), named by
// what differs, then Compare with all of them.
async function createRuns(kind, params, sweep) {
  const options = runOptions();
  if (!sweep) {
    const job = await api.createJob({ kind, params, ...options });
    location.href = `/jobs/${job.id}`;
    return;
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const base = options.name ?? kind;
  const ids = [];
  for (const value of [params[sweep.name], ...sweep.values]) {
    const job = await api.createJob({
      kind,
      params: { ...params, [sweep.name]: value },
      ...options,
      seed,
      name: variantName(base, { [sweep.name]: value }),
    });
    ids.push(job.id);
  }
  location.href = `/compare?ids=${ids.join(",")}`;
}

async function submit(event) {
  event.preventDefault();
  clearErrors(form);
  if (!HTMLFormElement.prototype.checkValidity.call(form)) {
    HTMLFormElement.prototype.reportValidity.call(form);
    return;
  }
  const kind = currentKind();
  let params, sweep;
  try {
    params = readParams(form, fields);
    sweep = readSweep(params);
  } catch (error) {
    if (error instanceof FieldErrors) return showErrors(form, error.errors);
    throw error;
  }
  const button = document.getElementById("train-button");
  button.disabled = true;
  syncAddress(); // Back from the run's page comes back to exactly these settings
  try {
    await createRuns(kind, params, sweep);
  } catch (error) {
    button.disabled = false;
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 422 && Array.isArray(error.detail)) showErrors(form, error.fieldErrors());
    else if (typeof error.detail === "string" && /device/i.test(error.detail)) {
      showErrors(form, [{ field: "device", msg: error.detail }]);
    } else if (error.status === 429) {
      showErrors(form, [{ field: null, msg: `The queue is full: ${error.message} Wait for a run to finish, or cancel one.` }]);
    } else showErrors(form, [{ field: null, msg: error.message }]);
  }
}

function shareLink() {
  let params;
  try {
    params = readParams(form, fields);
  } catch (error) {
    if (error instanceof FieldErrors) return showErrors(form, error.errors);
    throw error;
  }
  const kind = currentKind();
  const query = shareQuery(kind, params, defaultsOf(kind), runOptions());
  const whole = keepLongData(query);
  const url = `${location.origin}/?${query}`;
  history.replaceState(null, "", `/?${query}`);
  // A link without the points says so: they open in this tab only.
  const without = whole ? "" : ` It leaves out your ${params.data.length.toLocaleString("en")} points (too many for a link; this tab keeps them).`;
  navigator.clipboard?.writeText(url).then(
    () => (shareStatus.textContent = `Link copied; it is also in the address bar.${without}`),
    () => (shareStatus.textContent = `The link is in the address bar.${without}`),
  );
  if (!navigator.clipboard) shareStatus.textContent = `The link is in the address bar.${without}`;
}

async function main() {
  const list = await api.kinds();
  kinds = Object.fromEntries(list.map((info) => [info.kind, info]));
  for (const card of form.querySelectorAll(".kind-card")) {
    const info = kinds[card.dataset.kind];
    if (!info) {
      card.hidden = true; // a kind this server does not offer
      continue;
    }
    // The card's own title (the page's, which says what its defaults train), the server's as a tooltip.
    card.title = `${info.title}: ${info.description}`;
    // The whole card picks its experiment, not just the radio button.
    card.addEventListener("click", (event) => {
      if (event.target.closest("a, input")) return;
      const radio = card.querySelector("input[name=kind]");
      if (!radio.checked) {
        radio.checked = true;
        radio.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }
  const query = new URLSearchParams(location.search);
  if (!kinds[query.get("kind")]) query.set("kind", list[0].kind);
  applyQuery(query, await fetchDataFrom(query));

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") {
      clearErrors(form);
      // Your own points go with you between the line and the network.
      const points = pointEditor()?.points;
      renderKind(event.target.value, points ? { data: points } : {});
    }
    showEstimate();
    syncAddress();
    startSurface.update();
  });
  form.addEventListener("input", () => {
    showEstimate();
    syncAddress();
    startSurface.update();
  });
  form.addEventListener("submit", submit);
  sweepSelect.addEventListener("change", countRuns);
  sweepValues.addEventListener("input", countRuns);
  document.getElementById("share-button").addEventListener("click", shareLink);
  // Defaults: everything as a fresh page has it for this experiment, the address too.
  document.getElementById("reset-button").addEventListener("click", () => {
    clearErrors(form);
    renderKind(currentKind());
    form.elements.namedItem("seed").value = "";
    form.elements.namedItem("name").value = "";
    form.elements.namedItem("paused").checked = false;
    deviceSelect.value = "auto";
    sweepSelect.value = "";
    sweepValues.value = "";
    countRuns();
    shareStatus.textContent = "";
    syncAddress();
  });

  const serverHealth = await health;
  fillDevices(serverHealth ? serverHealth.devices : []);
  showEstimate();
  form.setAttribute("data-ready", "true");
}

// "Save as a lesson…" (a teacher's): the form's kind and values as they are now.
mountLessonDialog({
  button: document.getElementById("lesson-button"),
  dialog: document.getElementById("lesson-dialog"),
  current: () => {
    const kind = currentKind();
    if (!kinds[kind]) throw new FieldErrors([{ field: null, msg: "The experiments are still loading." }]);
    const title = form.querySelector(`.kind-card[data-kind="${CSS.escape(kind)}"] [data-kind-title]`)?.textContent;
    return { kind, kindTitle: title || kinds[kind].title, fields, params: readParams(form, fields) };
  },
  onFormErrors: (errors) => {
    clearErrors(form);
    showErrors(form, errors);
  },
});
mountJobList(document.getElementById("job-list"));
main().catch((error) => {
  fieldsBox.replaceChildren(`Could not load the experiments: ${error.message}`);
});
