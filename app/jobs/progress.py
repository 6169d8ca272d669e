"""A tqdm progress bar fed by metric points (the CLI's foreground runs)."""

from __future__ import annotations

from tqdm import tqdm

from app.experiments.base import MetricPoint


class ProgressBar:
    """Advances by epoch; shows the latest losses and accuracies beside it."""

    def __init__(self, total: int | None, desc: str, disable: bool = False) -> None:
        self._bar = tqdm(total=total, desc=desc, unit="epoch", disable=disable, file=None)
        self._epoch = 0

    def update(self, point: MetricPoint) -> None:
        epoch = int(point.get("epoch") or 0)
        if epoch > self._epoch:
            self._bar.update(epoch - self._epoch)
            self._epoch = epoch
        # Numbers only: a point may carry a picture too (cifar's per_class_acc is a dict).
        shown = {
            k: f"{v:.4g}" for k, v in point.items() if k.endswith(("loss", "acc")) and isinstance(v, (int, float))
        }
        if shown:
            self._bar.set_postfix(shown, refresh=False)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
