"""Weights and gradients over time: a picture of each layer's weights and of their gradients.

At each snapshot (mlp) or epoch end (cifar) a run records, for every layer with a weight matrix
or convolution kernel (a weight of two or more dimensions that trains; biases and batch norm's
scales are left out), a histogram of its weights, one of its gradients, and the gradient's L2 norm.
A histogram has ``BINS`` equal bins over that tensor's own min..max, so a layer whose weights are
all within 1e-3 still shows its shape; its ``edges`` (BINS + 1 numbers) say where the bins lie.

The counts are computed on the CPU: a copy of a few megabytes once an epoch, or a few hundred
numbers a snapshot for the mlp; and ``torch.histc`` on CUDA has no deterministic implementation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from app.experiments.base import finite_or_none

BINS = 30  # a histogram's bins: enough to see a shape, small enough to keep every snapshot (~1 KB a layer)
FLOAT32_SAFE_SPAN = 1e38  # a wider range than this is binned in float64 (float32's largest is 3.4e38)


def histogram(tensor: torch.Tensor, bins: int = BINS) -> dict[str, Any]:
    """{"edges": bins + 1 floats, "counts": bins ints} over the tensor's finite values, whose
    count is the sum of the counts; "nonfinite" counts the others (NaN, infinities) when there are any."""
    values = tensor.detach().flatten().cpu()
    lo_t, hi_t = torch.aminmax(values)  # NaN if any value is NaN
    lo, hi = float(lo_t), float(hi_t)
    nonfinite = 0
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo > FLOAT32_SAFE_SPAN:
        # The slow path, for weights that blew up: only the finite values, in float64 (the range of
        # ±3e38 overflows float32's arithmetic inside histc).
        finite = values[torch.isfinite(values)].double()
        nonfinite = values.numel() - finite.numel()
        lo, hi = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 0.0)
        values = finite
    if hi <= lo:  # all equal (a gradient of zeros): one bin in the middle of a unit-wide range holds them
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(values, bins=bins, min=lo, max=hi) if values.numel() else torch.zeros(bins)
    step = (hi - lo) / bins
    picture: dict[str, Any] = {
        "edges": [lo + i * step for i in range(bins)] + [hi],
        "counts": [int(c) for c in counts.tolist()],
    }
    if nonfinite:
        picture["nonfinite"] = nonfinite
    return picture


def layer_histograms(model: nn.Module, bins: int = BINS) -> list[dict[str, Any]]:
    """One entry per layer with weights, in the model's order: its name (the weight's, without
    ``.weight``), shape, the weights' histogram, the gradients' (None before any backward pass), and
    the gradient's L2 norm (None likewise)."""
    layers = []
    for name, weight in model.named_parameters():
        if weight.dim() < 2 or not weight.requires_grad:
            continue
        grad = weight.grad
        layers.append(
            {
                "layer": name.removesuffix(".weight"),
                "shape": list(weight.shape),
                "weights": histogram(weight, bins),
                "grads": histogram(grad, bins) if grad is not None else None,
                "grad_norm": finite_or_none(grad.detach().float().norm()) if grad is not None else None,
            }
        )
    return layers
