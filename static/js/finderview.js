// A learning-rate range test's result on its run page: the loss against the learning rate (log
// scale), the suggested rate marked, and "Train with this lr" (the same settings and seed, trained).

import { api } from "./api.js";
import { LineChart, COLORS } from "./charts.js";
import { el, jobLabel } from "./format.js";

// A learning rate as people write it: 0.000026, 0.0023, 8.3.
const lrText = (lr) => String(Number(lr.toPrecision(2)));

export function finderSummary(finder) {
  const n = finder.losses.length;
  if (!n) return "A learning-rate range test that took no step.";
  const last = finder.lrs.at(-1);
  const stopped = last < 9.99 ? `; it stopped at lr ${lrText(last)}, where the loss blew up` : "";
  const advice = finder.suggested_lr === null ? "The loss never fell: no rate to suggest." : `Suggested lr ${lrText(finder.suggested_lr)}: ${finder.rule}.`;
  return `A learning-rate range test: ${n} steps from lr ${lrText(finder.lrs[0])}${stopped}. ${advice}`;
}

export function renderFinder(box, job) {
  const finder = job.result.lr_finder;
  const chartNode = el("div", { class: "chart", dataset: { finderChart: "" } });
  const button = el("button", { type: "button", class: "primary", dataset: { finderTrain: "" } }, `Train with lr = ${lrText(finder.suggested_lr)}`);
  const message = el("p", { class: "form-error", role: "alert", hidden: true });
  box.replaceChildren(
    el("h3", {}, "Loss against the learning rate"),
    chartNode,
    el("p", { class: "help" }, "One step at each learning rate, going on from the last; the x axis is log10(lr). The dashed line is the smoothed loss."),
    ...(finder.suggested_lr === null ? [] : [el("div", { class: "button-row" }, button), message]),
  );
  const chart = new LineChart(chartNode, {
    height: 280,
    wholeX: false,
    xLabel: "log10(lr)",
    yLabel: "loss",
    spec: () => ({
      series: [
        { label: "loss", stroke: COLORS.train, width: 1.5 },
        { label: "smoothed", stroke: COLORS.fit, width: 2, dash: [6, 4] },
      ],
    }),
  });
  chart.setData([finder.lrs.map(Math.log10), finder.losses, finder.smoothed]);
  if (finder.suggested_lr !== null) {
    chart.setMarkers([{ x: Math.log10(finder.suggested_lr), label: `suggested ${lrText(finder.suggested_lr)}`, color: "#009E73", dash: [] }]);
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const created = await api.createJob({
        kind: job.kind,
        params: { ...job.params, lr_finder: false, lr: finder.suggested_lr },
        device: job.device ?? "auto",
        seed: job.seed,
        name: `${jobLabel(job)} · lr=${finder.suggested_lr}`.slice(0, 200),
      });
      location.href = `/jobs/${created.id}`;
    } catch (error) {
      button.disabled = false;
      message.textContent = error.message;
      message.hidden = false;
    }
  });
  return chart;
}
