"""What each speed switch of the ``cifar`` experiment does to a training step on this machine.

The speed half of the ablation (``bench/cifar_accuracy.py`` measures what the switches do to
accuracy): training images/s of one step (forward, loss, backward, SGD with Nesterov momentum) of a
net as ``cifar.run`` builds it, on random uint8 images (no data loading: the step alone), for

- float32 in PyTorch's NCHW memory order (the baseline),
- ``channels_last`` (NHWC),
- ``channels_last`` + ``mixed_precision`` (bfloat16 autocast: oneDNN's AMX / AVX-512 BF16 kernels),
- the same, ``compile``d (inductor): its compile time is reported apart,
- the same on 1 thread (what the second core buys).

Configurations are timed in interleaved rounds (these VMs change speed from minute to minute) and
reported as the median images/s and its ratio to the baseline in the same round.

    .venv/bin/python bench/cifar_speed_levers.py [--model airbench|resnet|conv] [--batch-size N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.experiments.cifar_models import make_net  # noqa: E402

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
CONFIGS = {
    "float32, NCHW": dict(channels_last=False, bf16=False, compile=False, threads=2),
    "channels_last": dict(channels_last=True, bf16=False, compile=False, threads=2),
    "channels_last + bfloat16": dict(channels_last=True, bf16=True, compile=False, threads=2),
    "channels_last + bfloat16 + compile": dict(channels_last=True, bf16=True, compile=True, threads=2),
    "channels_last + bfloat16, 1 thread": dict(channels_last=True, bf16=True, compile=False, threads=1),
}


class Step:
    """One configuration's net, optimiser and batch; ``__call__`` trains ``n`` steps, returns seconds."""

    def __init__(self, model: str, width: int | None, batch_size: int, channels_last: bool, bf16: bool,
                 compile: bool, threads: int) -> None:
        torch.manual_seed(0)
        self.net = make_net(model, 10, MEAN, STD, channels_last=channels_last, width=width)
        self.forward = torch.compile(self.net) if compile else self.net
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9, nesterov=True)
        self.images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8)
        self.labels = torch.randint(0, 10, (batch_size,))
        self.bf16, self.threads = bf16, threads
        started = time.perf_counter()
        self(1)  # the warm-up: oneDNN's primitives; with compile, the compiler
        self.first_step_s = time.perf_counter() - started

    def __call__(self, n: int) -> float:
        torch.set_num_threads(self.threads)
        started = time.perf_counter()
        for _ in range(n):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.forward(self.images), self.labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="airbench", choices=["airbench", "resnet", "conv"])
    parser.add_argument("--width", type=int, default=None, help="airbench's first group (64)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=4, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; {args.model}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} interleaved rounds", flush=True)
    steps = {}
    for name, config in CONFIGS.items():
        steps[name] = Step(args.model, args.width, args.batch_size, **config)
        print(f"  built {name}: first step {steps[name].first_step_s:.1f} s", flush=True)
    per_round: dict[str, list[float]] = {name: [] for name in CONFIGS}
    ratios: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, step in steps.items():
            per_round[name].append(args.batch_size * args.steps / step(args.steps))
        base = per_round["float32, NCHW"][-1]
        for name in CONFIGS:
            ratios[name].append(per_round[name][-1] / base)
    torch.set_num_threads(threads)
    print()
    print("| configuration | training images/s (median) | ratio to float32 NCHW (median of rounds) | first step s |")
    print("|---|---|---|---|")
    for name in CONFIGS:
        print(f"| {name} | {statistics.median(per_round[name]):.0f} | {statistics.median(ratios[name]):.2f}x "
              f"| {steps[name].first_step_s:.1f} |")


if __name__ == "__main__":
    main()
