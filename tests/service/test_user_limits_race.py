"""Per-user limits hold under concurrent requests (issue 16): the check and the job it lets in are
one step per user (JobService._user_turn), so requests that arrive together cannot all pass a limit
that each of them alone would see room under."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.service.helpers import post_job, wait_for
from tests.service.test_users import ENV, LONG, SHORT, Classroom, start_class

AT_ONCE = 8


def test_requests_at_once_cannot_pass_a_per_user_limit_together(tmp_path: Path) -> None:
    env = {**ENV, "PLAYGROUND_MAX_QUEUED_PER_USER": "2"}
    server, tokens = start_class(tmp_path / "home", env)
    room = Classroom(server, tokens)
    clients = [server.client(headers={"Authorization": f"Bearer {tokens['ben']}"}) for _ in range(AT_ONCE)]
    try:
        tess = room["tess"]
        blocker = post_job(tess, "mlp", LONG)  # holds the one worker: ben's jobs stay queued
        wait_for(tess, blocker["id"], "running")

        def create(client):
            return client.post("/api/jobs", json={"kind": "linear", "params": SHORT})

        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(create, clients))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [201, 201] + [429] * (AT_ONCE - 2), [a.text for a in answers]
        queued = [job for job in tess.get("/api/jobs", params={"limit": 50}).json()["items"] if job["owner"] == "ben"]
        assert len(queued) == 2 and {job["status"] for job in queued} == {"queued"}
        assert tess.get(f"/api/jobs/{blocker['id']}").json()["status"] == "running", "premise: the worker stayed busy"
        for job_id in [blocker["id"], *(job["id"] for job in queued)]:
            tess.post(f"/api/jobs/{job_id}/cancel")
            wait_for(tess, job_id)
    finally:
        for client in clients:
            client.close()
        room.close()
        server.stop()
