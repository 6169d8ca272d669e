"""Which devices this machine has and what "auto" means. Imports torch: worker processes only."""

from __future__ import annotations

import torch

from app.errors import DeviceUnavailable


def available_devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda:0`` when there is a GPU, else ``cpu``; ``cuda`` → ``cuda:0``."""
    available = available_devices()
    if device == "auto":
        return "cuda:0" if len(available) > 1 else "cpu"
    if device == "cuda":
        device = "cuda:0"
    if device not in available:
        raise DeviceUnavailable(device, available)
    return device
