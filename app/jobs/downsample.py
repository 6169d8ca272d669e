"""Min/max bucket downsampling of a metric table: fewer rows, and no spike hidden.

The rows are cut into equal buckets of consecutive points; each bucket keeps, for every value
column, the row with its minimum and the row with its maximum (the "min/max" or M4 idea used by
plotting libraries). A chart drawn from the kept rows has the same envelope as one drawn from all
of them: the largest loss of the run is always among them, wherever it fell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _kept_rows(values: np.ndarray, n_buckets: int) -> np.ndarray:
    """Indices of the rows kept with ``n_buckets`` buckets (first and last row included)."""
    n, k = values.shape
    size = -(-n // n_buckets)
    n_buckets = -(-n // size)
    padded = np.full((n_buckets * size, k), np.nan)
    padded[:n] = values
    missing = np.isnan(padded)
    # A missing value never wins: +inf for the minimum, -inf for the maximum.
    lows = np.where(missing, np.inf, padded).reshape(n_buckets, size, k).argmin(axis=1)
    highs = np.where(missing, -np.inf, padded).reshape(n_buckets, size, k).argmax(axis=1)
    offsets = (np.arange(n_buckets) * size)[:, None]
    kept = np.concatenate([(lows + offsets).ravel(), (highs + offsets).ravel(), [0, n - 1]])
    # A bucket where a column is all missing picks its first row, which exists: still a real row.
    return np.unique(kept[kept < n])


def downsample_min_max(rows: Sequence[Sequence[float | None]], value_columns: Sequence[int], max_points: int) -> list[int]:
    """Indices (ascending) of at most ``max_points`` rows to keep; all of them if there are few.

    ``value_columns`` are the positions of the columns whose extremes must survive (losses,
    accuracies), not the step or epoch. Uses as many buckets as fit in ``max_points``.
    """
    n = len(rows)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if n <= max_points:
        return list(range(n))
    values = np.array(
        [[np.nan if row[c] is None else row[c] for c in value_columns] for row in rows], dtype=float
    ).reshape(n, len(value_columns))
    values = values[:, ~np.isnan(values).all(axis=0)]  # a column with no values has no extremes
    if values.shape[1] == 0:
        return np.unique(np.linspace(0, n - 1, max_points).round().astype(int)).tolist()

    # The number of rows kept grows with the number of buckets (not strictly: extremes that fall
    # on the same row count once), so search for the most buckets that still fit.
    lo, hi, best = 1, max_points, None
    while lo <= hi:
        mid = (lo + hi) // 2
        kept = _kept_rows(values, mid)
        if len(kept) <= max_points:
            best, lo = kept, mid + 1
        else:
            hi = mid - 1
    if best is None:
        # Fewer rows allowed than 2 per column: keep each column's global maximum, then minimum.
        order = [values[:, c] for c in range(values.shape[1])]
        picks = [int(np.nanargmax(col)) for col in order] + [int(np.nanargmin(col)) for col in order]
        best = np.array(list(dict.fromkeys(picks))[:max_points])
    return sorted(int(i) for i in best)
