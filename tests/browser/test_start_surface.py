"""The start page's loss surface for the line fit (issue 13, "Race on one surface"): the start point
(init_w, init_b) dragged with a mouse, a finger or the arrow keys, and the path the browser
previews from it, which must be the path the server's run then takes.

The preview (static/js/linearpreview.js) repeats linear.py's float32 operations one by one; what it
cannot repeat is the order in which torch adds up the 11 terms of each sum (vectorised lanes), a
few float32 roundings per step that the descent does not amplify. Measured here: manual and SGD
end bit for bit equal, Adam within 4e-7 relative after 100 to 2000 steps. The tests hold them to
1e-5 relative (about 170 float32 ulps: room for another CPU's summation order, and still a hundred
times under what a different update rule or a float64 preview would give).
"""

from __future__ import annotations

import math

import pytest

from tests.browser.helpers import screenshot, wait_for_job

pytestmark = pytest.mark.browser

REL = 1e-5


def open_linear(page, query: str = ""):
    page.goto(f"/?kind=linear{query}")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.wait_for_selector("[data-start-surface][data-path-points]")
    canvas = page.locator("[data-start-surface] canvas")
    # In the middle of the screen: clear of the sticky Train bar at its bottom.
    canvas.evaluate("node => node.scrollIntoView({block: 'center'})")
    return canvas


def start_values(page) -> tuple[float, float]:
    return float(page.locator("#param-init_w").input_value()), float(page.locator("#param-init_b").input_value())


def handle_position(page) -> tuple[float, float]:
    """Where the start handle is drawn, in page pixels."""
    return page.evaluate(
        """() => {
            const map = window.playgroundStart.map;
            const [x, y] = map.toPx(map.start.w, map.start.b);
            const rect = map.canvas.getBoundingClientRect();
            return [rect.left + x, rect.top + y];
        }"""
    )


def preview(page) -> dict:
    return page.evaluate(
        "() => { const p = window.playgroundStart.preview; return {w: p.final.w, b: p.final.b, steps: p.steps, "
        "first: [p.ws[0], p.bs[0]], diverged: p.diverged}; }"
    )


def train_and_wait(page, api) -> dict:
    page.locator("#train-button").click()
    page.wait_for_url("**/jobs/*")
    job = wait_for_job(api, page.url.rstrip("/").split("/")[-1])
    assert job["status"] == "succeeded", job
    return job


def assert_same_end(job: dict, seen: dict) -> None:
    for name in ("w", "b"):
        got, expected = seen[name], job["result"][name]
        assert math.isclose(got, expected, rel_tol=REL), f"{name}: preview {got!r}, server {expected!r}"


def test_dragging_the_start_previews_the_path_the_server_then_takes(page, api):
    canvas = open_linear(page, "&epochs=300&lr=0.01")
    assert preview(page)["first"] == [1.0, 0.0], "the book's start, w=1 and b=0, before anything is dragged"
    x, y = handle_position(page)
    box = canvas.bounding_box()
    page.mouse.move(x, y)
    page.mouse.down()
    target = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.move(*target, steps=5)
    page.mouse.up()
    w, b = start_values(page)
    assert (w, b) != (1.0, 0.0)
    seen = preview(page)
    assert seen["first"] == [pytest.approx(w, rel=1e-7), pytest.approx(b, rel=1e-7)], "the preview starts where the form says"
    assert seen["steps"] == 300 and not seen["diverged"]
    # The handle followed the mouse: it is drawn where the mouse let go (within the rounding to a pixel).
    hx, hy = handle_position(page)
    assert abs(hx - target[0]) < 2 and abs(hy - target[1]) < 2
    assert f"init_w={w:g}" in page.url.replace("%2C", ",") or f"init_w={w}" in page.url, "the address follows the start"
    screenshot(page, "start-surface-dragged")

    job = train_and_wait(page, api)
    assert (job["params"]["init_w"], job["params"]["init_b"]) == (w, b)
    assert_same_end(job, seen)


def test_the_arrow_keys_move_the_start_and_adams_preview_matches_the_server(page, api):
    canvas = open_linear(page, "&epochs=200&optimizer=adam&lr=0.1")
    canvas.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowUp")
    w, b = start_values(page)
    assert w < 1.0 and b > 0.0
    seen = preview(page)
    assert seen["first"] == [pytest.approx(w, rel=1e-7), pytest.approx(b, rel=1e-7)]
    assert page.locator("[data-start-readout]").inner_text().startswith("start: w = ")
    job = train_and_wait(page, api)
    assert_same_end(job, seen)


def test_a_phone_places_the_start_with_a_tap_and_the_page_does_not_scroll_sideways(phone):
    canvas = open_linear(phone, "&epochs=100")
    box = canvas.bounding_box()
    assert box["width"] <= 390
    phone.touchscreen.tap(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6)
    w, b = start_values(phone)
    assert (w, b) != (1.0, 0.0)
    assert preview(phone)["first"] == [pytest.approx(w, rel=1e-7), pytest.approx(b, rel=1e-7)]
    # The path is drawn from the new start: its first pixel is the handle.
    assert phone.evaluate("() => { const m = window.playgroundStart.map; const p = m.pathPixels()[0]; const h = m.toPx(m.start.w, m.start.b); return Math.abs(p[0] - h[0]) < 1 && Math.abs(p[1] - h[1]) < 1; }")
    assert phone.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")
    screenshot(phone, "start-surface-phone")


def test_a_start_typed_into_the_form_moves_the_handle_and_a_bad_one_is_refused_by_its_field(page):
    open_linear(page, "&epochs=50")
    page.locator("#param-init_w").fill("-4")
    page.locator("#param-init_b").fill("30")
    assert preview(page)["first"] == [-4.0, 30.0]
    # Out of bounds: the input's own bounds stop it; sent anyway (as an old page might), the
    # server's message lands by the field, naming it and the range.
    field = page.locator("#param-init_w")
    assert field.evaluate("node => [node.min, node.max]") == ["-1000000", "1000000"]
    field.evaluate("node => { node.removeAttribute('max'); node.value = '5e6'; }")
    page.locator("#train-button").click()
    error = page.locator("#param-init_w-error")
    error.wait_for(state="visible")
    assert "init_w is 5000000;" in error.inner_text() and "from -1,000,000 to 1,000,000" in error.inner_text()
