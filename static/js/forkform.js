// "Continue from step k with …": a new run that starts from this one's state at step k (the
// server restores its nearest checkpoint at or before k and replays up to it) with other values
// of the live parameters. "Train longer" is the same from a finished run's last step, with more
// epochs. k is the run's newest step, or the point clicked on the loss chart.

import { api } from "./api.js";
import { jobLabel } from "./format.js";
import { liveField, liveProperties } from "./liveparams.js";

// The parameters in effect right after step k: a change at step s applies from step s + 1, so
// the changes after k are taken back (each stored the values it replaced).
export function paramsAfterStep(job, k) {
  let params = { ...(job.params || {}) };
  for (const change of [...(job.changes || [])].reverse()) {
    if (change.step > k && change.before) params = { ...params, ...change.before };
  }
  return params;
}

export class ForkPanel {
  // lastStep(): the newest step the page holds (null: none yet).
  constructor(root, { getJob, lastStep }) {
    this.getJob = getJob;
    this.lastStep = lastStep;
    this.$ = (selector) => root.querySelector(selector);
    this.box = this.$("[data-fork]");
    this.form = this.$("[data-fork-form]");
    this.stepInput = this.$("[data-fork-step]");
    this.openButton = this.$("[data-fork-open]");
    this.properties = [];
    this.fields = [];
    this.picked = null;
    this.openButton.addEventListener("click", () => this.open());
    this.$("[data-fork-close]").addEventListener("click", () => this.close());
    this.stepInput.addEventListener("change", () => this.setStep(Number(this.stepInput.value), { fromForm: true }));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  mount(kindInfo) {
    this.properties = liveProperties(kindInfo);
    this.update(this.getJob());
  }

  // The step the fork starts from: the picked one, else the newest.
  step() {
    return this.picked ?? this.lastStep();
  }

  // A finished run forked at its last step runs on: "Train longer".
  trainsLonger(job) {
    return job.status === "succeeded" && this.step() === this.lastStep();
  }

  setStep(k, { fromForm = false } = {}) {
    if (!Number.isInteger(k) || k < 0) return;
    this.picked = k;
    if (!fromForm) this.stepInput.value = String(k);
    this.update(this.getJob());
    if (!this.form.hidden && !fromForm) this.fill();
  }

  update(job) {
    const k = this.step();
    // A queued run has no state to start from; the server also needs a checkpoint at or before k.
    // A learning-rate range test is not a run to go on from: "Train with this lr" starts one.
    const available = job.status !== "queued" && k !== null && this.properties.length > 0 && !job.params?.lr_finder;
    this.box.hidden = !available;
    if (!available) return;
    const label = this.trainsLonger(job) ? "Train longer…" : `Continue from step ${k.toLocaleString()}…`;
    this.openButton.textContent = label;
    this.openButton.dataset.forkFrom = String(k);
    this.$("[data-fork-title]").textContent = this.trainsLonger(job)
      ? `Train longer: continue from step ${k.toLocaleString()} with`
      : `Continue from step ${k.toLocaleString()} with`;
    const last = this.lastStep();
    if (last !== null) this.stepInput.max = String(last);
  }

  open() {
    this.form.hidden = false;
    this.stepInput.value = String(this.step());
    this.fill();
    this.form.querySelector("input:not([type=range])")?.focus();
  }

  close() {
    this.form.hidden = true;
    this.openButton.focus();
  }

  // The fields, with the values in effect after step k (epochs: more, to train longer).
  fill() {
    const job = this.getJob();
    const k = this.step();
    const params = paramsAfterStep(job, k);
    if (this.trainsLonger(job) && typeof params.epochs === "number") {
      const limit = this.properties.find(([name]) => name === "epochs")?.[1]?.maximum ?? Infinity;
      params.epochs = Math.min(limit, Math.max(params.epochs * 2, k + 1));
    }
    this.fields = this.properties.map(([name, schema]) =>
      liveField(name, schema, params[name], { idPrefix: "fork", onCommit: () => {} }),
    );
    this.$("[data-fork-fields]").replaceChildren(...this.fields.map((field) => field.node));
    this.showError("");
  }

  showError(message) {
    const box = this.$("[data-fork-error]");
    box.textContent = message;
    box.hidden = !message;
  }

  async submit() {
    const job = this.getJob();
    const k = Number(this.stepInput.value);
    const params = {};
    for (const field of this.fields) {
      field.setError("");
      if (field.value !== null) params[field.name] = field.value;
    }
    const changed = Object.entries(params)
      .filter(([name, value]) => value !== paramsAfterStep(job, k)[name])
      .map(([name, value]) => `${name}=${value}`);
    const button = this.$("[data-fork-submit]");
    button.disabled = true;
    this.showError("");
    try {
      const child = await api.createJob({
        kind: job.kind,
        params,
        device: job.device ?? "auto",
        name: [`${jobLabel(job)} · from step ${k}`, ...changed].join(", ").slice(0, 200),
        fork: { job_id: job.id, step: k },
      });
      location.assign(`/jobs/${child.id}`);
    } catch (error) {
      button.disabled = false;
      const unplaced = [];
      const errors = error.fieldErrors?.() ?? [];
      for (const { field, msg } of errors) {
        const own = this.fields.find((f) => f.name === field);
        if (own) own.setError(msg);
        else unplaced.push(msg);
      }
      this.showError(errors.length ? unplaced.join("; ") : error.message);
    }
  }
}
