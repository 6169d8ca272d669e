"""Weights and gradients over time on the run page (issue 14): per layer, heatmaps of the weight and
gradient histograms of every snapshot and the gradient norm per layer, drawn from the API's
snapshots and following the replay; a deep sigmoid net's vanishing gradients in the readouts."""

from __future__ import annotations

import math

import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job

pytestmark = pytest.mark.browser

ROWS = 40  # static/js/histview.js ROWS
PANEL = "[data-histograms-panel]"
# The canvas of a layer's heatmap, read back: the red+green+blue of each cell's centre pixel
# ([column][row], row 0 at the bottom; white is 765) and the darkest pixel of each column.
READ_CANVAS = """([layer, what, columns, rows]) => {
  const canvas = document.querySelector(`[data-layer="${layer}"] canvas[data-${what}]`);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const rgb = (x, y) => { const at = 4 * (y * canvas.width + x); return pixels[at] + pixels[at + 1] + pixels[at + 2]; };
  const cw = Math.floor(canvas.width / columns), rh = Math.floor(canvas.height / rows);
  const centre = [], darkest = [];
  for (let i = 0; i < columns; i++) {
    const x = i * cw + Math.floor(cw / 2);
    centre.push(Array.from({ length: rows }, (_, r) => rgb(x, (rows - 1 - r) * rh + Math.floor(rh / 2))));
    darkest.push(Math.min(...Array.from({ length: canvas.height }, (_, y) => rgb(x, y))));
  }
  return { centre, darkest };
}"""


def histogram_mean(picture: dict) -> float:
    edges, counts = picture["edges"], picture["counts"]
    return sum(c * (a + b) / 2 for a, b, c in zip(edges, edges[1:], counts)) / sum(counts)


def read_canvas(page, layer: str, what: str, columns: int) -> tuple[list[list[bool]], list[int]]:
    """([column][row] whether the cell is painted (not white), the darkest pixel of each column)."""
    canvas = page.evaluate(READ_CANVAS, [layer, what, columns, ROWS])
    return [[v != 765 for v in column] for column in canvas["centre"]], canvas["darkest"]


def test_each_layers_weights_and_gradients_are_drawn_from_the_snapshots_and_follow_the_replay(page, api):
    job = create_job(api, "mlp", {"epochs": 300, "layers": 4, "activation": "sigmoid", "hidden": 6}, seed=0)
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    shots = api.get(f"/api/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert len(shots) >= 2 and all("histograms" in s for s in shots)
    names = [layer["layer"] for layer in shots[-1]["histograms"]]
    assert names == ["hidden_linear", "hidden_linear_2", "hidden_linear_3", "hidden_linear_4", "output_linear"]

    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.snapshots === '{len(shots)}'")
    panel = page.locator(PANEL)
    assert panel.is_visible()
    assert [f.get_attribute("data-layer") for f in panel.locator("[data-layer]").all()] == names

    # The gradient-norm chart holds the API's numbers, layer by layer, at the snapshots' steps.
    norms = page.evaluate("window.playgroundJob.histograms.normChart.data")
    assert norms[0] == [s["step"] for s in shots]
    for k in range(len(names)):
        assert norms[k + 1] == [s["histograms"][k]["grad_norm"] for s in shots]

    # Each heatmap column holds all of the layer's values, centred where the API's histogram is;
    # and the canvas is painted exactly where a column has some.
    heat = page.evaluate("window.playgroundJob.histograms.heat")
    for k, name in enumerate(names):
        for what in ("weights", "grads"):
            drawn = heat[name][what]
            row_width = (drawn["hi"] - drawn["lo"]) / ROWS
            for shot, column in zip(shots, drawn["columns"]):
                layer = shot["histograms"][k]
                assert sum(column) == pytest.approx(math.prod(layer["shape"]), rel=1e-9)
                centre = drawn["lo"] + sum((r + 0.5) * m for r, m in enumerate(column)) / sum(column) * row_width
                assert abs(centre - histogram_mean(layer[what])) <= row_width, (name, what, shot["step"])
            cells, _ = read_canvas(page, name, what, len(shots))
            assert cells == [[m > 0 for m in column] for column in drawn["columns"]], (name, what)

    # The vanishing gradients, in the readouts: the first layer's norm a small part of the output's.
    readouts = [float(v) for v in panel.locator("[data-norm]").evaluate_all("els => els.map((e) => e.dataset.value)")]
    assert readouts == [layer["grad_norm"] for layer in shots[-1]["histograms"]]
    assert readouts[0] < readouts[-1] / 5
    panel.scroll_into_view_if_needed()
    screenshot(page, "histograms-sigmoid-4-layers")

    # The replay at step 150: the snapshot at or before it, later columns faint, a cursor on the norms.
    page.locator("[data-replay-scrubber]").fill("149")
    page.wait_for_function("window.playgroundJob.replay.shown === 149")
    at = max((s["step"] for s in shots if s["step"] <= 150), default=None)
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.step === '{at}'")
    shown = next(s for s in shots if s["step"] == at)
    readouts = [float(v) for v in panel.locator("[data-norm]").evaluate_all("els => els.map((e) => e.dataset.value)")]
    assert readouts == [layer["grad_norm"] for layer in shown["histograms"]]
    page.wait_for_function("document.querySelector('[data-grad-norm-chart]').dataset.cursor === '150'")
    cells, darkest = read_canvas(page, names[0], "weights", len(shots))
    assert cells == [[m > 0 for m in column] for column in heat[names[0]]["weights"]["columns"]]
    index = [s["step"] for s in shots].index(at)
    if index < len(shots) - 1:  # the columns after it are still painted, only fainter
        assert min(darkest[index + 1 :]) > max(darkest[: index + 1]), darkest

    page.get_by_role("button", name="Back to the run").click()
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.step === '{shots[-1]['step']}'")
    assert page.locator("[data-grad-norm-chart]").get_attribute("data-cursor") == ""
