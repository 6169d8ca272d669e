// Edit and run again from the run page: the kind's parameters (all but the data points, which the
// new run keeps) in a form beside the charts; "Run again" starts the edited run with the same seed
// and opens it with this one drawn faintly underneath (`?previous=<id>` in its address, so Back,
// reload and a shared link all show the same two runs). For the line fit and the small network,
// which take seconds, "re-run on change" does it as soon as a field changes.

import { api } from "./api.js";
import { clearErrors, describeFields, FieldErrors, readParams, renderField, showErrors } from "./form.js";
import { MetricStore, rowsToPoints } from "./metrics.js";

const AUTO_KINDS = new Set(["linear", "mlp"]);
const AUTO_DELAY_MS = 400; // a burst of keystrokes is one run

// The address of a new run that shows `previousId` underneath; `auto`/`focus` keep the form as it was.
export function rerunUrl(newId, previousId, { auto = false, focus = null } = {}) {
  const query = new URLSearchParams({ previous: previousId });
  if (auto) query.set("auto", "1");
  if (focus) query.set("focus", focus);
  return `/jobs/${newId}?${query}`;
}

// The previous run: its job and its line ({steps, train, val, hasVal, w, b}).
export async function loadPrevious(id, { maxPoints } = {}) {
  const [job, history] = await Promise.all([api.getJob(id), api.metrics(id, { maxPoints })]);
  const line = new MetricStore();
  line.loadHistory(rowsToPoints(history));
  return { job, steps: line.steps, train: line.train, val: line.val, hasVal: line.hasVal(), w: line.w, b: line.b };
}

// uPlot columns [x, ...own] with an overlay's series ([steps, ...series]) added after them, on the
// union of both runs' steps (each series null where its run has no point).
export function withOverlayColumns([xs, ...own], [overlaySteps, ...overlay]) {
  const steps = [];
  const ownAt = [];
  const overlayAt = [];
  let i = 0, j = 0;
  while (i < xs.length || j < overlaySteps.length) {
    const a = i < xs.length ? xs[i] : Infinity;
    const b = j < overlaySteps.length ? overlaySteps[j] : Infinity;
    const step = Math.min(a, b);
    steps.push(step);
    ownAt.push(a === step ? i++ : -1);
    overlayAt.push(b === step ? j++ : -1);
  }
  const pick = (values, at) => at.map((k) => (k < 0 ? null : values[k] ?? null));
  return [steps, ...own.map((values) => pick(values, ownAt)), ...overlay.map((values) => pick(values, overlayAt))];
}

export class RerunPanel {
  constructor(root, { getJob }) {
    this.getJob = getJob;
    this.$ = (selector) => root.querySelector(selector);
    this.box = this.$("[data-rerun]");
    this.form = this.$("[data-rerun-form]");
    this.auto = this.$("[data-rerun-auto]");
    this.fields = [];
    this.timer = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("change", (event) => {
      if (event.target === this.auto || !this.auto.checked) return;
      clearTimeout(this.timer);
      const focus = event.target.name || null;
      this.timer = setTimeout(() => this.submit({ focus }), AUTO_DELAY_MS);
    });
  }

  // The fields with this run's values (with its live changes: the newest lr, epochs).
  mount(kindInfo, query) {
    const job = this.getJob();
    this.fields = describeFields(kindInfo.params_schema).filter((field) => field.name !== "data");
    const values = job.params ?? {};
    this.$("[data-rerun-fields]").replaceChildren(...this.fields.map((field) => renderField(field, values[field.name])));
    const autoAllowed = AUTO_KINDS.has(job.kind);
    this.$("[data-rerun-auto-row]").hidden = !autoAllowed;
    this.box.hidden = false;
    if (autoAllowed && query.get("auto") === "1") {
      this.auto.checked = true;
      this.box.open = true;
    }
    const focus = query.get("focus");
    if (focus) {
      this.box.open = true;
      this.form.elements.namedItem(focus)?.focus?.();
    }
  }

  async submit({ focus = null } = {}) {
    const job = this.getJob();
    clearErrors(this.form);
    let params;
    try {
      params = readParams(this.form, this.fields);
    } catch (error) {
      if (error instanceof FieldErrors) showErrors(this.form, error.errors);
      return;
    }
    // The data points stay the run's own (the field is not in this form).
    if (job.params?.data) params.data = job.params.data;
    const button = this.$("[data-rerun-submit]");
    button.disabled = true;
    try {
      const created = await api.createJob({ kind: job.kind, params, device: job.device ?? "auto", seed: job.seed });
      location.assign(rerunUrl(created.id, job.id, { auto: this.auto.checked, focus }));
    } catch (error) {
      button.disabled = false;
      const errors = error.fieldErrors?.() ?? [];
      showErrors(this.form, errors.length ? errors : [{ field: null, msg: error.message }]);
    }
  }
}
