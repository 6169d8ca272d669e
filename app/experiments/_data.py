"""The book's temperature data (chapters 5 and 6) and the seeded train/validation split."""

from __future__ import annotations

import torch

from app.experiments.book_data import BOOK_T_C, BOOK_T_U


def load_points(data: list[list[float]] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) as float32 vectors: the user's [x, y] pairs, or the book's t_u and t_c."""
    if data is None:
        return torch.tensor(BOOK_T_U), torch.tensor(BOOK_T_C)
    pairs = torch.tensor(data, dtype=torch.float32)
    return pairs[:, 0].contiguous(), pairs[:, 1].contiguous()


def split_indices(n_samples: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's shuffled split (``n_val = int(fraction * n)``), drawn from the run's seed.

    Uses its own generator so the split depends on the seed alone, not on what else drew numbers.
    """
    n_val = int(val_fraction * n_samples)
    if n_val == 0:
        return torch.arange(n_samples), torch.arange(0)
    n_val = min(n_val, n_samples - 1)  # always keep one point to train on
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(n_samples, generator=generator)
    return shuffled[:-n_val], shuffled[-n_val:]


def sample_pairs(x: torch.Tensor, y: torch.Tensor, limit: int = 1000) -> list[list[float]]:
    """At most ``limit`` [x, y] pairs, evenly spaced, for a chart to draw over."""
    n = x.shape[0]
    index = torch.linspace(0, n - 1, min(n, limit)).round().long() if n > limit else torch.arange(n)
    return torch.stack([x[index], y[index]], dim=1).tolist()
