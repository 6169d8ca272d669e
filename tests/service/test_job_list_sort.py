"""The runs list sorts and filters on the server (``GET /api/jobs?sort=...&filter=...``), so paging
by ``offset`` walks one consistent order; a sort or filter it cannot use is a 422 naming the field
and what is allowed.

Against the session's real server, which other tests share: every run here starts with one
``init_b`` no other test uses, and every request filters on it, so the other runs never count.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.helpers import field_errors, post_job, wait_for

MARK = "init_b=0.3141"  # this module's runs, and only them
# Six short linear fits, whose final losses differ with lr; two of them share lr=0.003.
RUNS = [("delta", 1e-3), ("Alpha", 3e-3), ("charlie", 1e-2), ("bravo", 3e-3), ("echo", 2e-3), ("foxtrot", 5e-3)]


@pytest.fixture(scope="module")
def client(server: Any) -> Any:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def runs(client: httpx.Client) -> list[dict[str, Any]]:
    made = [
        post_job(client, "linear", {"epochs": 20, "lr": lr, "init_b": 0.3141}, name=name, seed=1) for name, lr in RUNS
    ]
    finished = [wait_for(client, job["id"]) for job in made]
    assert [job["status"] for job in finished] == ["succeeded"] * len(RUNS), "premise: every fit ends"
    losses = [job["result"]["train_loss"] for job in finished]
    assert len(set(losses) - {None}) >= 5, f"premise: the fits end at different losses: {losses}"
    return finished


def walk(client: httpx.Client, page_size: int = 2, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every matching run, page by page (``offset``), as the list's "Show more" reads them."""
    items: list[dict[str, Any]] = []
    filters = [MARK, *params.pop("filters", [])]
    while True:
        response = client.get(
            "/api/jobs", params={**params, "filter": filters, "limit": page_size, "offset": len(items)}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items, page["total"]


def test_each_order_holds_across_pages(client: httpx.Client, runs) -> None:
    newest_first = [job["id"] for job in reversed(runs)]
    assert [j["id"] for j in walk(client)[0]] == newest_first
    assert [j["id"] for j in walk(client, sort="oldest")[0]] == newest_first[::-1]
    # Names ignore case ("Alpha" first); a reversed order is the same runs backwards.
    assert [j["name"] for j in walk(client, sort="name")[0]] == ["Alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    assert [j["name"] for j in walk(client, sort="-name")[0]] == ["foxtrot", "echo", "delta", "charlie", "bravo", "Alpha"]
    by_loss = sorted(runs, key=lambda job: (job["result"]["train_loss"], -runs.index(job)))
    assert [j["id"] for j in walk(client, sort="train_loss", page_size=4)[0]] == [j["id"] for j in by_loss]
    losses = [j["result"]["train_loss"] for j in walk(client, sort="-train_loss", page_size=3)[0]]
    assert losses == sorted(losses, reverse=True)


def test_runs_without_the_metric_come_last_either_way(client: httpx.Client, runs) -> None:
    held = post_job(client, "linear", {"epochs": 20, "init_b": 0.3141}, name="held", paused=True)
    try:
        for sort in ("train_loss", "-train_loss"):
            items, total = walk(client, sort=sort, page_size=4)
            assert total == len(RUNS) + 1 and items[-1]["id"] == held["id"], sort
        # No linear run has an accuracy: all tie, and ties stay newest first.
        newest_first = [held["id"], *(job["id"] for job in reversed(runs))]
        assert [j["id"] for j in walk(client, sort="-val_acc", page_size=4)[0]] == newest_first
        # Status: what is under way (paused) before what ended.
        assert walk(client, sort="status")[0][0]["id"] == held["id"]
    finally:
        assert client.post(f"/api/jobs/{held['id']}/cancel").status_code == 202
        wait_for(client, held["id"], "cancelled")
        assert client.delete(f"/api/jobs/{held['id']}").status_code == 204


def test_filters_by_parameter_metric_and_name_with_a_right_total(client: httpx.Client, runs) -> None:
    items, total = walk(client, filters=["lr=0.003"])
    assert total == 2 and {j["name"] for j in items} == {"Alpha", "bravo"}
    assert walk(client, filters=["lr=3e-3", "name~ALP"])[1] == 1  # 3e-3 is 0.003; ~ ignores case
    assert walk(client, filters=["lr>=0.003", "lr!=0.01"])[1] == 3
    assert walk(client, filters=["optimizer=manual"])[1] == len(RUNS)  # the default, filled in
    assert walk(client, filters=["optimizer=adam"])[1] == 0
    median = sorted(job["result"]["train_loss"] for job in runs)[2]
    below, total = walk(client, filters=[f"train_loss<={median!r}"], sort="train_loss")
    assert total == sum(job["result"]["train_loss"] <= median for job in runs) >= 3
    assert all(j["result"]["train_loss"] <= median for j in below)
    assert walk(client, filters=["val_acc>0"])[1] == 0  # linear runs have no accuracy: no match
    # A kind's parameter filters out the runs of other kinds.
    assert walk(client, filters=["hidden>0"])[1] == 0


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"sort": "loss"}, ["newest", "val_acc"]),
        ({"filter": "colour=red"}, ["colour=red", "lr", "val_acc", "name"]),
        ({"filter": "lr=abc"}, ["lr", "a number", "abc"]),
        ({"filter": "optimizer=foo"}, ["optimizer", "manual", "adam"]),
        ({"filter": "optimizer>adam"}, ["optimizer", "= !="]),
        ({"filter": "name<b"}, ["name", "= != ~"]),
        ({"filter": "lr<1e999"}, ["lr", "a number"]),
        ({"filter": ["lr=1"] * 11}, ["11 filters", "at most 10"]),
    ],
)
def test_a_sort_or_filter_it_cannot_use_is_a_422_naming_it(client: httpx.Client, params, says) -> None:
    errors = field_errors(client.get("/api/jobs", params=params))
    field = "sort" if "sort" in params else "filter"
    assert list(errors) == [("query", field)], errors
    message = errors[("query", field)]
    assert all(word in message for word in says), message
