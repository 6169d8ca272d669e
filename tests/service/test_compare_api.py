"""Repeat a run with other seeds (POST /api/jobs/{id}/repeat) and download many runs' metrics as one
CSV (GET /api/compare/metrics.csv), against a real server.

No test races the clock: runs that must wait are created paused, or queued behind a blocker that
holds the one worker until the test cancels it (the premise is checked before it is relied on).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.jobs.comparison import MAX_COMPARED
from tests.service.helpers import field_errors, post_job, wait_for
from tests.service.server_process import Server
from tests.service.test_users import LONG, add_user

SHORT = {"epochs": 20, "val_fraction": 0.2}  # the seed draws the validation split


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def seeded(client: httpx.Client) -> dict:
    """A short linear run with seed 7 and its repeats with 3 seeds, all finished."""
    original = post_job(client, "linear", SHORT, seed=7, name="fit")
    response = client.post(f"/api/jobs/{original['id']}/repeat", json={"seeds": 3})
    assert response.status_code == 201, response.text
    repeats = response.json()["items"]
    jobs = [wait_for(client, job["id"]) for job in [original, *repeats]]
    return {"original": jobs[0], "repeats": jobs[1:]}


def test_repeat_makes_runs_that_differ_only_in_the_seed(client, seeded):
    original, repeats = seeded["original"], seeded["repeats"]
    assert [job["seed"] for job in repeats] == [8, 9, 10]
    assert [job["name"] for job in repeats] == ["fit · seed 8", "fit · seed 9", "fit · seed 10"]
    for job in repeats:
        assert (job["kind"], job["params"], job["device"]) == (original["kind"], original["params"], original["device"])
        assert job["status"] == "succeeded"
    # Another seed draws another validation split: the results are not copies of each other.
    assert len({job["result"]["val_loss"] for job in [original, *repeats]}) == 4


def test_a_repeat_of_a_repeat_names_its_own_seed_once(client, seeded):
    second = seeded["repeats"][1]  # "fit · seed 9"
    response = client.post(f"/api/jobs/{second['id']}/repeat", json={"seeds": 2, "paused": True})
    assert response.status_code == 201, response.text
    made = response.json()["items"]
    assert [job["name"] for job in made] == ["fit · seed 10", "fit · seed 11"]
    assert {job["status"] for job in made} == {"paused"}
    for job in made:
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204


@pytest.mark.parametrize("body", [{"seeds": 1}, {"seeds": 11}, {"seeds": "3"}, {"seeds": 2.5}, {}])
def test_repeat_refuses_a_count_outside_2_to_10_by_its_field(client, seeded, body):
    before = client.get("/api/jobs").json()["total"]
    response = client.post(f"/api/jobs/{seeded['original']['id']}/repeat", json=body)
    errors = field_errors(response)
    assert ("body", "seeds") in errors, errors
    if body.get("seeds") in (1, 11):
        assert "2 to 10" in errors[("body", "seeds")]
    assert client.get("/api/jobs").json()["total"] == before


def test_repeat_of_an_unknown_run_is_404_and_of_a_fork_409(client, seeded):
    missing = uuid.uuid4().hex
    response = client.post(f"/api/jobs/{missing}/repeat", json={"seeds": 2})
    assert response.status_code == 404 and missing in response.json()["detail"]

    original = seeded["original"]
    fork = post_job(client, "linear", {}, fork={"job_id": original["id"], "step": 0}, paused=True)
    response = client.post(f"/api/jobs/{fork['id']}/repeat", json={"seeds": 2})
    assert response.status_code == 409, response.text
    assert "fork" in response.json()["detail"]
    client.delete(f"/api/jobs/{fork['id']}")


def test_a_change_made_before_the_first_step_is_repeated(client):
    waiting = post_job(client, "linear", SHORT, paused=True, name="changed")
    assert client.patch(f"/api/jobs/{waiting['id']}", json={"params": {"lr": 0.002}}).status_code == 202
    response = client.post(f"/api/jobs/{waiting['id']}/repeat", json={"seeds": 2, "paused": True})
    assert response.status_code == 201, response.text
    assert {job["params"]["lr"] for job in response.json()["items"]} == {0.002}
    for job in [waiting, *response.json()["items"]]:
        client.delete(f"/api/jobs/{job['id']}")


# ----------------------------------------------------------------------------------------------
# One CSV for many runs


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_csv_has_every_run_s_metric_rows_in_long_form(client, seeded):
    jobs = [seeded["original"], *seeded["repeats"]]
    response = client.get("/api/compare/metrics.csv", params={"ids": ",".join(job["id"] for job in jobs)})
    rows = read_csv(response)
    header = response.text.splitlines()[0].split(",")
    # The run, what differs among the runs (only the seed), then the metric columns a linear run has.
    assert header == ["job_id", "name", "seed", "step", "epoch", "train_loss", "val_loss", "w", "b", "lr"]
    for job in jobs:
        table = client.get(f"/api/jobs/{job['id']}/metrics").json()
        mine = [row for row in rows if row["job_id"] == job["id"]]
        assert {(row["name"], row["seed"]) for row in mine} == {(job["name"], str(job["seed"]))}
        expected = [dict(zip(table["columns"], row)) for row in table["rows"]]
        got = [{name: (None if row[name] == "" else float(row[name])) for name in table["columns"]} for row in mine]
        assert got == expected
    # In the order asked.
    assert list(dict.fromkeys(row["job_id"] for row in rows)) == [job["id"] for job in jobs]


def test_the_csv_of_runs_of_two_kinds_lists_each_setting_that_differs(client, seeded):
    mlp = wait_for(client, post_job(client, "mlp", {"epochs": 5}, seed=7)["id"])
    linear = seeded["original"]
    rows = read_csv(client.get("/api/compare/metrics.csv", params={"ids": f"{linear['id']},{mlp['id']}"}))
    assert {"kind", "hidden"} <= set(rows[0]) and "seed" not in rows[0]
    assert {row["hidden"] for row in rows if row["job_id"] == linear["id"]} == {""}  # not a linear setting
    assert {row["hidden"] for row in rows if row["job_id"] == mlp["id"]} == {str(mlp["params"]["hidden"])}


def test_the_csv_names_an_unknown_id_and_the_limit(client, seeded):
    missing = uuid.uuid4().hex
    response = client.get("/api/compare/metrics.csv", params={"ids": f"{seeded['original']['id']},{missing}"})
    assert response.status_code == 404 and missing in response.json()["detail"]

    errors = field_errors(client.get("/api/compare/metrics.csv", params={"ids": "abc"}))
    assert "'abc' is not a job id" in errors[("query", "ids")]

    too_many = ",".join(uuid.uuid4().hex for _ in range(MAX_COMPARED + 1))
    errors = field_errors(client.get("/api/compare/metrics.csv", params={"ids": too_many}))
    assert f"at most {MAX_COMPARED}" in errors[("query", "ids")]


# ----------------------------------------------------------------------------------------------
# The limits of POST /api/jobs hold for a repeat: all of it is made, or none


def test_repeat_keeps_the_queue_limits_and_makes_all_or_none(tmp_path: Path):
    home = tmp_path / "home"
    tokens = {"ann": add_user(home, "ann", "student"), "tess": add_user(home, "tess", "teacher")}
    env = {"PLAYGROUND_MAX_QUEUED_PER_USER": "2", "PLAYGROUND_MAX_QUEUED": "3"}
    server = Server(home, env=env, workers=1).start()
    ann = server.client(headers={"Authorization": f"Bearer {tokens['ann']}"})
    tess = server.client(headers={"Authorization": f"Bearer {tokens['tess']}"})
    try:
        blocker = post_job(tess, "mlp", LONG)
        wait_for(tess, blocker["id"], "running")  # premise: it holds the one worker
        teachers = post_job(tess, "linear", SHORT, seed=1, name="tess's fit", paused=True)

        # Anyone may repeat anyone's run (as a fork); the new runs are theirs, in their share.
        response = ann.post(f"/api/jobs/{teachers['id']}/repeat", json={"seeds": 3})
        assert response.status_code == 429, response.text
        assert "seeds=3" in response.json()["detail"] and "PLAYGROUND_MAX_QUEUED_PER_USER=2" in response.json()["detail"]
        assert ann.get("/api/jobs").json()["total"] == 2, "none of the three was made"
        response = ann.post(f"/api/jobs/{teachers['id']}/repeat", json={"seeds": 2})
        assert response.status_code == 201, response.text
        assert {job["owner"] for job in response.json()["items"]} == {"ann"}

        # The server's queue: 2 waiting of 3.
        response = tess.post(f"/api/jobs/{teachers['id']}/repeat", json={"seeds": 2})
        assert response.status_code == 429, response.text
        assert "PLAYGROUND_MAX_QUEUED=3" in response.json()["detail"] and "room for 1 more" in response.json()["detail"]
        assert tess.get("/api/jobs").json()["total"] == 4
    finally:
        for job in tess.get("/api/jobs").json()["items"]:
            if job["status"] in ("queued", "running", "paused"):
                tess.post(f"/api/jobs/{job['id']}/cancel")
        ann.close()
        tess.close()
        server.stop()
