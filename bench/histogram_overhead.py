"""What recording the weight and gradient histograms costs an mlp run (issue 14).

Runs the mlp in this process with the histograms (as jobs do) and with ``layer_histograms``
replaced by a stand-in that records nothing, in interleaved rounds, on one thread, and compares
the steps per second (CPU time, so other work on the machine counts less). Also times one
snapshot's histograms directly. Usage: ``.venv/bin/python -m bench.histogram_overhead [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from app.experiments import mlp
    from app.experiments.base import RunContext
    from app.experiments.histograms import layer_histograms
    from app.experiments.params import MlpParams

    def steps_per_cpu_second(params: MlpParams, record: bool) -> float:
        mlp.layer_histograms = layer_histograms if record else (lambda model: None)
        started = time.process_time()
        mlp.run(params, RunContext(seed=1))
        return params.epochs / (time.process_time() - started)

    for epochs, layers in ((5000, 1), (5000, 4), (300, 1), (300, 4)):
        params = MlpParams(epochs=epochs, layers=layers)
        with_, without = [], []
        for _ in range(args.rounds):
            without.append(steps_per_cpu_second(params, False))
            with_.append(steps_per_cpu_second(params, True))
        a, b = statistics.median(with_), statistics.median(without)
        print(f"epochs={epochs} layers={layers}: {a:,.0f} steps/s with the histograms, {b:,.0f} without: {a / b:.3f}x")
    mlp.layer_histograms = layer_histograms

    for layers in (1, 4):
        model = mlp.make_model(MlpParams(layers=layers))
        model(torch.randn(9, 1)).sum().backward()
        started = time.process_time()
        for _ in range(500):
            layer_histograms(model)
        print(f"layers={layers}: {(time.process_time() - started) / 500 * 1e6:.0f} us for one snapshot's histograms")


if __name__ == "__main__":
    main()
