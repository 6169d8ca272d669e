"""Your own data (issue 13): on the start page's chart of the points, add, move and remove points
with a mouse, a finger and the keys, paste CSV into the data box, and fit them; the job's `data` is
what was drawn, bad data is refused by the chart with the line and the reason, and the points
survive a reload and Back."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.helpers import screenshot, wait_for_job

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")
CHART = "[data-point-chart]"


def open_form(page, path: str):
    page.goto(path)
    page.wait_for_selector("#train-form[data-ready=true]")
    return page.locator("#train-form")


def chart_state(page) -> dict:
    chart = page.locator(CHART)
    return {
        "points": int(chart.get_attribute("data-points")),
        "own": chart.get_attribute("data-own") == "true",
        "selected": chart.get_attribute("data-selected"),
        "x_range": json.loads(chart.get_attribute("data-x-range")),
        "y_range": json.loads(chart.get_attribute("data-y-range")),
    }


def box_points(page) -> list[list[float]]:
    """The data box's points (one "x, y" per line), as the form sends them."""
    text = page.locator("[name=data]").input_value()
    return [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]


def paste(page, text: str) -> None:
    """The text into the data box at once, as a paste does (Playwright's fill types a long text in
    at a speed that falls with its length)."""
    page.locator("[name=data]").evaluate(
        "(node, text) => { node.value = text; node.dispatchEvent(new Event('input', {bubbles: true})); }", text
    )


def at_fraction(page, fx: float, fy: float) -> tuple[float, float]:
    """Screen pixels fx of the way across the plot and fy of the way down it."""
    box = page.locator(f"{CHART} .u-over").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def value_at_fraction(page, fx: float, fy: float) -> tuple[float, float]:
    state = chart_state(page)
    (x0, x1), (y0, y1) = state["x_range"], state["y_range"]
    return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)


def pixel_of(page, point: list[float]) -> tuple[float, float]:
    state = chart_state(page)
    (x0, x1), (y0, y1) = state["x_range"], state["y_range"]
    return at_fraction(page, (point[0] - x0) / (x1 - x0), (y1 - point[1]) / (y1 - y0))


def near(page, point, expected, pixels: float = 2.0) -> bool:
    """point is within a few pixels of expected on the chart."""
    box = page.locator(f"{CHART} .u-over").bounding_box()
    state = chart_state(page)
    per_px_x = (state["x_range"][1] - state["x_range"][0]) / box["width"]
    per_px_y = (state["y_range"][1] - state["y_range"][0]) / box["height"]
    return abs(point[0] - expected[0]) <= pixels * per_px_x and abs(point[1] - expected[1]) <= pixels * per_px_y


def axis_titles(page, selector: str) -> list[str]:
    """The chart's axis titles (uPlot draws them on its canvas; the chart says them in data-axes)."""
    return json.loads(page.locator(selector).get_attribute("data-axes"))


def test_points_drawn_moved_and_removed_with_a_mouse_are_the_jobs_data(page, api):
    open_form(page, "/?kind=linear&epochs=200")
    start = chart_state(page)
    assert start["points"] == 11 and not start["own"], "the chart starts with the book's readings"
    assert axis_titles(page, CHART) == ["x (t_u)", "y (t_c, °C)"]
    page.get_by_role("button", name="Remove all").click()
    assert chart_state(page)["points"] == 0 and box_points(page) == []

    # Click three empty spots: a point at each, where it was clicked.
    wanted = []
    for fx, fy in [(0.2, 0.7), (0.5, 0.5), (0.8, 0.2)]:
        wanted.append(value_at_fraction(page, fx, fy))
        page.mouse.click(*at_fraction(page, fx, fy))
    drawn = box_points(page)
    assert len(drawn) == 3 and all(near(page, p, w) for p, w in zip(drawn, wanted)), (drawn, wanted)
    assert chart_state(page)["own"] and axis_titles(page, CHART) == ["x", "y"]

    # Drag the middle one up and to the right.
    target = value_at_fraction(page, 0.6, 0.3)
    page.mouse.move(*pixel_of(page, drawn[1]))
    page.mouse.down()
    page.mouse.move(*at_fraction(page, 0.55, 0.4), steps=3)
    page.mouse.move(*at_fraction(page, 0.6, 0.3), steps=3)
    page.mouse.up()
    moved = box_points(page)
    assert len(moved) == 3 and moved[0] == drawn[0] and moved[2] == drawn[2]
    assert near(page, moved[1], target, pixels=3), (moved[1], target)

    # A right-click removes the last one; clicking a point picks it and "Remove point" removes it.
    page.mouse.click(*pixel_of(page, moved[2]), button="right")
    assert box_points(page) == moved[:2]
    page.mouse.click(*pixel_of(page, moved[0]))
    assert chart_state(page)["selected"] == "0" and len(box_points(page)) == 2, "a click on a point picks it, adds none"
    page.get_by_role("button", name="Remove point").click()
    assert box_points(page) == [moved[1]]
    page.mouse.click(*at_fraction(page, 0.3, 0.6))
    page.mouse.click(*at_fraction(page, 0.9, 0.9))
    fitted = box_points(page)
    assert len(fitted) == 3 and chart_state(page)["points"] == 3
    screenshot(page, "own-data-drawn")

    page.get_by_role("button", name="Fit these points").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    assert api.get(f"/api/jobs/{job_id}").json()["params"]["data"] == fitted
    # The run page draws them, with axes and Try it in x and y.
    wait_for_job(api, job_id)
    page.wait_for_selector("#job-view[data-status=succeeded]")
    page.wait_for_selector("[data-fit-chart][data-points]")
    assert axis_titles(page, "[data-fit-chart]") == ["x", "y"]
    assert page.locator("label[for=predict-input]").inner_text() == "Input x"
    assert "t_c" not in page.locator("[data-tryit]").inner_text()


def test_points_from_the_keyboard_and_fit_them(page, api):
    open_form(page, "/?kind=mlp&epochs=50&val_fraction=0")
    page.locator("[name=lr_finder]").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('[data-point-chart]')"), "Tab reaches the chart"
    book = api.get("/api/kinds").json()
    book = next(k for k in book if k["kind"] == "mlp")["default_data"]
    leftmost = min(range(len(book)), key=lambda i: book[i][0])

    page.keyboard.press("]")  # picks the leftmost point
    assert chart_state(page)["selected"] == str(leftmost)
    y_span = chart_state(page)["y_range"][1] - chart_state(page)["y_range"][0]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    points = box_points(page)
    assert chart_state(page)["own"] and len(points) == 11
    assert points[leftmost][0] == book[leftmost][0]
    assert points[leftmost][1] == pytest.approx(book[leftmost][1] + 2 * y_span / 100, abs=y_span / 200)
    assert "Picked: point" in page.locator("[data-point-status]").inner_text()

    page.keyboard.press("Delete")  # removes it; the next point to the right is picked
    assert len(box_points(page)) == 10 and chart_state(page)["selected"] != ""
    page.keyboard.press("Delete")
    page.keyboard.press("+")  # one in the middle of the chart
    final = box_points(page)
    assert len(final) == 10
    assert page.evaluate("document.activeElement.matches('[data-point-chart]')"), "focus stays on the chart"

    # Tab on to "Fit these points" and press it.
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('[data-fit-points]')"):
            break
    page.keyboard.press("Enter")
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    assert api.get(f"/api/jobs/{job_id}").json()["params"]["data"] == final


def test_pasted_csv_is_drawn_and_bad_data_is_refused_naming_the_line(page, api):
    form = open_form(page, "/?kind=linear&epochs=100")
    box = form.locator("[name=data]")
    error = form.locator('[data-field="data"] .field-error')

    box.fill("x,y\n1, 2\n2,4.5\n3;6\n")  # a header line, spaces and semicolons
    assert chart_state(page)["points"] == 3 and chart_state(page)["own"]
    assert error.is_hidden()

    for text, words in [
        ("1,2\n2,abc\n3,4", ["line 2", '"abc"', "not a number"]),
        ("1,2\nNaN,3", ["line 2", "NaN", "finite"]),
        ("1,2\n3\n4,5", ["line 2", "1 value", "x, y"]),
    ]:
        box.fill(text)
        error.wait_for(state="visible")
        assert all(word in error.inner_text() for word in words), error.inner_text()
        assert chart_state(page)["points"] == 3, "the chart keeps the last points that parsed"
        assert box.get_attribute("aria-invalid") == "true"

    # Over the server's limit, said with the limit, before anything is sent.
    limit = next(k for k in api.get("/api/kinds").json() if k["kind"] == "linear")
    limit = limit["params_schema"]["properties"]["data"]["anyOf"][0]["maxItems"]
    paste(page, "\n".join(f"{i}, {2 * i}" for i in range(limit + 1)))
    assert f"{limit + 1:,} points" in error.inner_text() and f"{limit:,}" in error.inner_text()

    # One point: refused on Train, by the chart, and nothing is created.
    total = api.get("/api/jobs").json()["total"]
    box.fill("5, 6")
    assert error.is_hidden()
    page.get_by_role("button", name="Train").click()
    error.wait_for(state="visible")
    assert "1 point" in error.inner_text() and "at least 2" in error.inner_text()
    assert api.get("/api/jobs").json()["total"] == total

    # The API names the point and what is allowed too.
    answer = api.post("/api/jobs", json={"kind": "linear", "params": {"data": [[1, 2], [3, "abc"]]}})
    assert answer.status_code == 422
    (detail,) = answer.json()["detail"]
    assert detail["loc"] == ["body", "params", "data", 1, 1]
    assert "point 2" in detail["msg"] and "'abc'" in detail["msg"] and "finite numbers" in detail["msg"]


def test_points_survive_a_reload_and_back_in_the_address_or_the_tab(page):
    form = open_form(page, "/?kind=linear&epochs=20")
    few = "1, 2\n2, 4.5\n3, 6"
    form.locator("[name=data]").fill(few)
    page.wait_for_url(re.compile(r"data="))
    page.reload()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert form.locator("[name=data]").input_value() == few

    # Many points: the tab keeps them, the address has their key.
    many = [[i, i * 0.5 + 1] for i in range(2000)]
    paste(page, "\n".join(f"{x}, {y}" for x, y in many))
    page.wait_for_url(re.compile(r"data_key="))
    assert "data=" not in page.url and len(page.url) < 300
    page.reload()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert box_points(page) == many
    assert chart_state(page)["points"] == 2000

    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    run_page = page.url
    page.go_back()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert box_points(page) == many
    key_only = page.url

    # The run's "Edit these settings" brings its points back (read from the run, not the address).
    page.goto(run_page)
    page.wait_for_selector("#job-view[data-ready=true]")
    assert "data_from=" in page.locator("[data-edit-link]").get_attribute("href")
    page.locator("[data-edit-link]").click()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert box_points(page) == many and form.locator("[name=epochs]").input_value() == "20"

    # Another tab has no such points, and says so by the chart.
    assert "data_key=" in key_only
    other = page.context.new_page()
    other.goto(key_only)
    other.wait_for_selector("#train-form[data-ready=true]")
    assert other.locator("[name=data]").input_value() == ""
    assert "this tab does not have them" in other.locator('[data-field="data"] .field-error').inner_text()
    other.close()


def test_on_a_phone_a_tap_adds_a_point_and_a_picked_one_is_removed(phone):
    phone.goto("/?kind=mlp")
    phone.wait_for_selector("#train-form[data-ready=true]")
    phone.locator(CHART).scroll_into_view_if_needed()
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    phone.get_by_role("button", name="Remove all").tap()
    phone.touchscreen.tap(*at_fraction(phone, 0.3, 0.3))
    phone.touchscreen.tap(*at_fraction(phone, 0.7, 0.6))
    points = box_points(phone)
    assert len(points) == 2
    phone.touchscreen.tap(*pixel_of(phone, points[0]))
    assert chart_state(phone)["selected"] == "0" and len(box_points(phone)) == 2
    phone.get_by_role("button", name="Remove point").tap()
    assert box_points(phone) == [points[1]]

    # A finger on a point drags it (and does not scroll the page).
    target = value_at_fraction(phone, 0.4, 0.2)
    scrolled = phone.evaluate("scrollY")
    touch = phone.context.new_cdp_session(phone)
    path = [pixel_of(phone, points[1]), at_fraction(phone, 0.5, 0.4), at_fraction(phone, 0.4, 0.2)]
    for kind, (x, y) in zip(["touchStart", "touchMove", "touchMove"], path):
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    (dragged,) = box_points(phone)
    assert near(phone, dragged, target, pixels=3), (dragged, target)
    assert phone.evaluate("scrollY") == scrolled
    for name in ("Add a point", "Remove point", "Use the book's data", "Fit these points"):
        button = phone.get_by_role("button", name=name)
        assert button.bounding_box()["x"] + button.bounding_box()["width"] <= 390, f"{name} is cut off"
    screenshot(phone, "own-data-phone")
