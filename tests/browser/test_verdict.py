"""The verdict beside a run's status (issue "The run page becomes a playground"): final and best
losses, where the best validation loss was, whether the loss still falls, and the book's printed
result beside a run on the book's settings."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.helpers import create_job, metric_rows, screenshot, wait_for_job

pytestmark = pytest.mark.browser


def open_job(page, job_id: str) -> None:
    page.goto(f"/jobs/{job_id}")
    page.wait_for_selector("#job-view[data-ready=true]")


def verdict_lines(page) -> list[str]:
    return [line.strip() for line in page.locator("[data-verdict] p").all_inner_texts()]


@pytest.mark.parametrize(
    "params,book",
    [
        ({}, "The book: w = 5.3671, b = −17.3012, loss = 2.927648"),
        ({"optimizer": "adam", "lr": 0.1, "epochs": 2000, "input_scale": 1}, "The book: w = 0.5367, b = −17.3021, loss = 2.927645"),
    ],
)
def test_a_run_on_the_books_settings_is_compared_with_the_books_printed_result(page, api, params, book):
    job = create_job(api, "linear", params, seed=2)
    done = wait_for_job(api, job["id"])
    assert done["status"] == "succeeded"
    open_job(page, job["id"])
    line = page.locator("[data-verdict] [data-book]")
    line.wait_for()
    text = line.inner_text()
    assert "These are the book's settings (Chapter 5" in text and book in text
    w, b, loss = (done["result"][k] for k in ("w", "b", "train_loss"))
    assert f"this run: w = {w:.4f}, b = {b:.4f}".replace("-", "−") in text
    assert f"loss = {loss:.6f}" in text
    assert text.endswith("matched (within 2 in the last printed digit).")
    assert "Converged" in " ".join(verdict_lines(page)) or "Still falling" in " ".join(verdict_lines(page))
    screenshot(page, f"verdict-book-{params.get('optimizer', 'manual')}")


def test_a_run_off_the_books_settings_gets_no_book_line(page, api):
    job = create_job(api, "linear", {"epochs": 5000, "lr": 0.011}, seed=2)
    wait_for_job(api, job["id"])
    open_job(page, job["id"])
    page.locator("[data-verdict] p").first.wait_for()
    assert page.locator("[data-verdict] [data-book]").count() == 0


def test_a_slow_run_says_how_fast_it_still_falls_and_what_to_try(page, api):
    # The book's raw readings with lr 1e-4: loss about 24.9 after 5000 epochs and still falling.
    job = create_job(api, "linear", {"optimizer": "sgd", "lr": 1e-4, "input_scale": 1}, seed=2)
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    rows = metric_rows(api, job["id"])
    end, before = rows[-1], next(r for r in rows if r["step"] == rows[-1]["step"] - 100)
    per100 = 100 * (before["train_loss"] - end["train_loss"]) / before["train_loss"]
    open_job(page, job["id"])
    page.locator("[data-verdict] p").first.wait_for()
    lines = verdict_lines(page)
    assert lines[0] == f"Training loss {end['train_loss']:.4g} after 5,000 epochs."
    match = re.search(r"Still falling ([0-9.]+)% per 100 epochs: not converged; try more epochs or input_scale 0.1\.", lines[1])
    assert match, lines
    assert float(match.group(1)) == pytest.approx(per100, abs=0.05)
    screenshot(page, "verdict-not-converged")


def test_the_best_validation_loss_is_ringed_on_the_chart_and_named(page, api):
    job = create_job(api, "mlp", {"epochs": 3000, "optimizer": "adam", "lr": 0.05, "val_fraction": 0.3}, seed=3)
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    rows = [r for r in metric_rows(api, job["id"]) if r["val_loss"] is not None]
    best = min(rows, key=lambda r: r["val_loss"])
    open_job(page, job["id"])
    chart = page.locator("[data-loss-chart]")
    page.wait_for_function("(document.querySelector('[data-loss-chart]').dataset.spots || '[]') !== '[]'")
    spots = json.loads(chart.get_attribute("data-spots"))
    assert spots == [{"x": best["step"], "y": pytest.approx(best["val_loss"]), "label": "best val"}]
    text = " ".join(verdict_lines(page))
    if best["step"] != rows[-1]["step"]:
        assert f"the best validation loss was {best['val_loss']:.4g} at step {best['step']:,}" in text
    overfit = rows[-1]["val_loss"] > 1.2 * best["val_loss"] and rows[-1]["train_loss"] < best["train_loss"]
    assert overfit, f"premise: adam at lr 0.05 for 3000 epochs overfits 8 points: {best}, {rows[-1]}"
    assert f"The validation loss has risen since step {best['step']:,}" in text and "overfitting" in text
    screenshot(page, "verdict-best-val")
