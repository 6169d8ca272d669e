"""The experiment kinds: their parameter models, titles and where their training code lives.

No torch here. :meth:`ExperimentSpec.load` imports the training module, which a worker process does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from app.errors import UnknownKind
from app.experiments.book_data import book_pairs
from app.experiments.params import CifarParams, LinearParams, MlpParams


@dataclass(frozen=True)
class BookResult:
    """A result the book prints, and the settings that give it: the run page puts it beside a run
    with those settings (values as printed, so the page knows how many digits to compare)."""

    where: str
    settings: dict[str, list[Any]]  # parameter -> the values that count as the book's
    printed: dict[str, str]  # result field -> the value as the book prints it
    exact: bool  # the same computation (else: the book's run had other random draws)
    # A run matches when each value is within this many units of the book's last printed digit
    # (float32 sums in another order differ there; a run with other draws, by more).
    tolerance_units: int = 2


@dataclass(frozen=True)
class ExperimentSpec:
    kind: str
    title: str
    description: str
    params_model: type[BaseModel]
    module: str  # has run(params, ctx) -> RunOutcome and predict(params, state_dict, inputs)
    default_data: list[list[float]] | None = None  # the [x, y] points a run without `data` fits
    book_results: tuple[BookResult, ...] = ()

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def defaults(self) -> dict[str, Any]:
        return self.params_model().model_dump(mode="json")


EXPERIMENTS: dict[str, ExperimentSpec] = {
    spec.kind: spec
    for spec in (
        ExperimentSpec(
            kind="linear",
            title="Chapter 5: fitting a line by gradient descent",
            description=(
                "Fit t_c = w * t_u + b to the book's 11 thermometer readings. Watch the learning "
                "rate and input scaling decide between converging and blowing up, and compare the "
                "hand-written gradient with autograd and torch.optim."
            ),
            params_model=LinearParams,
            module="app.experiments.linear",
            default_data=book_pairs(),
            book_results=(
                BookResult(
                    where=(
                        "Chapter 5: the training loop on normalized inputs (t_un = 0.1 * t_u), by hand, "
                        "with autograd and with optim.SGD"
                    ),
                    settings={
                        "epochs": [5000],
                        "lr": [0.01],
                        "input_scale": [0.1],
                        "val_fraction": [0],
                        "data": [None],
                        "optimizer": ["manual", "autograd", "sgd"],
                    },
                    printed={"w": "5.3671", "b": "-17.3012", "train_loss": "2.927648"},
                    exact=True,
                ),
                BookResult(
                    where="Chapter 5: optim.Adam on the raw readings",
                    settings={
                        "epochs": [2000],
                        "lr": [0.1],
                        "input_scale": [1],
                        "val_fraction": [0],
                        "data": [None],
                        "optimizer": ["adam"],
                    },
                    printed={"w": "0.5367", "b": "-17.3021", "train_loss": "2.927645"},
                    exact=True,
                ),
            ),
        ),
        ExperimentSpec(
            kind="mlp",
            title="Chapter 6: a small neural network on the same data",
            description=(
                "nn.Sequential with one hidden layer learns the same temperature conversion; a "
                "validation split shows when it starts to overfit."
            ),
            params_model=MlpParams,
            module="app.experiments.mlp",
            default_data=book_pairs(),
        ),
        ExperimentSpec(
            kind="cifar",
            title="Chapter 7: telling birds from airplanes (CIFAR-10)",
            description=(
                "Classify 32x32 colour images with the book's fully connected net, its convnet, "
                "or a small ResNet; see the accuracy per class and the confusion matrix."
            ),
            params_model=CifarParams,
            module="app.experiments.cifar",
            book_results=(
                BookResult(
                    where="Chapter 8: the convnet Net on CIFAR-2 (birds and airplanes), 100 epochs of SGD",
                    settings={
                        "dataset": ["cifar2"],
                        "model": ["conv"],
                        "optimizer": ["sgd"],
                        "lr": [0.01],
                        "epochs": [100],
                        "batch_size": [64],
                    },
                    printed={"train_acc": "0.93", "val_acc": "0.89"},
                    exact=False,
                ),
            ),
        ),
    )
}


def get_experiment(kind: str) -> ExperimentSpec:
    try:
        return EXPERIMENTS[kind]
    except KeyError:
        raise UnknownKind(kind, sorted(EXPERIMENTS)) from None
