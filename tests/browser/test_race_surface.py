"""Compare's race (issue 13): line-fit runs over the same points drawn as their real (w, b) paths on
one loss surface, a colour per run named in a legend, replayed together in step."""

from __future__ import annotations

import pytest

from tests.browser.helpers import create_job, metric_rows, screenshot, wait_for_job

pytestmark = pytest.mark.browser

RACERS = [  # three optimizers from three starts, so that no path hides under another
    {"optimizer": "manual", "lr": 1e-2, "init_w": 1.0, "init_b": 0.0},
    {"optimizer": "sgd", "lr": 5e-3, "init_w": 9.0, "init_b": -5.0},
    {"optimizer": "adam", "lr": 0.3, "init_w": -1.0, "init_b": -30.0},
]

# Each run's path as the page holds it, where its pixels are drawn, and how many of those pixels
# carry the run's colour (the line is 2.5 px wide; a later run may cross it here and there).
DRAWN_JS = """() => {
  const race = window.playgroundRace, map = race.map;
  const ctx = map.canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const image = ctx.getImageData(0, 0, map.canvas.width, map.canvas.height);
  return race.paths.map((path, k) => {
    const rgb = [1, 3, 5].map((i) => parseInt(path.color.slice(i, i + 2), 16));
    const pixels = map.pixelsOf(path).filter(([x, y]) => x > 60 && y > 14 && x < map.cssSize.width - 14 && y < map.cssSize.height - 44);
    let coloured = 0;
    for (const [x, y] of pixels) {
      const at = 4 * (Math.round(y * dpr) * image.width + Math.round(x * dpr));
      if (rgb.every((c, i) => Math.abs(c - image.data[at + i]) < 40)) coloured += 1;
    }
    return {id: path.job.id, color: path.color, steps: path.steps, ws: path.ws, bs: path.bs, pixels: pixels.length, coloured};
  });
}"""


def test_compare_races_linear_runs_on_one_surface_with_their_real_paths_and_replays_them_in_step(page, api):
    jobs = [create_job(api, "linear", {"epochs": 150, **racer}, seed=3) for racer in RACERS]
    other = create_job(api, "linear", {"epochs": 50, "input_scale": 1.0, "lr": 1e-4}, seed=3)  # another surface
    done = [wait_for_job(api, job["id"]) for job in [*jobs, other]]
    assert all(job["status"] == "succeeded" for job in done)
    ids = [job["id"] for job in [*jobs, other]]

    page.goto(f"/compare?ids={','.join(ids)}")
    race = page.locator("[data-race]")
    page.wait_for_selector("[data-race][data-ready=true]")
    page.wait_for_selector("[data-race-surface][data-path-points]")  # drawn
    assert race.get_attribute("data-runs") == "3"
    assert "Not in the race" in race.locator("[data-race-note]").inner_text()

    drawn = page.evaluate(DRAWN_JS)
    assert [d["id"] for d in drawn] == ids[:3]
    assert len({d["color"] for d in drawn}) == 3, "a colour per run"
    legend = race.locator("[data-race-legend] li")
    assert legend.count() == 3
    for job, d, item in zip(done, drawn, legend.all()):
        # The real path: every metric point's (w, b) at its step, then the result's final (w, b).
        rows = metric_rows(api, job["id"])
        assert d["steps"] == [row["step"] for row in rows] + [151]
        assert d["ws"] == [row["w"] for row in rows] + [job["result"]["w"]]
        assert d["bs"] == [row["b"] for row in rows] + [job["result"]["b"]]
        assert d["coloured"] >= 0.5 * d["pixels"] > 0, f"{job['params']['optimizer']}'s path is not painted in its colour"
        assert item.locator(".swatch").evaluate("n => getComputedStyle(n).backgroundColor") != ""
        assert job["params"]["optimizer"] in item.inner_text()
    screenshot(page, "compare-race")

    # In step: the slider (by keyboard) moves every run's dot to its own point at that step.
    slider = race.locator("[data-race-step]")
    slider.evaluate("n => n.scrollIntoView({block: 'center'})")
    slider.fill("40")
    slider.focus()
    page.keyboard.press("ArrowRight")
    assert race.get_attribute("data-step") == "41"
    for job, item in zip(done, legend.all()):
        row = next(r for r in metric_rows(api, job["id"]) if r["step"] == 41)
        assert page.evaluate(
            "([id]) => { const p = window.playgroundRace.paths.find((q) => q.job.id === id); const i = p.steps.indexOf(41); return [p.ws[i], p.bs[i]]; }",
            [job["id"]],
        ) == [row["w"], row["b"]]
        text = item.inner_text()
        assert "w = " in text and "b = " in text
    # Play runs to the end by itself (no clock in the test: wait for the state it ends in).
    slider.fill("148")
    race.locator("[data-race-play]").click()
    page.wait_for_selector("[data-race][data-step='151']")
    assert race.locator("[data-race-play]").get_attribute("aria-pressed") == "false"


def test_the_race_fits_a_phone_screen(phone, api):
    jobs = [create_job(api, "linear", {"epochs": 60, **racer}, seed=4) for racer in RACERS[:2]]
    for job in jobs:
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    phone.goto(f"/compare?ids={','.join(job['id'] for job in jobs)}")
    phone.wait_for_selector("[data-race][data-ready=true]")
    phone.wait_for_selector("[data-race-surface][data-path-points]")
    box = phone.locator("[data-race-surface] canvas").bounding_box()
    assert box["width"] <= 390
    assert phone.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    screenshot(phone, "compare-race-phone")
