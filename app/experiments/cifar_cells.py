"""Every test image of one confusion-matrix cell, a page at a time
(``GET /api/jobs/{id}/confusion/{true}/{pred}``, issue 12).

A run keeps 3 images per cell (``cifar_report.N_CELL_EXAMPLES``); the others are found again here.
The run's net evaluates the run's test split as the run's own evaluation did (``cifar.evaluate``:
the same test-time augmentation, batch size and precision, with the threads the run's worker
had), so the cells hold the counts of the stored confusion matrix. A cell's images come in the
order of the test split, as ``cifar_report.confusion_examples`` picks them, so its first page
starts with the stored examples.

Runs in a worker (the predictor or a Ray task), never in the web process. An evaluation of the
test split takes seconds on a CPU; the worker keeps its predictions per job and weights file (a
small LRU), and the decoded test split per data set, so the next page is a lookup and a few PNGs.

Where it can differ from the stored matrix: a run evaluated on a GPU (or compiled) computed in
another float order than this CPU evaluation, so an image whose two best classes were all but
tied may land in the neighbouring cell; and a run cancelled part way through an epoch kept weights
newer than its last evaluation. ``count`` is always this evaluation's own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from app.experiments.cifar_data import load_cifar10, select_classes
from app.experiments.cifar_report import png_data_uri
from app.experiments.params import CifarParams

CACHED_RUNS = 4  # runs whose test predictions a worker keeps: 10,000 labels and confidences each
CACHED_SPLITS = 2  # decoded test splits kept (cifar10's and cifar2's): 30 MB for cifar10's images

T = TypeVar("T")


@dataclass(frozen=True)
class CellRequest:
    """What the web process asks (the route checked the ranges) and where the worker finds things."""

    key: str  # the job and its weights file ("<id>:<mtime_ns>:<size>"): new weights, new key
    true: int
    pred: int
    offset: int
    limit: int
    data_dir: str  # the server's PLAYGROUND_DATA_DIR, as the run's worker had it
    cache_dir: str | None  # where the run's worker kept the decoded data set when data_dir is read-only
    threads: int  # torch threads of the run's worker

    @classmethod
    def from_inputs(cls, inputs: dict[str, Any]) -> CellRequest:
        return cls(**{name: inputs[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TestSplit:
    classes: tuple[str, ...]
    images: torch.Tensor  # (N, 3, 32, 32) uint8, as the run evaluated them
    labels: torch.Tensor  # (N,)


@dataclass(frozen=True)
class TestPredictions:
    predictions: torch.Tensor  # (N,) the predicted class of each test image
    confidences: torch.Tensor  # (N,) its softmax probability


class Lru(Generic[T]):
    """The last ``size`` values made, by key; the predictor asks one thing at a time, and so does
    a Ray worker process, so no lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = self._values[key] = make()
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value


_splits: Lru[TestSplit] = Lru(CACHED_SPLITS)
_predictions: Lru[TestPredictions] = Lru(CACHED_RUNS)


def cell_page(params: CifarParams, state_dict: dict[str, torch.Tensor], inputs: dict[str, Any]) -> dict[str, Any]:
    """The cell's ``count`` and its images ``offset`` to ``offset + limit``, each with its ``index``
    in the test split, the picture as a PNG data URI and the net's ``confidence`` in its answer."""
    request = CellRequest.from_inputs(inputs)
    split = _splits.get(
        (params.dataset, request.data_dir, request.cache_dir),
        lambda: load_test_split(params.dataset, Path(request.data_dir), request.cache_dir),
    )
    predicted = _predictions.get(request.key, lambda: evaluate_test_split(params, state_dict, split, request.threads))
    in_cell = torch.nonzero((split.labels == request.true) & (predicted.predictions == request.pred)).flatten()
    page = in_cell[request.offset : request.offset + request.limit].tolist()
    return {
        "true": split.classes[request.true],
        "pred": split.classes[request.pred],
        "count": in_cell.numel(),
        "offset": request.offset,
        "limit": request.limit,
        "images": [
            {
                "index": index,
                "image": png_data_uri(split.images[index]),
                "confidence": round(float(predicted.confidences[index]), 4),
            }
            for index in page
        ],
    }


def load_test_split(dataset: str, data_dir: Path, cache_dir: str | None) -> TestSplit:
    """The run's test images, loaded as ``cifar.run`` loads them (never downloaded: the run found them)."""
    from app.experiments.cifar import class_names

    data = load_cifar10(data_dir, cache_dir=Path(cache_dir) if cache_dir else None, allow_download=False)
    data = select_classes(data, class_names(dataset))
    return TestSplit(data.classes, data.test_images, data.test_labels)


def evaluate_test_split(
    params: CifarParams, state_dict: dict[str, torch.Tensor], split: TestSplit, threads: int
) -> TestPredictions:
    """The run's final evaluation again: ``cifar.evaluate`` with the run's net, test-time
    augmentation and precision, on the CPU (eager: compiling would take longer than evaluating)."""
    from app.experiments.base import RunContext
    from app.experiments.cifar import autocast, evaluate, trained_net

    net = trained_net(params, state_dict)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)  # its loss is not used
    # The predictor runs one thread so that it never competes with training; this is a whole test
    # split, once per run, with as many threads as the run's worker had.
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        precision, tta = autocast(params, torch.device("cpu")), params.tta_views()
        evaluation = evaluate(net, split.images, split.labels, loss_fn, RunContext(seed=0), tta, precision)
    finally:
        torch.set_num_threads(before)
    assert evaluation is not None  # only a run's should_stop cuts it short
    return TestPredictions(evaluation.predictions, evaluation.confidences)
