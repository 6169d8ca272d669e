"""Weights and gradients over time on the run page (issue 14): per layer, heatmaps of the weight and
gradient histograms of every snapshot and the gradient norm per layer, drawn from the API's
snapshots and following the replay; a deep sigmoid net's vanishing gradients in the readouts; the
value axis of the heatmaps, the whole run's or each snapshot's own (the gradients' default)."""

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


@pytest.fixture(scope="module")
def sigmoid_run(server) -> tuple[dict, list[dict]]:
    """A deep sigmoid mlp, ended, and its snapshots (both tests of this file look at it)."""
    with server.client() as client:
        job = create_job(client, "mlp", {"epochs": 300, "layers": 4, "activation": "sigmoid", "hidden": 6}, seed=0)
        assert wait_for_job(client, job["id"])["status"] == "succeeded"
        return job, client.get(f"/api/jobs/{job['id']}/snapshots").json()["snapshots"]


def test_each_layers_weights_and_gradients_are_drawn_from_the_snapshots_and_follow_the_replay(page, sigmoid_run):
    job, shots = sigmoid_run
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
    # and the canvas is painted exactly where a column has some. The weights on the whole run's
    # value axis, the gradients each on their snapshot's own (the defaults).
    assert panel.get_attribute("data-weights-axis") == "run" and panel.get_attribute("data-grads-axis") == "snapshot"
    heat = page.evaluate("window.playgroundJob.histograms.heat")
    for k, name in enumerate(names):
        for what in ("weights", "grads"):
            drawn = heat[name][what]
            for shot, column, shown in zip(shots, drawn["columns"], drawn["ranges"]):
                layer = shot["histograms"][k]
                if what == "weights":
                    assert shown == {"lo": drawn["lo"], "hi": drawn["hi"]}
                else:
                    assert shown == {"lo": layer[what]["edges"][0], "hi": layer[what]["edges"][-1]}
                row_width = (shown["hi"] - shown["lo"]) / ROWS
                assert sum(column) == pytest.approx(math.prod(layer["shape"]), rel=1e-9)
                centre = shown["lo"] + sum((r + 0.5) * m for r, m in enumerate(column)) / sum(column) * row_width
                assert abs(centre - histogram_mean(layer[what])) <= row_width, (name, what, shot["step"])
            cells, _ = read_canvas(page, name, what, len(shots))
            assert cells == [[m > 0 for m in column] for column in drawn["columns"]], (name, what)
        # On its own axis, a snapshot's gradients reach from the bottom row (their lowest value) to
        # the top (their highest), late snapshots too, whose gradients are far smaller than the first.
        cells, _ = read_canvas(page, name, "grads", len(shots))
        for shot, column in zip(shots, cells):
            counts = shot["histograms"][k]["grads"]["counts"]
            if counts[0] and counts[-1]:
                assert column[0] and column[-1], (name, shot["step"])
        assert sum(cells[-1]) > 2, (name, "the last snapshot's gradients are more than a line")

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


def grads_range_text(page, layer: str) -> str:
    return page.locator(f'[data-layer="{layer}"] [data-grads-range]').inner_text()


def test_the_gradients_value_axis_is_each_snapshots_own_or_the_whole_runs(page, sigmoid_run):
    """The gradients shrink over a run: on the whole run's axis a late snapshot's gradients are
    squeezed into a few rows; on each snapshot's own (the default) their shape shows, and the text
    says which axis it is and the range of the snapshot under the mouse or at the replay's step."""
    job, shots = sigmoid_run
    output = shots[-1]["histograms"][-1]  # the output layer: its gradients shrink the most in this run
    name, edges = output["layer"], output["grads"]["edges"]
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_function(f"document.querySelector('{PANEL}')?.dataset.snapshots === '{len(shots)}'")
    panel = page.locator(PANEL)
    panel.scroll_into_view_if_needed()

    # Each snapshot's own range: the text names the axis and the newest snapshot's range.
    own = page.evaluate(f"window.playgroundJob.histograms.heat['{name}'].grads")
    own_cells, _ = read_canvas(page, name, "grads", len(shots))
    text = grads_range_text(page, name)
    assert text.startswith("each snapshot its own range; step ") and f"{shots[-1]['step']:,}" in text, text
    assert own["ranges"][-1] == {"lo": edges[0], "hi": edges[-1]}
    screenshot(page, "histograms-gradients-own-axis")

    # The mouse over the first column: the text says the first snapshot's range.
    canvas = panel.locator(f'[data-layer="{name}"] canvas[data-grads]')
    canvas.hover(position={"x": 1, "y": 5})
    page.wait_for_function(f"""document.querySelector('[data-layer="{name}"] [data-grads-range]').dataset.column === '0'""")
    assert f"step {shots[0]['step']:,}:" in grads_range_text(page, name)
    page.mouse.move(0, 0)
    page.wait_for_function(
        f"""document.querySelector('[data-layer="{name}"] [data-grads-range]').dataset.column === '{len(shots) - 1}'"""
    )

    # The whole run's axis: one range for all, said so, and the late gradients squeezed into fewer rows.
    panel.get_by_label("gradients", exact=True).select_option("run")
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.gradsAxis === 'run'")
    page.wait_for_function(f"window.playgroundJob.histograms.heat['{name}'].grads.axis === 'run'")
    whole = page.evaluate(f"window.playgroundJob.histograms.heat['{name}'].grads")
    lo = min(s["histograms"][-1]["grads"]["edges"][0] for s in shots)
    hi = max(s["histograms"][-1]["grads"]["edges"][-1] for s in shots)
    assert (whole["lo"], whole["hi"]) == (lo, hi) and all(r == {"lo": lo, "hi": hi} for r in whole["ranges"])
    assert grads_range_text(page, name).endswith("(whole run)")
    whole_cells, _ = read_canvas(page, name, "grads", len(shots))
    assert whole_cells == [[m > 0 for m in column] for column in whole["columns"]]
    assert sum(whole_cells[-1]) < sum(own_cells[-1]), (whole_cells[-1], own_cells[-1])
    screenshot(page, "histograms-gradients-whole-run-axis")
