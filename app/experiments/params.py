"""The parameters of each experiment kind, with bounds, defaults and descriptions.

The API's JSON Schema and the browser's form are generated from these models, so every field
carries a description a learner can read. No torch here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Marks a parameter that may change while the run trains (PATCH on a job; the CLI's --resume -p):
# it takes effect from the next step on. The JSON Schema carries it as "x-live": true.
LIVE = {"x-live": True}

# One [x, y] pair of the user's own data, in data units (x like the book's t_u, y like t_c).
DataPoint = Annotated[list[float], Field(min_length=2, max_length=2)]


class ExperimentParams(BaseModel):
    # An unknown parameter is an error, not silently ignored: a typo must not train the defaults.
    # NaN and infinities (JSON's NaN, Infinity, or 1e400) are refused too: no bound holds for them,
    # and they could not be stored or sent back as JSON.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def live_params(params_model: type[BaseModel]) -> list[str]:
    """The names of the parameters of ``params_model`` that may change live, in field order."""
    return [
        name
        for name, info in params_model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("x-live") is True
    ]


class LinearParams(ExperimentParams):
    """Chapter 5: fit t_c = w * t_u + b to the book's 11 thermometer readings."""

    epochs: int = Field(
        5000, ge=1, le=100_000, description="Passes over the data; one gradient step each.", json_schema_extra=LIVE
    )
    lr: float = Field(
        1e-2,
        gt=0,
        le=10,
        description="Learning rate: how far each step moves w and b. Too large and the loss explodes.",
        json_schema_extra=LIVE,
    )
    optimizer: Literal["manual", "autograd", "sgd", "adam"] = Field(
        "manual",
        description=(
            "manual: the hand-derived gradient (the book's grad_fn); autograd: backward() with an "
            "update under torch.no_grad(); sgd / adam: torch.optim."
        ),
    )
    input_scale: float = Field(
        0.1,
        gt=0,
        le=1000,
        description="Multiply the input by this before the model sees it (the book's t_un = 0.1 * t_u; 1.0 is raw).",
    )
    val_fraction: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Share of the points held out for validation, drawn at random from the seed.",
    )
    data: list[DataPoint] | None = Field(
        None,
        min_length=2,
        max_length=100_000,
        description="Your own [x, y] pairs (2 to 100,000) instead of the book's temperatures.",
    )


class MlpParams(ExperimentParams):
    """Chapter 6: a small neural network fits the same temperatures."""

    hidden: int = Field(13, ge=1, le=1024, description="Units in the hidden layer.")
    activation: Literal["tanh", "relu", "sigmoid"] = Field(
        "tanh", description="The non-linearity between the two linear layers."
    )
    epochs: int = Field(
        5000, ge=1, le=100_000, description="Passes over the data; one gradient step each.", json_schema_extra=LIVE
    )
    lr: float = Field(1e-3, gt=0, le=10, description="Learning rate of the optimizer.", json_schema_extra=LIVE)
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="torch.optim.SGD or torch.optim.Adam.")
    input_scale: float = Field(
        0.1, gt=0, le=1000, description="Multiply the input by this before the network sees it (1.0 is raw)."
    )
    val_fraction: float = Field(
        0.2, ge=0, le=0.5, description="Share of the points held out for validation, drawn at random from the seed."
    )
    data: list[DataPoint] | None = Field(
        None,
        min_length=2,
        max_length=100_000,
        description="Your own [x, y] pairs (2 to 100,000) instead of the book's temperatures.",
    )


class CifarParams(ExperimentParams):
    """Chapter 7: classify 32x32 CIFAR-10 images (chapter 8's convnet and a small ResNet too).

    The defaults are the fast recipe (README, "Benchmarks: CIFAR training core"): the ResNet with
    SGD, Nesterov momentum and a one-cycle schedule, flips and crops, label smoothing.
    """

    dataset: Literal["cifar10", "cifar2"] = Field(
        "cifar10", description="cifar10: all 10 classes; cifar2: airplane vs bird, as in the book."
    )
    model: Literal["fc", "conv", "resnet"] = Field(
        "resnet",
        description=(
            "fc: the book's fully connected net (3072 → 512 → Tanh → classes); conv: the book's Net "
            "(two conv layers with tanh and max-pooling, then 512 → 32 → classes); resnet: a small "
            "residual net with batch norm, built for accuracy per second on a CPU."
        ),
    )
    epochs: int = Field(
        8,
        ge=1,
        le=200,
        description="Passes over the training images (resnet: 8 at batch_size 128, lr 0.1 give about 85% test accuracy).",
        json_schema_extra=LIVE,
    )
    batch_size: int = Field(
        64, ge=2, le=2048, description="Images per gradient step (the book's 64); batch norm needs at least 2."
    )
    lr: float = Field(
        0.05,
        gt=0,
        le=10,
        description=(
            "Learning rate (the peak rate under nesterov_onecycle; scale it with batch_size, e.g. 0.1 "
            "at 128). The book used 1e-2 with plain SGD; adam wants about 1e-3."
        ),
        json_schema_extra=LIVE,
    )
    optimizer: Literal["sgd", "adam", "nesterov_onecycle"] = Field(
        "nesterov_onecycle",
        description=(
            "sgd and adam as in the book; nesterov_onecycle: SGD with Nesterov momentum 0.9 and a "
            "one-cycle schedule (the rate climbs to lr over the first quarter, then falls to near 0)."
        ),
    )
    weight_decay: float = Field(5e-4, ge=0, le=0.1, description="L2 penalty on the weights.", json_schema_extra=LIVE)
    augment: bool = Field(
        True, description="Random horizontal flips and random shifts by up to 2 pixels (crops).", json_schema_extra=LIVE
    )
    label_smoothing: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of each target spread over the other classes (0 is the book's plain cross-entropy).",
        json_schema_extra=LIVE,
    )
    limit_train: int | None = Field(
        None,
        ge=10,
        le=50_000,
        description=(
            "Train on this many training images drawn at random with the seed, as evenly over the "
            "classes as they allow; empty: all."
        ),
    )
