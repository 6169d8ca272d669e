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
import { health } from "./header.js";
import { mountJobList } from "./joblist.js";

const form = document.getElementById("train-form");
const fieldsBox = document.getElementById("param-fields");
const deviceSelect = form.elements.namedItem("device");
const sweepSelect = form.elements.namedItem("sweep_param");
const sweepValues = form.elements.namedItem("sweep_values");
const shareStatus = document.getElementById("share-status");
const formError = form.querySelector("[data-form-error]");

// A form's named inputs shadow its own properties (a parameter called `dataset` hides
// form.dataset), so the form's state lives here and its attributes are set with setAttribute.
let kinds = {}; // kind -> {kind, title, description, params_schema, defaults}
let wantedDevice = null; // from the link, applied when the server's devices are known
let fields = []; // describeField() of the current kind

function currentKind() {
  return form.querySelector("input[name=kind]:checked")?.value;
}

function renderKind(kind, values = {}) {
  const info = kinds[kind];
  fields = describeFields(info.params_schema);
  fieldsBox.replaceChildren(...fields.map((field) => renderField(field, values[field.name])));
  // "also try" varies one numeric parameter of this kind.
  const numeric = fields.filter((field) => field.type === "integer" || field.type === "number");
  sweepSelect.replaceChildren(new Option("nothing else", ""), ...numeric.map((field) => new Option(field.name, field.name)));
  countRuns();
  for (const card of form.querySelectorAll(".kind-card")) {
    card.classList.toggle("selected", card.dataset.kind === kind);
  }
}

// /?kind=linear&lr=0.0001&device=cpu&seed=1&name=... fills the form.
function applyQuery(query) {
  const kind = query.get("kind");
  const values = {};
  const ignored = [];
  const known = new Set(describeFields(kinds[kind].params_schema).map((f) => f.name));
  for (const [name, text] of query) {
    if (["kind", "device", "seed", "name"].includes(name) || name.startsWith("filter_")) continue;
    if (!known.has(name)) {
      ignored.push(name);
      continue;
    }
    const field = describeFields(kinds[kind].params_schema).find((f) => f.name === name);
    try {
      values[name] = parseQueryValue(field, text);
    } catch {
      ignored.push(name);
    }
  }
  form.querySelector(`input[name=kind][value="${CSS.escape(kind)}"]`).checked = true;
  renderKind(kind, values);
  if (query.has("seed")) form.elements.namedItem("seed").value = query.get("seed");
  if (query.has("name")) form.elements.namedItem("name").value = query.get("name");
  if (query.has("device")) wantedDevice = query.get("device");
  if (ignored.length) {
    formError.textContent = `The link's ${ignored.join(", ")} ${ignored.length === 1 ? "is not a parameter" : "are not parameters"} of ${kind}; ignored.`;
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

// "also try": the other values of the chosen parameter, each checked as its input would be.
function readSweep(params) {
  const name = sweepSelect.value;
  if (!name) return null;
  const field = fields.find((f) => f.name === name);
  const tokens = sweepTokens();
  if (!tokens.length) throw new FieldErrors([{ field: "sweep", msg: `List one or more other values of ${name}, separated by commas.` }]);
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
      name: `${base} · ${sweep.name}=${value ?? "default"}`,
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
  const query = shareQuery(kind, params, kinds[kind].defaults, runOptions());
  const url = `${location.origin}/?${query}`;
  history.replaceState(null, "", `/?${query}`);
  navigator.clipboard?.writeText(url).then(
    () => (shareStatus.textContent = "Link copied; it is also in the address bar."),
    () => (shareStatus.textContent = "The link is in the address bar."),
  );
  if (!navigator.clipboard) shareStatus.textContent = "The link is in the address bar.";
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
    card.querySelector("[data-kind-title]").textContent = info.title;
    card.title = info.description;
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
  applyQuery(query);

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") {
      clearErrors(form);
      renderKind(event.target.value);
    }
  });
  form.addEventListener("submit", submit);
  sweepSelect.addEventListener("change", countRuns);
  sweepValues.addEventListener("input", countRuns);
  document.getElementById("share-button").addEventListener("click", shareLink);
  document.getElementById("reset-button").addEventListener("click", () => {
    clearErrors(form);
    renderKind(currentKind());
  });

  const serverHealth = await health;
  fillDevices(serverHealth ? serverHealth.devices : []);
  form.setAttribute("data-ready", "true");
}

mountJobList(document.getElementById("job-list"));
main().catch((error) => {
  fieldsBox.replaceChildren(`Could not load the experiments: ${error.message}`);
});
