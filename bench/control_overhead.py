"""What the control point at each step boundary costs the training loops.

    .venv/bin/python bench/control_overhead.py [--rounds 9] [--threads 1]

Two workloads, each run with two controls, interleaved round by round (A B, then B A, ...) so a
machine that slows down or speeds up affects both alike:

    linear  the book's fit, 5000 epochs: 5000 boundaries in about a tenth of a second, the worst case
    cifar   chapter 8's conv net on a tiny generated CIFAR (160 images, batches of 16, 5 epochs: 50 steps)

The controls: the default ``RunControl`` (returns at once) and ``JobLikeControl``, which does what
the job side's control does at a boundary where nothing was asked of it: a few attribute reads and a
check of flags another thread may set (no lock). Prints the median CPU time of each and the ratio of
the medians (target: under 1.02). On a busy machine those differ by a few percent from round to round
either way, so it also times the control point alone (the call, the unpacking and the ``is not``
check the loops do, in ns) and gives its share of a step, a figure the machine's load barely moves.
Last, what one ``save()`` plus ``checkpoint_to_bytes`` costs on the tiny cifar runs (the job side
pays it at a pause and at each checkpoint it keeps).

Not a test: timings depend on the machine and its load; it measures and reports.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.experiments import cifar, linear  # noqa: E402
from app.experiments.base import Checkpoint, RunContext, RunControl, RunStatus  # noqa: E402
from app.experiments.checkpoints import checkpoint_to_bytes  # noqa: E402
from app.experiments.params import CifarParams, LinearParams  # noqa: E402
from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder  # noqa: E402

SEED = 7


class JobLikeControl(RunControl):
    """A job's control with nothing to do: commands arrive on another thread and set attributes."""

    def __init__(self) -> None:
        self.pause_requested = False
        self.cancel_requested = False
        self.changes: dict | None = None
        self.checkpoint_every = 0  # steps; 0: only at a pause
        self.step = 0

    def boundary(self, step, epoch, params, save, *, epoch_end=True):
        self.step = step  # the progress the job reports
        if self.cancel_requested:
            return params, RunStatus.CANCELLED
        if self.changes is not None:
            params, self.changes = params.model_copy(update=self.changes), None
        if self.checkpoint_every and step % self.checkpoint_every == 0:
            save()
        if self.pause_requested:
            return params, RunStatus.PAUSED
        return params, None


def time_run(module, params, control: RunControl, data_dir: Path) -> float:
    """CPU seconds of one run (other processes on the machine count less than in wall time)."""
    ctx = RunContext(seed=SEED, emit=lambda point: None, control=control, data_dir=data_dir)
    started = time.process_time()
    outcome = module.run(params, ctx)
    elapsed = time.process_time() - started
    assert outcome.status == RunStatus.SUCCEEDED, outcome.error
    return elapsed


def control_point_ns(control: RunControl, params) -> float:
    """What the loops do at a boundary where nothing changes, per call in ns (best of 5)."""
    ctx = RunContext(seed=SEED, control=control)
    namespace = {"ctx": ctx, "params": params, "save": lambda: {}}
    statement = "changed, stop = ctx.control.boundary(7, 7, params, save)\nif changed is not params: pass"
    number = 200_000
    return min(timeit.repeat(statement, number=number, repeat=5, globals=namespace)) / number * 1e9


def compare(name: str, module, params, data_dir: Path, rounds: int, steps: int) -> None:
    controls = {"default": RunControl, "job-like": JobLikeControl}
    times: dict[str, list[float]] = {key: [] for key in controls}
    time_run(module, params, RunControl(), data_dir)  # warm-up: caches, allocator, imports
    for round_ in range(rounds):
        order = list(controls) if round_ % 2 == 0 else list(reversed(controls))
        for key in order:
            times[key].append(time_run(module, params, controls[key](), data_dir))
    default, job = statistics.median(times["default"]), statistics.median(times["job-like"])
    spread = statistics.median(abs(a - b) / a for a, b in zip(times["default"], times["job-like"]))
    print(
        f"{name:7s} default {default * 1000:8.1f} ms   job-like {job * 1000:8.1f} ms   "
        f"ratio {job / default:.4f}   (median round-to-round difference {spread:.1%})"
    )
    step_ns = default / steps * 1e9
    for key, control in controls.items():
        ns = control_point_ns(control(), params)
        print(f"        control point, {key:8s}: {ns:6.0f} ns a step = {ns / step_ns:.3%} of a {step_ns / 1000:.1f} us step")


def checkpoint_cost(model: str, data_dir: Path) -> None:
    taken: list[Checkpoint] = []
    seconds: list[float] = []

    class SaveAtStep(RunControl):
        def boundary(self, step, epoch, params, save, *, epoch_end=True):
            if step in (5, 10):  # mid-epoch and at the epoch end
                started = time.perf_counter()
                cp = Checkpoint("cifar", step, epoch, epoch_end, params.model_dump(mode="json"), save())
                data = checkpoint_to_bytes(cp)
                seconds.append(time.perf_counter() - started)
                taken.append(cp)
                sizes.append(len(data))
            return params, None

    sizes: list[int] = []
    params = CifarParams(model=model, epochs=1, batch_size=16)
    cifar.run(params, RunContext(seed=SEED, control=SaveAtStep(), data_dir=data_dir))
    print(
        f"cifar {model}: save() + checkpoint_to_bytes {max(seconds) * 1000:.1f} ms, "
        f"{max(sizes) / 1e6:.2f} MB (tiny data: 160 training, 80 test images)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier figures)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = write_tiny_cifar_image_folder(Path(tmp) / "data")
        print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds each")
        compare("linear", linear, LinearParams(epochs=5000), data_dir, args.rounds, steps=5000)
        compare("cifar", cifar, CifarParams(model="conv", epochs=5, batch_size=16), data_dir, args.rounds, steps=50)
        for model in ("conv", "resnet"):
            checkpoint_cost(model, data_dir)


if __name__ == "__main__":
    main()
