// Replay of a run, finished or still going: a scrubber, and Play at a chosen speed, drive every
// picture on the page together (a cursor on the loss chart; the fitted line and the (w, b) point
// on the loss surface for the line fit; the network's curve for mlp; the confusion matrix and the
// accuracy per class for cifar). Everything comes from what the page already holds -- the metric
// store, and the run's snapshots read once -- so dragging the scrubber sends no request.

import { indexAtStep } from "./lineage.js";
import { num } from "./format.js";

// Speeds in epochs per second; "whole" plays any run in WHOLE_SECONDS.
export const SPEEDS = [
  { value: "1", label: "1 epoch/s", epochsPerSecond: 1 },
  { value: "10", label: "10 epochs/s", epochsPerSecond: 10 },
  { value: "100", label: "100 epochs/s", epochsPerSecond: 100 },
  { value: "whole", label: "whole run in 5 s", epochsPerSecond: null },
];
const WHOLE_SECONDS = 5;

// The last snapshot taken at or before `step` (snapshots are sorted by step).
export function snapshotAt(snapshots, step) {
  let lo = 0, hi = snapshots.length - 1, found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((snapshots[mid].step ?? 0) <= step) {
      found = snapshots[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class Replay {
  // show(frame) draws one frame: {index, step, epoch, w, b, train, val, snapshot}; exit() puts the
  // live (or final) pictures back; loadSnapshots() reads the run's pictures (once).
  constructor(root, { store, getJob, loadSnapshots, show, exit }) {
    this.root = root;
    this.store = store;
    this.getJob = getJob;
    this.loadSnapshots = loadSnapshots;
    this.showFrame = show;
    this.exitReplay = exit;
    this.snapshots = null;
    this.loading = null;
    this.active = false;
    this.playing = false;
    this.position = 0; // in steps (fractional while playing)
    this.frame = null;
    this.lastTime = null;
    this.shown = null; // the index shown last
    this.$ = (selector) => root.querySelector(selector);
    this.panel = this.$("[data-replay]");
    this.scrubber = this.$("[data-replay-scrubber]");
    this.playButton = this.$("[data-replay-play]");
    this.speed = this.$("[data-replay-speed]");
    this.readout = this.$("[data-replay-readout]");
    this.exitButton = this.$("[data-replay-exit]");
    this.speed.replaceChildren(...SPEEDS.map((s) => new Option(s.label, s.value, false, s.value === "whole")));
    this.scrubber.addEventListener("input", () => {
      this.pause();
      this.seekIndex(Number(this.scrubber.value));
    });
    this.playButton.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.exitButton.addEventListener("click", () => this.stop());
  }

  // New points arrived (or the history): the scrubber spans them all.
  update() {
    const n = this.store.length;
    this.panel.hidden = n < 2;
    this.scrubber.max = String(Math.max(0, n - 1));
    if (!this.active) this.scrubber.value = this.scrubber.max;
  }

  stepsPerEpoch() {
    const job = this.getJob();
    if (job.kind !== "cifar") return 1;
    // Before an epoch has ended, the run so far is (part of) the first.
    return this.store.stepsPerEpoch(job.fork_step ?? 0) ?? Math.max(1, this.store.steps.at(-1) ?? 1);
  }

  // Steps per second at the chosen speed.
  rate() {
    const speed = SPEEDS.find((s) => s.value === this.speed.value) ?? SPEEDS.at(-1);
    if (speed.epochsPerSecond === null) {
      const first = this.store.steps[0] ?? 0;
      return Math.max(1, (this.store.steps.at(-1) - first) / WHOLE_SECONDS);
    }
    return speed.epochsPerSecond * this.stepsPerEpoch();
  }

  ensureSnapshots() {
    if (this.snapshots || this.loading) return;
    this.loading = this.loadSnapshots().then(
      (snapshots) => {
        this.snapshots = snapshots;
        if (this.active && this.shown !== null) this.draw(this.shown, true);
      },
      () => (this.snapshots = []),
    );
  }

  begin() {
    if (this.active) return;
    this.active = true;
    this.root.dataset.replaying = "true";
    this.exitButton.hidden = false;
    this.ensureSnapshots();
  }

  seekIndex(index) {
    this.begin();
    const i = Math.max(0, Math.min(this.store.length - 1, index));
    this.position = this.store.steps[i] ?? 0;
    this.draw(i);
  }

  // Replay to the point at `step` (or the last one before it).
  seekStep(step) {
    this.seekIndex(Math.max(0, indexAtStep(this.store.steps, step)));
  }

  draw(i, force = false) {
    if (i === this.shown && !force) return;
    this.shown = i;
    this.scrubber.value = String(i);
    const s = this.store;
    const step = s.steps[i];
    const frame = {
      index: i,
      step,
      // cifar: the epochs finished by that step; linear and mlp: an epoch is a step
      epoch: this.getJob().kind === "cifar" ? Math.floor(step / this.stepsPerEpoch()) : step,
      w: s.w[i],
      b: s.b[i],
      train: s.train[i],
      val: s.val[i],
      snapshot: this.snapshots ? snapshotAt(this.snapshots, step) : null,
    };
    const parts = [`step ${step.toLocaleString()}`];
    if (this.getJob().kind === "cifar") parts.push(`epoch ${frame.epoch}`);
    if (frame.train != null) parts.push(`train loss ${num(frame.train)}`);
    if (frame.val != null) parts.push(`val loss ${num(frame.val)}`);
    if (frame.w != null) parts.push(`w ${num(frame.w)}, b ${num(frame.b)}`);
    this.readout.value = parts.join(" · ");
    this.root.dataset.replayStep = String(step); // for the tests
    this.showFrame(frame);
  }

  play() {
    this.begin();
    if (this.shown === null || this.shown >= this.store.length - 1) this.seekIndex(0);
    this.playing = true;
    this.playButton.textContent = "Pause replay";
    this.playButton.setAttribute("aria-pressed", "true");
    this.lastTime = null;
    const tick = (now) => {
      if (!this.playing) return;
      if (this.lastTime !== null) this.position += ((now - this.lastTime) / 1000) * this.rate();
      this.lastTime = now;
      const i = Math.max(0, indexAtStep(this.store.steps, this.position));
      this.draw(i);
      if (i >= this.store.length - 1) {
        this.pause();
        return;
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  pause() {
    this.playing = false;
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.playButton.textContent = "▶ Replay";
    this.playButton.setAttribute("aria-pressed", "false");
  }

  // Back to the run as it is now.
  stop() {
    this.pause();
    this.active = false;
    this.shown = null;
    delete this.root.dataset.replaying;
    delete this.root.dataset.replayStep;
    this.exitButton.hidden = true;
    this.readout.value = "";
    this.scrubber.value = this.scrubber.max;
    this.exitReplay();
  }
}
