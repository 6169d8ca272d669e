"""Pause, resume, live changes: a run stopped at a step boundary and resumed from its checkpoint is
bit-identical (CPU) to the run never stopped, for every kind; checkpoint files fail clearly."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from app.errors import CheckpointInvalid
from app.experiments import cifar, linear, mlp
from app.experiments.base import Checkpoint, RunContext, RunControl, RunOutcome, RunStatus
from app.experiments.checkpoints import (
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    read_checkpoint,
    write_checkpoint,
)
from app.experiments.control_basic import PauseAtStep, with_changes
from app.experiments.params import CifarParams, LinearParams, MlpParams, live_params

pytestmark = pytest.mark.usefixtures("one_thread")

KINDS = {"linear": (linear, LinearParams), "mlp": (mlp, MlpParams), "cifar": (cifar, CifarParams)}
# Timing fields of the cifar result: the only things a resumed run may report differently.
CLOCK = {"train_seconds", "images_per_second"}
SEED = 11


def train(kind: str, params: Any, control: RunControl | None = None, resume: Checkpoint | None = None,
          data_dir: Path | None = None) -> tuple[RunOutcome, list[dict]]:
    module, _ = KINDS[kind]
    points: list[dict] = []
    ctx = RunContext(seed=SEED, emit=points.append, control=control or RunControl(), resume=resume)
    if data_dir is not None:
        ctx.data_dir = data_dir
    return module.run(params, ctx), points


def pause(kind: str, params: Any, at_step: int, data_dir: Path | None = None,
          resume: Checkpoint | None = None) -> tuple[Checkpoint, list[dict], RunOutcome]:
    """Runs until the boundary of ``at_step``; the checkpoint taken there, as read back from bytes."""
    control = PauseAtStep(kind, at_step)
    outcome, points = train(kind, params, control, resume=resume, data_dir=data_dir)
    assert outcome.status == RunStatus.PAUSED, outcome.error
    assert control.checkpoint is not None and control.checkpoint.step == at_step
    return checkpoint_from_bytes(checkpoint_to_bytes(control.checkpoint)), points, outcome


def resume(kind: str, cp: Checkpoint, control: RunControl | None = None, data_dir: Path | None = None,
           **changes: Any) -> tuple[RunOutcome, list[dict]]:
    """A new run() from ``cp``, with the checkpoint's params (and live ``changes``)."""
    _, params_model = KINDS[kind]
    params = params_model.model_validate(cp.params)
    if changes:
        params = with_changes(params, changes)
    return train(kind, params, control, resume=cp, data_dir=data_dir)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_same_result(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in CLOCK} == {k: v for k, v in b.items() if k not in CLOCK}


def assert_resume_is_bit_identical(kind: str, params: Any, at_step: int, data_dir: Path | None = None) -> Checkpoint:
    full, full_points = train(kind, params, data_dir=data_dir)
    assert full.status == RunStatus.SUCCEEDED, full.error
    cp, before, _ = pause(kind, params, at_step, data_dir)
    after_outcome, after = resume(kind, cp, data_dir=data_dir)
    assert after_outcome.status == RunStatus.SUCCEEDED, after_outcome.error
    assert before + after == full_points  # ==: every value, bit for bit
    assert after == [] or after[0]["step"] == at_step + 1
    assert_same_weights(after_outcome.state_dict, full.state_dict)
    assert_same_result(after_outcome.result, full.result)
    return cp


def seeded_step(name: str, low: int, high: int) -> int:
    """A step in [low, high] that looks random but is the same on every test run."""
    return random.Random(name).randint(low, high)


# ----------------------------------------------------------------------------------------------
# Every kind resumes bit-identically


@pytest.mark.parametrize("optimizer", ["manual", "autograd", "sgd", "adam"])
def test_linear_resumes_bit_identically_with_every_optimizer(optimizer):
    params = LinearParams(optimizer=optimizer, epochs=200, lr=1e-2 if optimizer != "adam" else 0.1, val_fraction=0.2)
    at = seeded_step(f"linear-{optimizer}", 1, 199)
    cp = assert_resume_is_bit_identical("linear", params, at)
    assert (cp.kind, cp.step, cp.epoch, cp.epoch_end) == ("linear", at, at, True)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mlp_resumes_bit_identically(optimizer):
    params = MlpParams(optimizer=optimizer, hidden=8, epochs=300, lr=1e-2 if optimizer == "adam" else 1e-3)
    assert_resume_is_bit_identical("mlp", params, seeded_step(f"mlp-{optimizer}", 1, 299))


CIFAR_RUNS = {
    # 160 tiny images in batches of 16: 10 steps an epoch, 20 in all.
    "conv": dict(model="conv", epochs=2, batch_size=16),
    "resnet": dict(model="resnet", epochs=2, batch_size=16),
    # 80 images drawn with the seed: the resumed run must draw the same ones (8 steps an epoch).
    "adam": dict(model="conv", optimizer="adam", lr=3e-3, epochs=2, batch_size=10, limit_train=80),
}


@pytest.mark.parametrize("run", sorted(CIFAR_RUNS))
def test_cifar_resumes_bit_identically_mid_epoch(tiny_folder, run):
    params = CifarParams(**CIFAR_RUNS[run])  # augment on, nesterov_onecycle unless adam
    per_epoch = 10 if run != "adam" else 8
    at = seeded_step(f"cifar-{run}", 1, per_epoch - 1)
    if at % 2:
        at += per_epoch  # odd draws pause in the second epoch
    cp = assert_resume_is_bit_identical("cifar", params, at, tiny_folder)
    assert cp.epoch_end is False and cp.epoch == 1 + at // per_epoch
    assert cp.state["next_batch"] == at % per_epoch


@pytest.mark.parametrize("run", ["conv", "resnet"])
def test_cifar_resumes_bit_identically_at_an_epoch_end(tiny_folder, run):
    cp = assert_resume_is_bit_identical("cifar", CifarParams(**CIFAR_RUNS[run]), 10, tiny_folder)
    assert cp.epoch_end is True and cp.epoch == 1 and cp.state["order"] is None


def test_resuming_at_the_last_step_runs_nothing_and_reports_the_same_result(tiny_folder):
    params = CifarParams(**CIFAR_RUNS["conv"])
    full, points = train("cifar", params, data_dir=tiny_folder)
    cp, before, _ = pause("cifar", params, 20, tiny_folder)
    outcome, after = resume("cifar", cp, data_dir=tiny_folder)
    assert before == points and after == []
    assert outcome.status == RunStatus.SUCCEEDED
    assert_same_result(outcome.result, full.result)
    assert_same_weights(outcome.state_dict, full.state_dict)


def test_pause_and_resume_twice(tiny_folder):
    params = CifarParams(**CIFAR_RUNS["conv"])
    full, full_points = train("cifar", params, data_dir=tiny_folder)
    first, part1, _ = pause("cifar", params, 4, tiny_folder)
    second, part2, _ = pause("cifar", params, 13, tiny_folder, resume=first)
    outcome, part3 = resume("cifar", second, data_dir=tiny_folder)
    assert part1 + part2 + part3 == full_points
    assert_same_weights(outcome.state_dict, full.state_dict)

    lin = LinearParams(optimizer="adam", lr=0.1, epochs=100)
    full, full_points = train("linear", lin)
    first, part1, _ = pause("linear", lin, 30, resume=None)
    second, part2, _ = pause("linear", lin, 31, resume=first)  # one step at a time
    outcome, part3 = resume("linear", second)
    assert part1 + part2 + part3 == full_points and len(part2) == 1
    assert_same_weights(outcome.state_dict, full.state_dict)


@pytest.mark.parametrize("kind", ["linear", "cifar"])
def test_one_checkpoint_resumes_the_same_way_twice(tiny_folder, kind):
    """A resumed run trains on copies: the checkpoint in memory (a fork's parent) stays as it was."""
    if kind == "cifar":
        params, data_dir, at = CifarParams(**CIFAR_RUNS["conv"]), tiny_folder, 4
    else:
        params, data_dir, at = LinearParams(optimizer="adam", lr=0.1, epochs=60), None, 20
    control = PauseAtStep(kind, at)
    train(kind, params, control, data_dir=data_dir)
    first, first_points = resume(kind, control.checkpoint, data_dir=data_dir)
    second, second_points = resume(kind, control.checkpoint, data_dir=data_dir)
    assert first_points == second_points
    assert_same_weights(first.state_dict, second.state_dict)


# ----------------------------------------------------------------------------------------------
# What a paused run returns, and what a checkpoint holds


def test_a_paused_run_returns_the_weights_so_far_and_a_partial_result():
    params = LinearParams(optimizer="sgd", epochs=50)
    cp, points, outcome = pause("linear", params, 20)
    assert outcome.status == RunStatus.PAUSED and outcome.error is None
    assert outcome.result["epochs_run"] == 20 and len(points) == 20
    assert torch.equal(torch.stack([outcome.state_dict["w"], outcome.state_dict["b"]]), cp.state["coeffs"])
    assert cp.params == params.model_dump(mode="json") and cp.state["seed"] == SEED


def test_the_checkpoint_is_a_copy_the_run_does_not_change_afterwards(tiny_folder):
    saved: list[dict] = []

    class SaveAt5(RunControl):
        def boundary(self, step, epoch, params, save, *, epoch_end=True):
            if step == 5:
                saved.append(save())
            return params, None

    params = CifarParams(**CIFAR_RUNS["conv"])
    train("cifar", params, SaveAt5(), data_dir=tiny_folder)
    cp, _, _ = pause("cifar", params, 5, tiny_folder)
    state = saved[0]
    assert_same_weights(state["model"], cp.state["model"])
    momentum = [s["optimizer"]["state"][0]["momentum_buffer"] for s in (state, cp.state)]
    assert torch.equal(*momentum)
    assert torch.equal(state["loss_sum"], cp.state["loss_sum"]) and torch.equal(state["data_rng"], cp.state["data_rng"])


def test_a_control_can_cancel_at_a_boundary():
    class CancelAt(RunControl):
        def boundary(self, step, epoch, params, save, *, epoch_end=True):
            return params, RunStatus.CANCELLED if step == 7 else None

    outcome, points = train("mlp", MlpParams(epochs=50), CancelAt())
    assert outcome.status == RunStatus.CANCELLED and len(points) == 7


def test_linear_and_mlp_points_carry_the_lr_of_their_step():
    _, points = train("linear", LinearParams(epochs=3, lr=0.005))
    assert [p["lr"] for p in points] == [0.005] * 3
    _, points = train("mlp", MlpParams(epochs=3, lr=0.002))
    assert [p["lr"] for p in points] == [0.002] * 3


# ----------------------------------------------------------------------------------------------
# Live changes


@pytest.mark.parametrize(
    "kind,params,k,change",
    [
        ("linear", LinearParams(optimizer="manual", epochs=120), 40, {"lr": 0.005}),
        ("linear", LinearParams(optimizer="adam", lr=0.1, epochs=120), 40, {"lr": 0.02}),
        ("mlp", MlpParams(optimizer="sgd", hidden=8, epochs=120), 40, {"lr": 0.003}),
        ("cifar", CifarParams(**CIFAR_RUNS["conv"]), 6, {"lr": 0.02}),
        ("cifar", CifarParams(**CIFAR_RUNS["conv"]), 10,
         {"lr": 0.1, "weight_decay": 0.0, "label_smoothing": 0.0, "augment": False}),
        ("cifar", CifarParams(**CIFAR_RUNS["adam"]), 3, {"lr": 1e-3, "weight_decay": 1e-3}),
    ],
)
def test_a_live_change_at_step_k_equals_a_pause_at_k_resumed_with_it(tiny_folder, kind, params, k, change):
    data_dir = tiny_folder if kind == "cifar" else None
    live, live_points = train(kind, params, PauseAtStep(kind, changes={k: change}), data_dir=data_dir)
    cp, before, _ = pause(kind, params, k, data_dir)
    resumed, after = resume(kind, cp, data_dir=data_dir, **change)
    # The same change made by the control at the resumed run's first boundary:
    through_control, after2 = resume(kind, cp, PauseAtStep(kind, changes={k: change}), data_dir=data_dir)

    assert before + after == live_points == before + after2
    assert_same_weights(resumed.state_dict, live.state_dict)
    assert_same_weights(through_control.state_dict, live.state_dict)
    unchanged, unchanged_points = train(kind, params, data_dir=data_dir)
    assert unchanged_points[: len(before)] == before and unchanged_points != live_points


def test_an_lr_change_rescales_the_rest_of_the_one_cycle(tiny_folder):
    params = CifarParams(**CIFAR_RUNS["conv"])  # lr 0.05, 20 steps
    _, points = train("cifar", params, PauseAtStep("cifar", changes={6: {"lr": 0.02}}), data_dir=tiny_folder)
    lrs = {p["step"]: p["lr"] for p in points if "lr" in p}
    # Step s trains with lr * one_cycle(s - 1, steps): the old peak up to step 6, the new one after.
    assert [lrs[s] for s in range(1, 7)] == [0.05 * cifar.one_cycle(s - 1, 20) for s in range(1, 7)]
    assert [lrs[s] for s in range(7, 21)] == [0.02 * cifar.one_cycle(s - 1, 20) for s in range(7, 21)]


def test_an_epochs_change_lengthens_or_shortens_the_run(tiny_folder):
    _, points = train("linear", LinearParams(epochs=100), PauseAtStep("linear", changes={40: {"epochs": 150}}))
    assert [p["step"] for p in points] == list(range(1, 151))
    outcome, points = train("linear", LinearParams(epochs=100), PauseAtStep("linear", changes={70: {"epochs": 60}}))
    assert len(points) == 70 and outcome.status == RunStatus.SUCCEEDED and outcome.result["epochs_run"] == 70
    _, points = train("mlp", MlpParams(epochs=100), PauseAtStep("mlp", changes={20: {"epochs": 30}}))
    assert len(points) == 30 and "curve" in points[-1]  # the last epoch draws its curve

    # cifar: 2 → 3 epochs mid-way through the first; the one-cycle is re-planned over 30 steps.
    params = CifarParams(**CIFAR_RUNS["conv"])
    outcome, points = train("cifar", params, PauseAtStep("cifar", changes={3: {"epochs": 3}}), data_dir=tiny_folder)
    steps = [p for p in points if "val_acc" not in p]
    assert len(steps) == 30 and outcome.result["epochs_run"] == 3
    assert [p["lr"] for p in steps[3:]] == [0.05 * cifar.one_cycle(s, 30) for s in range(3, 30)]
    # 2 → 1 mid-way through the first epoch: it finishes that epoch, then stops.
    outcome, points = train("cifar", params, PauseAtStep("cifar", changes={3: {"epochs": 1}}), data_dir=tiny_folder)
    assert outcome.result["epochs_run"] == 1 and [p["step"] for p in points if "val_acc" in p] == [10]


def test_only_live_parameters_may_change():
    with pytest.raises(ValueError, match=r"hidden cannot change.*epochs, lr"):
        with_changes(MlpParams(), {"hidden": 3})
    assert live_params(LinearParams) == ["epochs", "lr"]
    assert live_params(CifarParams) == ["epochs", "lr", "weight_decay", "augment", "label_smoothing"]
    assert CifarParams.model_json_schema()["properties"]["augment"]["x-live"] is True
    assert "x-live" not in CifarParams.model_json_schema()["properties"]["model"]


def test_resuming_with_other_fixed_parameters_or_another_kind_is_refused():
    cp, _, _ = pause("linear", LinearParams(optimizer="sgd", epochs=20), 5)
    refused = r"optimizer='adam' \(the checkpoint has 'sgd'\).*live parameters.*epochs, lr"
    with pytest.raises(CheckpointInvalid, match=refused):
        train("linear", LinearParams(optimizer="adam", epochs=20), resume=cp)
    with pytest.raises(CheckpointInvalid, match="'linear' checkpoint, not 'mlp'"):
        train("mlp", MlpParams(epochs=20), resume=cp)


# ----------------------------------------------------------------------------------------------
# The checkpoint file


@pytest.fixture
def linear_checkpoint() -> Checkpoint:
    return pause("linear", LinearParams(optimizer="adam", lr=0.1, epochs=20), 5)[0]


def test_a_checkpoint_file_round_trips(tmp_path, linear_checkpoint):
    path = write_checkpoint(linear_checkpoint, tmp_path / "run.ckpt")
    back = read_checkpoint(path, kind="linear")
    assert (back.kind, back.step, back.epoch, back.epoch_end, back.params) == (
        "linear", 5, 5, True, linear_checkpoint.params)
    assert torch.equal(back.state["coeffs"], linear_checkpoint.state["coeffs"])
    assert os.listdir(tmp_path) == ["run.ckpt"]  # no temporary file left


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda data: data[: len(data) // 2], "not a readable checkpoint file"),
        (lambda data: b"\x00garbage" * 100, "not a readable checkpoint file"),
        (lambda data: b"", "not a readable checkpoint file"),
    ],
)
def test_a_damaged_checkpoint_file_names_the_file(tmp_path, linear_checkpoint, damage, reason):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(damage(checkpoint_to_bytes(linear_checkpoint)))
    with pytest.raises(CheckpointInvalid, match=reason) as caught:
        read_checkpoint(path)
    assert str(path) in str(caught.value) and caught.value.source == path


def test_a_foreign_file_another_version_or_kind_is_refused(tmp_path, linear_checkpoint):
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointInvalid, match="not a playground checkpoint"):
        read_checkpoint(foreign)
    future = tmp_path / "future.ckpt"
    torch.save({"format": "playground-checkpoint", "version": 99}, future)
    with pytest.raises(CheckpointInvalid, match="format version 99; this version of the playground reads 1"):
        read_checkpoint(future)
    path = write_checkpoint(linear_checkpoint, tmp_path / "lin.ckpt")
    with pytest.raises(CheckpointInvalid, match=f"{path}.*'linear' checkpoint, not 'cifar'"):
        read_checkpoint(path, kind="cifar")
    with pytest.raises(CheckpointInvalid, match="cannot be read"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_a_write_that_fails_midway_leaves_the_previous_checkpoint(tmp_path, linear_checkpoint, monkeypatch):
    path = write_checkpoint(linear_checkpoint, tmp_path / "run.ckpt")
    later = pause("linear", LinearParams(optimizer="adam", lr=0.1, epochs=20), 9)[0]

    def killed(*args):
        raise KeyboardInterrupt  # as if killed between the write and the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(later, path)
    monkeypatch.undo()
    assert read_checkpoint(path).step == 5
    assert os.listdir(tmp_path) == ["run.ckpt"]
