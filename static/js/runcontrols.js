// The controls beside a run's charts: Pause, Resume, Step (one epoch, or the number beside it),
// Cancel, with Space (pause or resume) and → (step) as keyboard shortcuts, and the live
// parameters of the run's kind, each change PATCHed to the job.
//
// A command's answer only says the server took it; what it leads to (paused at the next step
// boundary, queued, running) comes over the event stream, so the page shows one status, the
// stream's, and says what it is waiting for meanwhile.

import { api } from "./api.js";
import { el, isTerminal, mayChange, num } from "./format.js";
import { liveField, liveProperties } from "./liveparams.js";

// What a job's status allows; the server answers 409 to the rest (and 403 to what mayChange,
// in format.js, refuses: another student's run).

export function allowedCommands(job, viewer = null) {
  const status = job.status;
  if (!mayChange(job, viewer)) return { pause: false, resume: false, step: false, cancel: false, change: false };
  return {
    pause: status === "queued" || status === "running",
    // A paused job goes on; an interrupted or failed one that kept a checkpoint starts from it.
    resume: status === "paused" || (isTerminal(status) && Boolean(job.resumable)),
    step: status === "paused",
    cancel: !isTerminal(status),
    change: !isTerminal(status),
  };
}

// Keys typed into a field, or Space on a button or link (which the browser turns into a click),
// are not shortcuts.
function typing(event) {
  const target = event.target;
  if (!(target instanceof Element)) return false;
  if (target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true], dialog[open]")) return true;
  return event.key === " " && Boolean(target.closest("button, a, summary, [role=button]"));
}

const WAITING = {
  pause: "Pausing at the next step…",
  resume: "Resuming…",
  step: "Stepping…",
  cancel: "Cancelling…",
};

export class RunControls {
  // onRevived(job): the server took a resume of an ended run (interrupted, failed); the page
  // must listen to its events again. onPatched(job): the answer to a change of live parameters.
  constructor(root, { jobId, getJob, onRevived, onPatched }) {
    this.root = root;
    this.jobId = jobId;
    this.getJob = getJob;
    this.onRevived = onRevived;
    this.onPatched = onPatched;
    this.$ = (selector) => root.querySelector(selector);
    this.waitingFor = null; // {command, status}: the status a command was sent at
    this.shownStatus = null;
    this.fields = [];
    this.viewer = null; // who is asking (GET /api/me), once known
    this.sent = new Map(); // name -> value PATCHed, not yet confirmed by a control event
    this.buttons = {
      pause: this.$("[data-pause]"),
      resume: this.$("[data-resume]"),
      step: this.$("[data-step]"),
      cancel: this.$("[data-cancel]"),
    };
    this.stepCount = this.$("[data-step-count]");
    this.buttons.pause.addEventListener("click", () => this.send("pause"));
    this.buttons.resume.addEventListener("click", () => this.send("resume"));
    this.buttons.step.addEventListener("click", () => this.send("step"));
    this.buttons.cancel.addEventListener("click", () => this.send("cancel"));
    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  setViewer(viewer) {
    this.viewer = viewer;
    this.update(this.getJob());
  }

  say(text) {
    this.$("[data-control-message]").textContent = text;
  }

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || typing(event)) return;
    const allowed = allowedCommands(this.getJob(), this.viewer);
    if (event.key === " ") {
      // Space belongs to the page only when it has something to do; otherwise it scrolls.
      const command = allowed.pause ? "pause" : this.getJob().status === "paused" ? "resume" : null;
      if (!command || this.buttons[command].disabled) return;
      event.preventDefault();
      this.send(command);
    } else if (event.key === "ArrowRight" && allowed.step && !this.buttons.step.disabled) {
      event.preventDefault();
      this.send("step");
    }
  }

  stepAmount() {
    const n = Math.floor(Number(this.stepCount.value));
    return Number.isFinite(n) && n >= 1 ? Math.min(n, 100_000) : 1;
  }

  async send(command) {
    const job = this.getJob();
    const revive = command === "resume" && isTerminal(job.status);
    this.waitingFor = { command, status: job.status };
    this.update(job);
    this.say(command === "step" ? `Running ${this.stepAmount()} epoch(s), then pausing again…` : WAITING[command]);
    try {
      let reply;
      if (command === "pause") reply = await api.pauseJob(this.jobId);
      else if (command === "resume") reply = await api.resumeJob(this.jobId);
      else if (command === "step") reply = await api.stepJob(this.jobId, { epochs: this.stepAmount() });
      else reply = await api.cancelJob(this.jobId);
      if (revive) this.onRevived(reply);
    } catch (error) {
      this.waitingFor = null;
      this.say(error.message);
      this.update(this.getJob());
    }
  }

  // The job as the page knows it now (from the stream): which buttons apply, what they say.
  update(job) {
    if (this.waitingFor && this.waitingFor.status !== job.status) {
      this.waitingFor = null;
      this.say(job.status === "paused" ? `Paused after step ${(job.progress?.step ?? 0).toLocaleString()}.` : "");
    } else if (isTerminal(job.status) && this.shownStatus !== null && !isTerminal(this.shownStatus)) {
      this.say(""); // what it was waiting for is over
    }
    this.shownStatus = job.status;
    const allowed = allowedCommands(job, this.viewer);
    const notMine = !mayChange(job, this.viewer);
    const note = this.$("[data-owner-note]");
    note.hidden = !notMine;
    const whose = job.owner ? `This is ${job.owner}'s run: only ${job.owner} or a teacher` : "This run has no owner: only a teacher";
    note.textContent = notMine ? `${whose} can pause, change or cancel it. "Continue from a step" makes a run of your own from it.` : "";
    const busy = Boolean(this.waitingFor);
    this.buttons.pause.disabled = busy || !allowed.pause;
    this.buttons.resume.disabled = busy || !allowed.resume;
    this.buttons.step.disabled = busy || !allowed.step;
    this.stepCount.disabled = !allowed.step;
    this.buttons.cancel.hidden = !allowed.cancel;
    this.buttons.cancel.disabled = busy && this.waitingFor.command === "cancel";
    this.buttons.resume.textContent =
      isTerminal(job.status) && job.resumable ? `Resume from step ${(job.checkpoint_step ?? 0).toLocaleString()}` : "Resume";
    // An ended run that cannot go on keeps only what it can still do: fork, below.
    const ended = isTerminal(job.status) && !job.resumable;
    this.$(".control-buttons").hidden = ended;
    this.$("[data-keys-help]").hidden = ended;
    // Only a queued, running or paused run takes changes; an ended one is continued by a fork.
    this.$("[data-live-params]").hidden = !this.fields.length || !allowed.change;
    for (const field of this.fields) field.setDisabled(!allowed.change);
    this.syncFields(job);
  }

  // ---- live parameters ----------------------------------------------------------------------

  mountLiveParams(kindInfo) {
    const properties = liveProperties(kindInfo);
    const box = this.$("[data-live-fields]");
    const job = this.getJob();
    this.fields = properties.map(([name, schema]) =>
      liveField(name, schema, job.params?.[name], { idPrefix: "live", onCommit: (value) => this.change(name, value) }),
    );
    box.replaceChildren(...this.fields.map((field) => field.node));
    this.$("[data-live-params]").hidden = !this.fields.length;
    this.update(job);
  }

  // Inputs follow the job's parameters, except the one being edited and those sent but not applied.
  syncFields(job) {
    for (const field of this.fields) {
      if (field.focused() || this.sent.has(field.name)) continue;
      const value = job.params?.[field.name];
      if (value !== undefined && field.value !== value) field.value = value;
    }
  }

  async change(name, value) {
    const field = this.fields.find((f) => f.name === name);
    const job = this.getJob();
    if (value === job.params?.[name]) return;
    field.setError("");
    this.sent.set(name, value);
    this.say(`${name} = ${num(value)} sent; it applies from the next step.`);
    try {
      this.onPatched(await api.patchJob(this.jobId, { [name]: value }));
    } catch (error) {
      this.sent.delete(name);
      const own = error.fieldErrors?.().find((e) => e.field === name);
      field.setError(own ? own.msg : error.message);
      field.value = this.getJob().params?.[name];
      this.say("");
    }
  }

  // A `control` event: the change took effect after `step`.
  applied(change) {
    for (const [name, value] of Object.entries(change.params)) {
      this.sent.delete(name);
      this.fields.find((f) => f.name === name)?.setError("");
    }
    const what = Object.entries(change.params).map(([k, v]) => `${k} = ${num(v)}`).join(", ");
    this.say(`${what} from step ${(change.step + 1).toLocaleString()} on.`);
    this.syncFields(this.getJob());
  }
}
