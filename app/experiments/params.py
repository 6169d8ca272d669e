"""The parameters of each experiment kind, with bounds, defaults and descriptions.

The API's JSON Schema and the browser's form are generated from these models, so every field
carries a description a learner can read. No torch here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

# Marks a parameter that may change while the run trains (PATCH on a job; the CLI's --resume -p):
# it takes effect from the next step on. The JSON Schema carries it as "x-live": true.
LIVE = {"x-live": True}

# One [x, y] pair of the user's own data, in data units (x like the book's t_u, y like t_c).
DataPoint = Annotated[list[float], Field(min_length=2, max_length=2)]
MAX_DATA_POINTS = 100_000  # the model's bound; a server may set a lower one (PLAYGROUND_MAX_DATA_POINTS)
DATA_ERRORS_SHOWN = 5  # a 422 for 100,000 bad points names the first few, and counts the rest


def _shown(value: Any) -> str:
    """A value as the learner wrote it, short: JSON's words for NaN and the infinities."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _explain_data_error(error: Any) -> str:
    """One of pydantic's errors under ``data`` said for a learner: which point, what is wrong with
    it and what is allowed (pydantic's own says "Input should be a valid number" at data.3.1)."""
    where, kind, value = error["loc"], error["type"], error["input"]
    points = f"2 to {MAX_DATA_POINTS:,} [x, y] points"
    if not where:  # the list itself
        if kind == "too_short":
            n = len(value)
            return f"data has {n} point{'' if n == 1 else 's'}; a fit needs at least 2 (data takes {points})."
        if kind == "too_long":
            return f"data has {len(value):,} points, more than the {MAX_DATA_POINTS:,} it takes ({points})."
        return f"data is {_shown(value)}; it must be a list of {points}, like [[35.7, 0.5], [55.9, 14.0]]."
    index = where[0]
    point = f"point {index + 1} (data[{index}])" if isinstance(index, int) else f"data[{index!r}]"
    if len(where) == 1:
        if kind in ("too_short", "too_long"):
            return f"{point} is {_shown(value)}: {len(value)} number{'' if len(value) == 1 else 's'}; a point is [x, y], two numbers."
        return f"{point} is {_shown(value)}, not a pair [x, y] of two numbers."
    axis = {0: "x", 1: "y"}.get(where[1], f"item {where[1]}")
    why = "is not finite" if kind == "finite_number" else "is not a number"
    return f"{point}: its {axis}, {_shown(value)}, {why}; x and y must be finite numbers."


def validate_data(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``data`` as pydantic checks it, with each error's message naming the point (see above); the
    locations (``data.3.1``) and the inputs stay pydantic's, the first few errors only."""
    try:
        return handler(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        details: list[InitErrorDetails] = []
        for error in errors[:DATA_ERRORS_SHOWN]:
            message = _explain_data_error(error)
            details.append(
                InitErrorDetails(
                    type=PydanticCustomError("data_point", "{message}", {"message": message}),
                    loc=error["loc"],
                    input=error["input"],
                )
            )
        if len(errors) > DATA_ERRORS_SHOWN:
            last = details[-1]
            more = f"{last['type'].message()} (And {len(errors) - DATA_ERRORS_SHOWN:,} more errors after it.)"  # type: ignore[union-attr]
            last["type"] = PydanticCustomError("data_point", "{message}", {"message": more})
        raise ValidationError.from_exception_data(exc.title, details) from None


# The start of the line fit, (init_w, init_b): far wider than any fit of the book's data needs (its
# minimum is w = 5.37, b = -17.3 on the scaled inputs), and wide enough for own data in other units,
# while w * x stays far inside float32 for any input the other bounds allow.
START_BOUND = 1e6


def validate_start(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """init_w / init_b as pydantic checks them, each error said with the field's name and its range
    (pydantic's own says "Input should be less than or equal to 1000000")."""
    try:
        return handler(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = info.field_name
        allowed = f"a finite number from {-START_BOUND:,.0f} to {START_BOUND:,.0f}"
        shown = value.strip() if isinstance(value, str) and _is_float(value) else _shown(value)  # the CLI's "1e9"
        message = f"{name} is {shown}; the start's {name.removeprefix('init_')} must be {allowed}."
        detail = InitErrorDetails(
            type=PydanticCustomError("start_value", "{message}", {"message": message}),
            loc=error["loc"],
            input=error["input"],
        )
        raise ValidationError.from_exception_data(exc.title, [detail]) from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    init_w: float = Field(
        1.0,
        ge=-START_BOUND,
        le=START_BOUND,
        description="The w gradient descent starts from (the book's 1.0); drag the start on the loss surface to set it.",
    )
    init_b: float = Field(
        0.0,
        ge=-START_BOUND,
        le=START_BOUND,
        description="The b gradient descent starts from (the book's 0.0).",
    )
    lr_finder: bool = Field(
        False,
        description=(
            "Instead of training: a learning-rate range test. One step at each lr from 1e-7 to 10 "
            "(growing exponentially, 100 steps) until the loss blows up; the result suggests an lr."
        ),
    )
    data: list[DataPoint] | None = Field(
        None,
        min_length=2,
        max_length=MAX_DATA_POINTS,
        description="Your own [x, y] pairs (2 to 100,000) instead of the book's temperatures.",
    )
    _data = field_validator("data", mode="wrap")(validate_data)
    _start = field_validator("init_w", "init_b", mode="wrap")(validate_start)


class MlpParams(ExperimentParams):
    """Chapter 6: a small neural network fits the same temperatures."""

    hidden: int = Field(13, ge=1, le=1024, description="Units in each hidden layer.")
    layers: int = Field(
        1,
        ge=1,
        le=4,
        description=(
            "Hidden layers, each of `hidden` units with the activation (1 is the book's net). With "
            "sigmoid and 4 layers the first layer's gradients are much smaller than the last's: they vanish."
        ),
    )
    activation: Literal["tanh", "relu", "sigmoid"] = Field(
        "tanh", description="The non-linearity after each hidden layer (the book's is tanh)."
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
    lr_finder: bool = Field(
        False,
        description=(
            "Instead of training: a learning-rate range test. One step at each lr from 1e-7 to 10 "
            "(growing exponentially, 100 steps) until the loss blows up; the result suggests an lr."
        ),
    )
    data: list[DataPoint] | None = Field(
        None,
        min_length=2,
        max_length=MAX_DATA_POINTS,
        description="Your own [x, y] pairs (2 to 100,000) instead of the book's temperatures.",
    )
    _data = field_validator("data", mode="wrap")(validate_data)


# The nets built for speed; "auto" switches (tta, channels_last) are on for them, off for the book's.
FAST_NETS = ("resnet", "airbench")
# The views a net's outputs are averaged over at test time (cifar.test_time_outputs).
TtaViews = Literal["none", "flip", "flip_translate"]


class CifarParams(ExperimentParams):
    """Chapter 7: classify 32x32 CIFAR-10 images (chapter 8's convnet and a small ResNet too).

    The defaults are the fast recipe (README, "Benchmarks: CIFAR training core"): the ResNet with
    SGD, Nesterov momentum and a one-cycle schedule, flips and crops, label smoothing.
    """

    # width is airbench's only (the validator below says so): the schema says it too, so a client
    # generating bodies from it (or schemathesis) makes none the server refuses.
    model_config = ConfigDict(
        **ExperimentParams.model_config,
        json_schema_extra={
            "anyOf": [
                {"properties": {"model": {"const": "airbench"}}, "required": ["model"]},
                {"properties": {"width": {"type": "null"}}},
            ]
        },
    )


    dataset: Literal["cifar10", "cifar2"] = Field(
        "cifar10", description="cifar10: all 10 classes; cifar2: airplane vs bird, as in the book."
    )
    model: Literal["fc", "conv", "resnet", "airbench"] = Field(
        "resnet",
        description=(
            "fc: the book's fully connected net (3072 → 512 → Tanh → classes); conv: the book's Net "
            "(two conv layers with tanh and max-pooling, then 512 → 32 → classes); resnet: a small "
            "residual net with batch norm, built for accuracy per second on a CPU; airbench: "
            "cifar10-airbench's net (94% in 10 epochs on a GPU; at width 64 about 6x the resnet's "
            "multiply-adds per image)."
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
            "sgd and adam as in the book; nesterov_onecycle: SGD with Nesterov momentum (momentum) and a "
            "one-cycle schedule (the rate climbs to lr over the first quarter, then falls to near 0)."
        ),
    )
    weight_decay: float = Field(5e-4, ge=0, le=0.1, description="L2 penalty on the weights.", json_schema_extra=LIVE)
    momentum: float = Field(
        0.9,
        ge=0,
        lt=1,
        description="nesterov_onecycle's Nesterov momentum (0.9, as DAWNBench's ResNet-9; airbench: 0.85).",
    )
    bias_lr_scale: float = Field(
        1.0,
        ge=1,
        le=1000,
        description=(
            "nesterov_onecycle: the batch norms' biases learn this many times faster than the other "
            "weights, with their weight decay divided by as much so that they decay at the same rate "
            "(airbench: 64). 1: one rate for all."
        ),
    )
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
    lr_finder: bool = Field(
        False,
        description=(
            "Instead of training: a learning-rate range test. One batch at each lr from 1e-7 to 10 "
            "(growing exponentially, 100 batches) until the loss blows up; the result suggests an lr."
        ),
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
    # The levers of the speedruns (cifar10-airbench, hlb-CIFAR10). Each default keeps the recipe
    # as it was before they were parameters, so older jobs and checkpoints mean the same.
    width: int | None = Field(
        None,
        ge=8,
        le=256,
        description=(
            "airbench only: channels of its first conv group (the other two get 4x). Empty: 64, as "
            "airbench94. The cost per image grows with the square: 32 is about a quarter of 64."
        ),
    )
    whiten: bool = Field(
        True,
        description=(
            "resnet and airbench: set the first layer (a 2x2 convolution) from the patch statistics of "
            "5,000 training images so that it whitens them, and freeze it (cifar10-airbench). It costs "
            "a second before the first step and saves the backward pass through that layer. Off: the "
            "layer starts random and trains like the others. The book's nets have no such layer."
        ),
    )
    flip: Literal["random", "alternate"] = Field(
        "random",
        description=(
            "How augment mirrors the images. random: each image with probability 1/2 in every epoch; "
            "alternate (airbench): a random half in the first epoch, then every image the other way "
            "round from the epoch before, so two epochs in a row always see both sides. Costs nothing."
        ),
    )
    lookahead: bool = Field(
        False,
        description=(
            "airbench's Lookahead: every 5 steps the weights are pulled back to a running average of "
            "themselves, more strongly as the run nears its end, and the run ends on the average. Costs "
            "a copy of the weights in memory and in each checkpoint, and one pass over them per 5 steps."
        ),
    )
    tta: Literal["auto", "flip", "flip_translate", "none"] = Field(
        "auto",
        description=(
            "Test-time augmentation in the evaluation (and predict). flip: the mean of the outputs for "
            "each image and its mirror image, which doubles the evaluation's cost and helps a net "
            "trained on flips; flip_translate: airbench's six views, half the flip's mean and half the "
            "flip means of the image shifted one pixel up-left and down-right (3x the flip's cost); "
            "none: the image alone. auto: flip for resnet and airbench, none for the book's nets."
        ),
    )
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "Keep the images and weights in NHWC memory order (on), which oneDNN's convolutions run "
            "about 1.3x faster on a CPU (and tensor cores on a GPU), or PyTorch's default NCHW (off). "
            "The same numbers up to rounding. auto: on for resnet and airbench, off for the book's nets."
        ),
    )
    compile: bool = Field(
        False,
        description=(
            "torch.compile the net (inductor: fused C++ kernels on a CPU, Triton on a GPU). The first "
            "steps and the first evaluation wait for the compiler (tens of seconds on a CPU, again on a "
            "resumed run unless its cache is warm); outputs equal the plain net's up to rounding."
        ),
    )
    mixed_precision: bool = Field(
        False,
        description=(
            "Run the forward pass and the loss under torch.autocast with bfloat16: about 2x faster on a "
            "GPU with tensor cores, 2.5-3x on a CPU with AMX (airbench's net: 3.1x on a 2-core Xeon); on "
            "a CPU without bfloat16 instructions (AVX-512 BF16, AMX) slower. The weights and the "
            "optimiser stay float32."
        ),
    )

    @model_validator(mode="after")
    def _width_is_airbench_only(self) -> CifarParams:
        if self.width is not None and self.model != "airbench":
            raise ValueError(f"width={self.width} applies to model='airbench' only, not model={self.model!r}")
        return self

    def tta_views(self) -> TtaViews:
        """``tta`` with auto resolved: flip for the nets built for speed, none for the book's."""
        if self.tta == "auto":
            return "flip" if self.model in FAST_NETS else "none"
        return self.tta

    def uses_channels_last(self) -> bool:
        """``channels_last`` with auto resolved, as :func:`tta_views`."""
        return self.channels_last == "on" or (self.channels_last == "auto" and self.model in FAST_NETS)
