// "Repeat with k seeds" on a run's page: k new runs that differ from it only in the seed (so in
// their validation split and initial weights), made by the server (POST /api/jobs/{id}/repeat),
// then Compare with all of them, where they are one mean curve in a min–max band.

import { ApiError, request } from "./api.js";

const root = document.getElementById("job-view");
const form = root.querySelector("[data-repeat]");
const input = form.querySelector("[data-repeat-seeds]");
const button = form.querySelector("[data-repeat-submit]");
const error = form.querySelector("[data-repeat-error]");
const jobId = root.dataset.jobId;

function label() {
  const k = Number(input.value);
  button.textContent = Number.isInteger(k) && k >= 2 ? `Repeat with ${k} seeds` : "Repeat with other seeds";
}

function showError(message) {
  error.textContent = message;
  error.hidden = !message;
  input.setAttribute("aria-invalid", message ? "true" : "false");
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const seeds = Number(input.value);
  const min = Number(input.min), max = Number(input.max);
  if (!Number.isInteger(seeds) || seeds < min || seeds > max) {
    showError(`seeds = ${input.value || "nothing"}: repeat with ${min} to ${max} seeds.`);
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const made = await request("POST", `/api/jobs/${jobId}/repeat`, { body: { seeds } });
    location.href = `/compare?ids=${[jobId, ...made.items.map((job) => job.id)].join(",")}`;
  } catch (failure) {
    button.disabled = false;
    if (!(failure instanceof ApiError)) throw failure;
    const mine = failure.fieldErrors().find(({ field }) => field === "seeds");
    showError(mine ? mine.msg : failure.message);
  }
}

// A fork continues its parent's state, and a run changed while it ran cannot be made again as it
// was: the server refuses those, so the form is not offered. A line fit that holds no points out
// and starts at the book's (w, b) comes out the same whatever its seed: the form says so.
async function mount() {
  let job;
  try {
    job = await request("GET", `/api/jobs/${jobId}`);
  } catch {
    return;
  }
  if (job.parent_id || (job.changes ?? []).some((change) => change.step > 0)) return;
  if (job.kind === "linear" && !job.params?.val_fraction) {
    form.querySelector("[data-repeat-help]").textContent =
      "This line fit holds no points out for validation and always starts at the same w and b: another seed gives the same run. Set val_fraction to see a spread.";
  }
  form.hidden = false;
}

input.addEventListener("input", label);
form.addEventListener("submit", submit);
label();
mount();
