"""The runs list sorts and filters through the API and keeps both in its address; a run's name and
notes are edited in place, and another tab's list shows the change from the server's stream.

Every run here starts paused (it holds no worker and nothing races the clock) with an ``init_b`` no
other test uses, and the list is filtered on it, so the session server's other runs never show.
"""

from __future__ import annotations

from typing import Any

from tests.browser.helpers import create_job, watched_tab

MARK = 0.2718
LIST = "/jobs?sort=name&filter=init_b%3D0.2718"


def held(api, name: str, init_b: float = MARK) -> dict[str, Any]:
    return create_job(api, "linear", {"epochs": 5, "init_b": init_b}, name=name, paused=True)


def names(page) -> list[str]:
    return page.locator("[data-job-rows] tr .job-name a").all_inner_texts()


def wait_for_names(page, expected: list[str]) -> None:
    page.wait_for_function(
        """(expected) => JSON.stringify([...document.querySelectorAll("[data-job-rows] tr .job-name a")]
             .map((a) => a.textContent)) === JSON.stringify(expected)""",
        arg=expected,
    )


def test_sorted_filtered_list_follows_a_rename_in_another_tab_and_survives_reload(page, browser, server, api) -> None:
    runs = [held(api, name) for name in ("mango", "kiwi", "apple")]
    try:
        page.goto(LIST)
        wait_for_names(page, ["apple", "kiwi", "mango"])
        assert page.locator("#sort-by").input_value() == "name"
        assert page.locator("#filter-where").input_value() == "init_b=0.2718"

        with watched_tab(browser, server.url) as other:
            other.goto(LIST)
            wait_for_names(other, ["apple", "kiwi", "mango"])
            # Renamed in this tab: the other tab's list moves it to its new place.
            row = page.locator(f'tr[data-job-id="{runs[2]["id"]}"]')
            row.get_by_role("button", name="Rename apple").click()
            field = row.locator("[data-label-field]")
            field.fill("zucchini")
            field.press("Enter")
            wait_for_names(page, ["kiwi", "mango", "zucchini"])
            wait_for_names(other, ["kiwi", "mango", "zucchini"])
            # A new run outside the filter never shows; one inside it does, in its place.
            outside = held(api, "banana outside", init_b=0.5)
            inside = held(api, "lime")
            runs += [outside, inside]
            wait_for_names(other, ["kiwi", "lime", "mango", "zucchini"])
            assert other.locator(f'tr[data-job-id="{outside["id"]}"]').count() == 0

        assert api.get(f"/api/jobs/{runs[2]['id']}").json()["name"] == "zucchini"
        page.reload()
        wait_for_names(page, ["kiwi", "lime", "mango", "zucchini"])
        assert page.locator("#sort-by").input_value() == "name"

        # Reversed, then a filter the server refuses: the error names it, the rows stay.
        page.locator("#sort-by").select_option("-name")
        wait_for_names(page, ["zucchini", "mango", "lime", "kiwi"])
        assert "sort=-name" in page.url
        page.locator("#filter-where").fill("init_b=0.2718, lr=abc")
        page.locator("#filter-where").press("Enter")
        page.locator("[data-where-error]").filter(has_text="lr is a number").wait_for()
        assert names(page) == ["zucchini", "mango", "lime", "kiwi"]
        page.locator("#filter-where").fill("init_b = 0.2718, name~I")
        page.locator("#filter-where").press("Enter")
        wait_for_names(page, ["zucchini", "lime", "kiwi"])
        assert page.locator("[data-where-error]").is_hidden()
        page.reload()  # the address holds what the page shows
        wait_for_names(page, ["zucchini", "lime", "kiwi"])
        assert page.locator("#filter-where").input_value() == "init_b=0.2718, name~I"
    finally:
        for job in runs:
            api.post(f"/api/jobs/{job['id']}/cancel")


def test_the_run_page_edits_its_name_and_notes_in_place(page, api) -> None:
    job = held(api, "plain")
    try:
        page.goto(f"/jobs/{job['id']}")
        page.locator("[data-job-title]").filter(has_text="plain").wait_for()
        page.get_by_role("button", name="Rename plain").click()
        page.locator("[data-label-field]").fill("the book's fit")
        page.locator("[data-label-field]").press("Enter")
        page.locator("[data-job-title]").filter(has_text="the book's fit").wait_for()
        assert page.title().startswith("the book's fit")

        page.get_by_role("button", name="Add a note").click()
        page.locator("textarea[data-label-field]").fill("lr 1e-2 as in the book\nconverges by epoch 3000")
        page.get_by_role("button", name="Save").click()
        page.locator("[data-notes]").filter(has_text="converges by epoch 3000").wait_for()
        page.get_by_role("button", name="Edit the note").wait_for()

        # Too long: refused next to the field, which stays open.
        page.get_by_role("button", name="Rename the book's fit").click()
        page.locator("[data-label-field]").evaluate("(node) => node.removeAttribute('maxlength')")
        page.locator("[data-label-field]").fill("n" * 201)
        page.locator("[data-label-field]").press("Enter")
        page.locator("[data-label-editor] [role=alert]").filter(has_text="at most 200").wait_for()
        page.locator("[data-label-editor]").get_by_role("button", name="Cancel").click()
        page.locator("[data-job-title]").filter(has_text="the book's fit").wait_for()

        saved = api.get(f"/api/jobs/{job['id']}").json()
        assert (saved["name"], saved["notes"]) == ("the book's fit", "lr 1e-2 as in the book\nconverges by epoch 3000")
        page.reload()
        page.locator("[data-notes]").filter(has_text="converges by epoch 3000").wait_for()
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")


def test_a_name_of_200_unbroken_characters_wraps_and_keeps_the_lists_columns_on_screen(page, phone, api) -> None:
    # A hash or a URL as a name has no space to break at: it wraps inside its cell rather than
    # widening the table past the page, which pushed the status, result and actions out of sight.
    # Its own mark (the other tests' runs stay listed), and the row found by its id: a run of another
    # module with the same mark on the session server would not hide it.
    job = held(api, "r" * 200, init_b=0.5772)
    try:
        page.goto("/jobs?sort=name&filter=init_b%3D0.5772")
        page.locator(f"tr[data-job-id='{job['id']}']").wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than the window"
        table = page.locator(".jobs-table").bounding_box()
        for column in (".job-status", ".job-result", ".col-duration", ".job-actions"):
            cell = page.locator(f"tr[data-job-id='{job['id']}'] {column}").bounding_box()
            assert cell and cell["x"] + cell["width"] <= table["x"] + table["width"] + 1, column
        assert page.get_by_role("button", name="Cancel " + "r" * 200).is_visible()
        # Its own page and compare wrap it too, and so does the list on a phone.
        other = held(api, "short", init_b=0.5772)
        for tab, address in (
            (page, f"/jobs/{job['id']}"),
            (page, f"/compare?ids={job['id']},{other['id']}"),
            (phone, "/jobs?sort=name&filter=init_b%3D0.5772"),
        ):
            tab.goto(address)
            tab.get_by_text("r" * 200).first.wait_for()
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{address} is {overflow} px wider than the window"
        api.post(f"/api/jobs/{other['id']}/cancel")
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")
