"""Time to accuracy on the real CIFAR-10 images, through app.experiments.cifar.run.

1. resnet, the fast recipe, cifar10: test accuracy after each epoch and the training seconds so
   far (the evaluation after each epoch is not counted). Target: >= 85% within 600 s of training
   on a 2-core CPU; 90% is the stretch.
2. The book's conv net on cifar2 (airplane vs bird) with the same kind of recipe: the book needed
   100 epochs of plain SGD (lr 1e-2) for 0.89 validation accuracy. One-cycle runs of growing
   length until one ends at >= 0.89: how many epochs and seconds that takes.

    .venv/bin/python bench/cifar_accuracy.py [--part 1|2|both] [--threads 2] [--seed 0]

Prints markdown tables; the figures in README.md's "Benchmarks: CIFAR training core" come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from app.experiments import cifar  # noqa: E402
from app.experiments.base import RunContext  # noqa: E402
from app.experiments.params import CifarParams  # noqa: E402
from bench.cifar_throughput import real_data_dir  # noqa: E402

# Part 1: the resnet fast recipe (units: lr is the peak of the one-cycle schedule, per batch mean loss).
RESNET_RECIPE = dict(
    dataset="cifar10",
    model="resnet",
    optimizer="nesterov_onecycle",
    epochs=8,  # passes over the 50,000 training images
    batch_size=128,  # twice the default: convolutions run about 1.3x faster per image on a CPU
    lr=0.1,  # peak learning rate (0.05 at batch size 64, scaled with the batch)
    weight_decay=5e-4,
    label_smoothing=0.2,
    augment=True,  # flips and crops shifting by up to 2 pixels (reflect padding)
)
TIME_BUDGET_S = 600
TARGET_ACC = 0.85

# Part 2: the book's Net on cifar2 with the fast recipe.
CONV_RECIPE = dict(
    dataset="cifar2",
    model="conv",
    optimizer="nesterov_onecycle",
    batch_size=64,
    lr=0.05,
    weight_decay=5e-4,
    label_smoothing=0.0,
    augment=True,
)
CONV_EPOCHS_TRIED = (2, 4, 6, 8, 12, 16, 24, 32)
BOOK_ACC = 0.89  # the book's Net after 100 epochs


class EpochClock:
    """Training seconds at each epoch end, from the metric points' arrival times.

    A step point arrives right after its step; the epoch-end point after the evaluation. So the
    evaluation takes from the epoch's last step point to its epoch-end point, and is left out.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last_step_at = self.started
        self.eval_seconds = 0.0
        self.epochs: list[dict] = []

    def __call__(self, point: dict) -> None:
        now = time.perf_counter()
        if "val_acc" not in point:
            self.last_step_at = now
            return
        self.eval_seconds += now - self.last_step_at
        train_s = now - self.started - self.eval_seconds
        self.epochs.append({**point, "train_seconds": train_s})
        print(
            f"  epoch {point['epoch']:>2}: test acc {point['val_acc']:.4f}  train acc {point['train_acc']:.4f}  "
            f"train {train_s:6.1f} s  (evaluations {self.eval_seconds:5.1f} s)",
            flush=True,
        )


def train(recipe: dict, data_dir: Path, seed: int) -> tuple[EpochClock, dict]:
    clock = EpochClock()
    ctx = RunContext(seed=seed, emit=clock, data_dir=data_dir)
    outcome = cifar.run(CifarParams(**recipe), ctx)
    return clock, outcome.result


def part1(data_dir: Path, seed: int) -> dict:
    print(f"1. resnet fast recipe on cifar10: {json.dumps(RESNET_RECIPE)}")
    clock, result = train(RESNET_RECIPE, data_dir, seed)
    print()
    print("| epoch | test accuracy | training seconds so far |")
    print("|---|---|---|")
    for e in clock.epochs:
        print(f"| {e['epoch']} | {e['val_acc']:.2%} | {e['train_seconds']:.0f} |")
    reached = [e for e in clock.epochs if e["val_acc"] >= TARGET_ACC and e["train_seconds"] <= TIME_BUDGET_S]
    verdict = (
        f"reached {TARGET_ACC:.0%} at epoch {reached[0]['epoch']} after {reached[0]['train_seconds']:.0f} s"
        if reached
        else f"did NOT reach {TARGET_ACC:.0%} within {TIME_BUDGET_S} s"
    )
    print(f"\nfinal test accuracy {result['val_acc']:.2%}, {result['images_per_second']:.0f} training images/s")
    print(verdict)
    print("per class:", {k: round(v, 3) for k, v in result["per_class_acc"].items()})
    return {"epochs": clock.epochs, "result_val_acc": result["val_acc"], "verdict": verdict}


def part2(data_dir: Path, seed: int) -> dict:
    print(f"\n2. the book's conv net on cifar2, one-cycle runs of growing length: {json.dumps(CONV_RECIPE)}")
    rows = []
    for epochs in CONV_EPOCHS_TRIED:
        print(f" {epochs} epochs:")
        clock, result = train({**CONV_RECIPE, "epochs": epochs}, data_dir, seed)
        final = clock.epochs[-1]
        rows.append({"epochs": epochs, "val_acc": final["val_acc"], "train_seconds": final["train_seconds"]})
        if final["val_acc"] >= BOOK_ACC:
            break
    print()
    print("| one-cycle epochs | final validation accuracy | training seconds |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row['epochs']} | {row['val_acc']:.4f} | {row['train_seconds']:.1f} |")
    return {"runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["1", "2", "both"], default="both")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = real_data_dir(args.data_dir)
    threads, cpus = torch.get_num_threads(), os.cpu_count()
    print(f"torch {torch.__version__}, {threads} threads, {cpus} CPUs, load average {os.getloadavg()}")
    report = {}
    if args.part in ("1", "both"):
        report["resnet"] = part1(data_dir, args.seed)
    if args.part in ("2", "both"):
        report["conv_cifar2"] = part2(data_dir, args.seed)
    print(f"\nload average at the end: {os.getloadavg()}")
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"cifar_accuracy_part{args.part}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
