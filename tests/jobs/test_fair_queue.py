"""The fair queue's order: users in turn, first-in first-out within a user."""

from __future__ import annotations

from app.jobs.executor import JobSpec
from app.jobs.fair_queue import FairQueue


def spec(job_id: str, owner: str | None, device: str = "cpu") -> JobSpec:
    return JobSpec(job_id=job_id, kind="linear", params={}, seed=0, device=device, owner=owner)


def drain(queue: FairQueue) -> list[str]:
    order = []
    while (job := queue.pop()) is not None:
        order.append(job.job_id)
    return order


def test_users_take_turns_and_each_users_jobs_keep_their_order():
    queue = FairQueue()
    for i in range(1, 4):
        queue.push(spec(f"a{i}", "ann"))
    queue.push(spec("b1", "ben"))
    queue.push(spec("c1", "cy"))
    queue.push(spec("b2", "ben"))
    assert len(queue) == 6
    assert drain(queue) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert not queue and len(queue) == 0


def test_a_newcomer_waits_for_at_most_one_job_of_a_user_with_many():
    queue = FairQueue()
    for i in range(20):
        queue.push(spec(f"a{i}", "ann"))
    assert queue.pop().job_id == "a0"  # running on the one worker
    queue.push(spec("b", "ben"))
    assert queue.pop().job_id == "b"


def test_a_user_served_recently_waits_behind_one_who_was_not():
    queue = FairQueue()
    queue.push(spec("a1", "ann"))
    queue.push(spec("b1", "ben"))
    assert drain(queue) == ["a1", "b1"]
    queue.push(spec("b2", "ben"))  # ben queues first this time, but ann was served longer ago
    queue.push(spec("a2", "ann"))
    assert drain(queue) == ["a2", "b2"]


def test_without_owners_it_is_first_in_first_out():
    queue = FairQueue()
    for i in range(5):
        queue.push(spec(f"j{i}", None))
    assert [job.job_id for job in queue] == [f"j{i}" for i in range(5)]
    assert drain(queue) == [f"j{i}" for i in range(5)]


def test_a_job_that_cannot_start_holds_back_nobody():
    queue = FairQueue()
    queue.push(spec("a-gpu", "ann", device="cuda:0"))
    queue.push(spec("a-cpu", "ann"))
    queue.push(spec("b-gpu", "ben", device="cuda:0"))
    on_cpu = queue.pop(lambda job: job.device == "cpu")
    assert on_cpu.job_id == "a-cpu"
    assert queue.pop(lambda job: job.device == "cpu") is None
    # ann was just served: ben's GPU job goes before ann's older one.
    assert drain(queue) == ["b-gpu", "a-gpu"]


def test_remove_takes_a_queued_job_out():
    queue = FairQueue()
    queue.push(spec("a1", "ann"))
    queue.push(spec("b1", "ben"))
    assert queue.remove("a1").job_id == "a1"
    assert queue.remove("a1") is None
    assert queue.owners() == {"ben": 1}
    assert [job.job_id for job in queue.drain()] == ["b1"] and not queue


def test_a_job_put_back_starts_next_and_its_owner_keeps_the_turn():
    queue = FairQueue()
    queue.push(spec("a1", "ann"))
    queue.push(spec("a2", "ann"))
    queue.push(spec("b1", "ben"))
    assert queue.pop().job_id == "a1"
    assert queue.pop().job_id == "b1"
    popped = queue.pop()
    assert popped.job_id == "a2"
    queue.put_back(popped)  # its worker had died: it did not start
    queue.push(spec("b2", "ben"))
    assert drain(queue) == ["a2", "b2"]

    queue.push(spec("c1", "cy"))
    queue.push(spec("c2", "cy"))
    queue.put_back(queue.pop())
    assert drain(queue) == ["c1", "c2"]
