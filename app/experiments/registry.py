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
class ExperimentSpec:
    kind: str
    title: str
    description: str
    params_model: type[BaseModel]
    module: str  # has run(params, ctx) -> RunOutcome and predict(params, state_dict, inputs)
    default_data: list[list[float]] | None = None  # the [x, y] points a run without `data` fits

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
        ),
    )
}


def get_experiment(kind: str) -> ExperimentSpec:
    try:
        return EXPERIMENTS[kind]
    except KeyError:
        raise UnknownKind(kind, sorted(EXPERIMENTS)) from None
