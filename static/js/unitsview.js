// The small network's output as a sum of bent lines: each hidden unit's contribution (its output
// weight times its activation) as a thin curve under the output, over the data's range and as far
// again on each side, shaded there: beyond the data the network extrapolates from those lines.

import { LineChart, PALETTE, withAlpha } from "./charts.js";
import { el } from "./format.js";

// xLabel: "x" for a run on its own data.
export function renderHiddenUnits(box, units, { xLabel = "x (t_u)" } = {}) {
  const shown = units.units.length;
  const caption = shown < units.hidden
    ? `The ${shown} of its ${units.hidden} hidden units that move the output most`
    : `Its ${units.hidden} hidden units`;
  const chartNode = el("div", { class: "chart", dataset: { unitsChart: "" } });
  box.replaceChildren(
    el("h3", {}, "What the hidden units add up to"),
    chartNode,
    el("p", { class: "help" },
      `${caption}: each thin line is one unit's output weight times its activation. The network's output (black) is their sum plus a bias of ${Number(units.bias.toPrecision(4))}. In the shaded stretches there are no data points: the network goes on with the lines it has.`),
  );
  const chart = new LineChart(chartNode, {
    height: 260,
    wholeX: false,
    xLabel,
    yLabel: "contribution to y",
    legend: false,
    spec: () => ({
      series: [
        { label: "network output", stroke: "#222222", width: 2.5 },
        ...units.units.map((j, i) => ({ label: `unit ${j}`, stroke: withAlpha(PALETTE[i % PALETTE.length], 0.75), width: 1 })),
      ],
    }),
  });
  chart.setData([units.x, units.output, ...units.contributions]);
  const [lo, hi] = units.data_range;
  chart.setBands([
    { x0: units.x[0], x1: lo, label: "beyond the data" },
    { x0: hi, x1: units.x.at(-1), label: "beyond the data" },
  ]);
  chartNode.dataset.units = String(shown); // for the tests
  return chart;
}
