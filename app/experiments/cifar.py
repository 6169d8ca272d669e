"""Chapter 7: tell airplanes from birds (cifar2), or all ten CIFAR-10 classes, with three nets.

The loop is the book's ``training_loop`` (chapter 7/8): for each epoch, for each batch, forward,
loss, ``zero_grad``, ``backward``, ``step``, then the accuracy on the validation images. What it
changes for speed is marked where it happens; the short version: the images stay one uint8 tensor
on the device (no per-image PIL, ``ToTensor`` or DataLoader), batches are drawn with
``torch.randperm``, and flips, crops and normalisation work on whole batches.

A control point follows each batch (for an epoch's last batch: after the epoch's evaluation):
there a run may pause with its whole state saved, resume from it bit-identically, and take live
changes of lr, weight_decay, label_smoothing, augment and epochs (base.py, :func:`apply_live`).

The speedruns' levers are parameters with defaults that keep the recipe as it was (params.py):
``whiten``, ``flip="alternate"``, ``lookahead``, ``tta``, ``channels_last``, ``compile`` and
``mixed_precision``; each is marked where it acts.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from app.errors import InvalidImage
from app.experiments.base import (
    Checkpoint,
    RunContext,
    RunOutcome,
    RunStatus,
    finite_or_none,
)
from app.experiments.checkpoints import check_resume, detached
from app.experiments.lr_finder import run_range_test
from app.experiments.cifar_data import (
    CIFAR2_CLASSES,
    CIFAR10_CLASSES,
    IMAGE_SIZE,
    alternating_flips,
    batch_crop,
    batch_flip_lr,
    batch_flip_where,
    batches_per_epoch,
    load_cifar10,
    order_batches,
    sample_per_class,
    select_classes,
)
from app.experiments.cifar_models import WHITENED, make_net
from app.experiments.cifar_report import confusion_matrix, per_class_accuracy, summarize
from app.experiments.histograms import layer_histograms
from app.experiments.params import CifarParams, TtaViews

EVAL_BATCH = 500  # evaluation has no gradients to keep, so larger batches: fewer, faster calls
# Pixels each way. The usual RandomCrop(32, padding=4) is a stronger regulariser than a few
# epochs need: these nets still underfit (train accuracy = test accuracy), and airbench's 2
# gave the resnet +0.7 points after 3 epochs here.
CROP_PADDING = 2
WHITENING_IMAGES = 5000  # training images the first layer of resnet and airbench is whitened from
LOOKAHEAD_EVERY = 5  # steps between two pulls of the weights towards their average (airbench)
MAX_UPLOAD_PIXELS = 40_000_000  # a larger picture is a decompression bomb, not a photo


def class_names(dataset: str) -> tuple[str, ...]:
    return CIFAR2_CLASSES if dataset == "cifar2" else CIFAR10_CLASSES


# ----------------------------------------------------------------------------------------------
# Optimiser and learning-rate schedule


def make_optimizer(
    params: CifarParams, model: nn.Module, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    trainable = [p for p in model.parameters() if p.requires_grad]
    if params.optimizer == "sgd":  # the book's optim.SGD(model.parameters(), lr=1e-2)
        return torch.optim.SGD(trainable, lr=params.lr, weight_decay=params.weight_decay), None
    if params.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=params.lr, weight_decay=params.weight_decay), None
    # The fast recipe (DAWNBench ResNet-9, cifar10-airbench): Nesterov momentum, and a learning rate
    # that climbs linearly to params.lr over the first quarter of the steps, then falls to near 0.
    optimizer = torch.optim.SGD(
        param_groups(model, params.bias_lr_scale), lr=params.lr, momentum=params.momentum, nesterov=True
    )
    set_group_rates(optimizer, params)  # before LambdaLR, which takes each group's rate as its peak
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, OneCycle(total_steps))
    return optimizer, schedule


def param_groups(model: nn.Module, bias_lr_scale: float) -> list[dict[str, Any]]:
    """The trainable weights as the optimizer's groups: one, or with ``bias_lr_scale`` > 1 two, the
    batch norms' biases (``lr_scale``: that factor) after all the others (so group 0 keeps the rate
    the charts show).

    Why airbench speeds up the biases: with a batch norm in front, a bias is the only thing that
    moves its channel's threshold, and one per channel gets a tiny gradient next to the weights."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if bias_lr_scale == 1:
        return [{"params": trainable}]  # as before the parameter existed: old checkpoints still load
    norm_biases = {
        id(module.bias)
        for module in model.modules()
        if isinstance(module, nn.BatchNorm2d) and module.bias is not None and module.bias.requires_grad
    }
    return [
        {"params": [p for p in trainable if id(p) not in norm_biases]},
        {"params": [p for p in trainable if id(p) in norm_biases], "lr_scale": bias_lr_scale},
    ]


def set_group_rates(optimizer: torch.optim.Optimizer, params: CifarParams) -> None:
    """Each group's rate and weight decay from ``params``: ``lr`` times the group's ``lr_scale`` and
    ``weight_decay`` divided by it (torch's SGD decays by rate times weight_decay per step, so the
    decay per step stays the same for every group)."""
    for group in optimizer.param_groups:
        scale = group.get("lr_scale", 1.0)
        group["lr"] = params.lr * scale
        group["weight_decay"] = params.weight_decay / scale


def one_cycle(step: int, total_steps: int, warmup: float = 0.25, start: float = 0.1, end: float = 0.001) -> float:
    """The one-cycle factor of the peak rate at ``step`` (0-based): start → 1 → end, piecewise linear.

    (OneCycleLR's cosine-free variant; written out because OneCycleLR divides by zero for some
    short runs, e.g. 4 steps.)
    """
    peak = max(1, round(warmup * total_steps))
    if step < peak:
        return start + (1 - start) * step / peak
    return 1 - (1 - end) * min(1.0, (step - peak) / max(1, total_steps - 1 - peak))


class OneCycle:
    """``one_cycle`` over ``total_steps`` as an object: LambdaLR saves its ``total_steps`` with the
    schedule's state, and a live change of epochs re-plans it (:func:`apply_live`)."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        return one_cycle(step, self.total_steps)


def apply_live(
    params: CifarParams,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LambdaLR | None,
    loss_fn: nn.CrossEntropyLoss,
    steps_per_epoch: int,
) -> CifarParams:
    """Makes the optimizer, the schedule and the loss agree with ``params`` (the loop reads
    ``augment`` and ``epochs`` itself). Idempotent; returns ``params``.

    Under nesterov_onecycle the schedule is ``lr * one_cycle(step, epochs * steps_per_epoch)``
    with both read from ``params``: a new lr rescales the rest of the cycle (it is the new peak),
    and new epochs re-plan the cycle over the new number of steps from the current step on (the
    rate of the next step is where the new plan has it, which may be a jump: lengthened in the
    decay, the rate goes back up to where the longer cycle would be now).
    """
    set_group_rates(optimizer, params)  # the schedule's rate, if any, replaces lr below
    if schedule is not None:
        for cycle in schedule.lr_lambdas:
            cycle.total_steps = params.epochs * steps_per_epoch
        schedule.base_lrs = [params.lr * group.get("lr_scale", 1.0) for group in optimizer.param_groups]
        # LambdaLR's own formula at the step it is at: what its next step() would have set, re-planned.
        for group, base_lr, cycle in zip(optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
            group["lr"] = base_lr * cycle(schedule.last_epoch)
    loss_fn.label_smoothing = params.label_smoothing
    return params


class Lookahead:
    """cifar10-airbench's Lookahead: a slow average of the weights that the weights are pulled back to.

    Every :data:`LOOKAHEAD_EVERY` steps the average moves towards the weights by ``1 - decay`` and
    the weights are set to it; ``decay`` grows from 0 to 0.95**5 with the cube of the progress, so
    early steps go their own way and late ones are averaged, as stochastic weight averaging does.
    The batch-norm statistics are averaged too (every float tensor of the state_dict).
    """

    def __init__(self, model: nn.Module) -> None:
        self.average = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}

    @staticmethod
    def decay(step: int, total_steps: int) -> float:
        return 0.95**5 * (min(step, total_steps) / total_steps) ** 3

    @torch.no_grad()
    def pull(self, model: nn.Module, decay: float) -> None:
        for name, current in model.state_dict().items():
            if current.is_floating_point():
                average = self.average[name]
                average.lerp_(current, 1 - decay)
                current.copy_(average)


def autocast(params: CifarParams, device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for the forward pass and the loss when ``mixed_precision``; else nothing
    (not ``autocast(enabled=False)``: the default path stays the code it was)."""
    if not params.mixed_precision:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def with_defaults(cp: Checkpoint) -> Checkpoint:
    """A checkpoint from before a parameter existed lacks it; its run used what is now its default
    (every new parameter defaults to the old behaviour), so compare with that."""
    try:
        filled = CifarParams.model_validate(cp.params).model_dump(mode="json")
    except ValueError:
        return cp  # check_resume names what differs
    return Checkpoint(cp.kind, cp.step, cp.epoch, cp.epoch_end, filled, cp.state)


# ----------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    predictions: torch.Tensor  # (N,) predicted class per test image, on the CPU
    confidences: torch.Tensor  # (N,) softmax probability of the predicted class


def test_time_outputs(model: nn.Module, images: torch.Tensor, views: TtaViews) -> torch.Tensor:
    """The net's outputs for ``images``, averaged over airbench's test-time views.

    "flip": the mean of the outputs for each image and its mirror image (a net trained on flips
    sees two views); "flip_translate" (airbench's level 2): half that mean, and half the flip means
    of the image shifted one pixel up-left and down-right, reflected at the edges: six views, as a
    net trained on 2-pixel crops sees them; "none": the image alone."""
    if views == "none":
        return model(images)
    flipped = (model(images) + model(images.flip(-1))) / 2
    if views == "flip":
        return flipped
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    height, width = images.shape[-2:]
    shifted = [padded[..., :height, :width], padded[..., 2:, 2:]]  # the content moves down-right, up-left
    translated = sum((model(s) + model(s.flip(-1))) / 2 for s in shifted) / 2
    return (flipped + translated) / 2


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: nn.Module,
    ctx: RunContext,
    tta: TtaViews = "none",
    precision: contextlib.AbstractContextManager | None = None,
) -> Evaluation | None:
    """Loss and accuracy over all of ``images``; None when the run is cancelled part way.

    ``precision``: the autocast the run trains under (entered for each batch), or None."""
    model.eval()
    total_loss = torch.zeros((), device=images.device)
    predictions, confidences = [], []
    for start in range(0, images.shape[0], EVAL_BATCH):
        if ctx.should_stop():
            return None
        batch_labels = labels[start : start + EVAL_BATCH]
        with precision if precision is not None else contextlib.nullcontext():
            outputs = test_time_outputs(model, images[start : start + EVAL_BATCH], tta)
            batch_loss = loss_fn(outputs, batch_labels)
        outputs = outputs.float()
        total_loss += batch_loss * batch_labels.shape[0]
        confidence, predicted = outputs.softmax(dim=1).max(dim=1)
        predictions.append(predicted)
        confidences.append(confidence)
    predictions_all = torch.cat(predictions).cpu()
    correct = (predictions_all == labels.cpu()).sum().item()
    return Evaluation(
        loss=total_loss.item() / images.shape[0],
        accuracy=correct / images.shape[0],
        predictions=predictions_all,
        confidences=torch.cat(confidences).cpu(),
    )


def diverged_message(loss: float, step: int, epoch: int, params: CifarParams) -> str:
    also = "" if params.optimizer == "nesterov_onecycle" else " or nesterov_onecycle, whose warm-up starts small"
    return (
        f"The loss became {loss} at step {step} (epoch {epoch}): the updates grew until the weights "
        f"overflowed. Try a smaller learning rate (lr={params.lr / 10:g} instead of {params.lr:g}){also}."
    )


# ----------------------------------------------------------------------------------------------
# Training


def run(params: CifarParams, ctx: RunContext) -> RunOutcome:
    torch.manual_seed(ctx.seed)  # the weights' initialisation
    # Every random draw of the data (which images, batch order, flips, crops) comes from this
    # generator on the CPU, so a seed gives the same run on any device.
    generator = torch.Generator().manual_seed(ctx.seed)
    device = torch.device(ctx.device)

    data = load_cifar10(ctx.data_dir, cache_dir=ctx.cache_dir, allow_download=ctx.allow_download)
    data = select_classes(data, class_names(params.dataset))
    classes = data.classes
    train_images, train_labels = data.train_images, data.train_labels
    if params.limit_train is not None:
        train_index = sample_per_class(train_labels, params.limit_train, generator)
        train_images, train_labels = train_images[train_index], train_labels[train_index]
    # Speed: the whole training set moves to the device once, as uint8 (a quarter of float32's bytes).
    train_images, train_labels = train_images.to(device), train_labels.to(device)
    test_images = data.test_images.to(device)
    test_labels = data.test_labels.to(device)
    n_train = train_images.shape[0]

    model = make_net(
        params.model, len(classes), data.mean, data.std, channels_last=params.uses_channels_last(), width=params.width
    )
    if params.model in WHITENED:
        if params.whiten:
            some = torch.randperm(n_train, generator=generator)[:WHITENING_IMAGES]
            model.whiten.init_from(model.normalize(train_images[some.to(device)].cpu()))
        else:  # the ablation: a plain first layer, random and trained
            model.whiten.weight.requires_grad_(True)
    model = model.to(device)
    # flip="alternate": the random half mirrored in the first epoch; the others follow from it.
    first_flips = torch.rand(n_train, generator=generator) < 0.5 if params.flip == "alternate" else None
    lookahead = Lookahead(model) if params.lookahead else None
    # compile: the training steps and evaluations call the compiled net; `model` stays the module
    # whose weights are saved (a compiled module's state_dict names them "_orig_mod.*").
    forward = torch.compile(model) if params.compile else model
    precision = autocast(params, device)
    tta = params.tta_views()
    steps_per_epoch = batches_per_epoch(n_train, params.batch_size)
    optimizer, schedule = make_optimizer(params, model, params.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)

    status, error = RunStatus.SUCCEEDED, None
    step, epoch, epochs_run, train_seconds, images_seen = 0, 0, 0, 0.0, 0
    last_epoch: dict[str, float] = {}
    evaluation: Evaluation | None = None
    # Where the run is in the data: this epoch's order of the training images and the index of
    # its next batch; None between epochs (the next epoch draws its order from the generator).
    order: torch.Tensor | None = None
    next_batch = 0
    # The epoch's running sums, on the device (no host sync per step for them).
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    started = time.perf_counter()
    stop: RunStatus | None = None  # PAUSED or CANCELLED, from the control point

    def save() -> dict[str, Any]:
        """Everything the next step depends on: weights, optimizer and schedule, both random
        streams, the position in the data, the epoch's sums, and what the result reports."""
        in_epoch = time.perf_counter() - started if order is not None else 0.0
        return {
            "seed": ctx.seed,
            "step": step,
            "epoch": epoch,
            "epochs_run": epochs_run,
            "model": detached(model.state_dict()),
            "optimizer": detached(optimizer.state_dict()),
            "schedule": detached(schedule.state_dict()) if schedule is not None else None,
            "lookahead": detached(lookahead.average) if lookahead is not None else None,
            "torch_rng": torch.get_rng_state(),
            "data_rng": generator.get_state(),  # the next epoch's order, flips and crops
            "order": order,  # never changed in place
            "next_batch": next_batch,
            "loss_sum": detached(loss_sum),
            "correct": detached(correct),
            "seen": seen,
            "train_seconds": train_seconds + in_epoch,
            "images_seen": images_seen,
            "last_epoch": dict(last_epoch),
            "evaluation": None if evaluation is None else {
                "loss": evaluation.loss,
                "accuracy": evaluation.accuracy,
                "predictions": evaluation.predictions,  # on the CPU, never changed
                "confidences": evaluation.confidences,
            },
        }

    if ctx.resume is not None:
        check_resume(with_defaults(ctx.resume), "cifar", params)
        state = detached(ctx.resume.state)  # a copy: the run trains in place, the checkpoint stays as it was
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        if lookahead is not None:
            lookahead.average = {name: tensor.to(device) for name, tensor in state["lookahead"].items()}
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["data_rng"])
        step, epoch, epochs_run = state["step"], state["epoch"], state["epochs_run"]
        order, next_batch = state["order"], state["next_batch"]
        loss_sum, correct, seen = state["loss_sum"].to(device), state["correct"].to(device), state["seen"]
        train_seconds, images_seen = state["train_seconds"], state["images_seen"]
        last_epoch = dict(state["last_epoch"])
        if state["evaluation"] is not None:
            evaluation = Evaluation(**state["evaluation"])
        # Changes made while it was paused take effect here, before the first new step.
        started = time.perf_counter()  # (a save() here counts none of the time spent loading)
        params, stop = ctx.control.boundary(step, epoch, params, save, epoch_end=order is None)
        apply_live(params, optimizer, schedule, loss_fn, steps_per_epoch)  # over the checkpoint's lr

    if params.lr_finder:
        return range_test(params, ctx, forward, optimizer, loss_fn, precision, train_images, train_labels, generator)

    while stop is None and (order is not None or epoch < params.epochs):  # epochs may change live
        if order is None:  # a new epoch
            epoch += 1
            order, next_batch = torch.randperm(n_train, generator=generator), 0
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0
        batches = order_batches(order, params.batch_size)
        model.train()
        started = time.perf_counter()
        while next_batch < len(batches):
            if ctx.should_stop():
                status = RunStatus.CANCELLED
                break
            index = batches[next_batch]  # on the CPU, as the generator's draws
            batch = index.to(device)
            next_batch += 1
            # Speed: index_select copies whole images; plain indexing (images[batch]) is 8x slower.
            imgs, labels = train_images.index_select(0, batch), train_labels.index_select(0, batch)
            if params.augment:
                # Speed: flips and crops of the whole batch in a few tensor ops, on uint8.
                if first_flips is None:
                    imgs = batch_flip_lr(imgs, generator)
                else:
                    imgs = batch_flip_where(imgs, alternating_flips(first_flips, epoch)[index])
                imgs = batch_crop(imgs, CROP_PADDING, generator)

            with precision:
                outputs = forward(imgs)  # the model normalises (cifar_models.Normalize)
                loss = loss_fn(outputs, labels)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            if schedule is not None:
                schedule.step()

            step += 1
            if lookahead is not None:
                total_steps = params.epochs * steps_per_epoch  # epochs may change live
                if step % LOOKAHEAD_EVERY == 0:
                    lookahead.pull(model, Lookahead.decay(step, total_steps))
                if step == total_steps:
                    lookahead.pull(model, 1.0)  # the run ends on the average
            seen += labels.shape[0]
            images_seen += labels.shape[0]
            # The chart wants every step's loss, so one host sync per step (free on a CPU).
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                status, error = RunStatus.DIVERGED, diverged_message(loss_value, step, epoch, params)
                break
            loss_sum += loss.detach() * labels.shape[0]
            correct += (outputs.argmax(dim=1) == labels).sum()
            ctx.emit({"step": step, "epoch": epoch, "train_loss": loss_value, "lr": lr})

            if next_batch < len(batches):  # the epoch's last batch has its control point after the evaluation
                # The control point (base.py): pause here, or go on with changed live parameters.
                changed, stop = ctx.control.boundary(step, epoch, params, save, epoch_end=False)
                if changed is not params:
                    params = apply_live(changed, optimizer, schedule, loss_fn, steps_per_epoch)
                if stop is not None:
                    break
        train_seconds += time.perf_counter() - started
        if status != RunStatus.SUCCEEDED or stop is not None:
            break

        # Training accuracy of the batches as they were trained on (augmented, in train mode):
        # free, where the book's second pass over the training set would cost a third of an epoch.
        train_loss = loss_sum.item() / seen
        train_acc = correct.item() / seen
        current = evaluate(forward, test_images, test_labels, loss_fn, ctx, tta, precision)
        if current is None:
            status = RunStatus.CANCELLED
            break
        evaluation, epochs_run = current, epoch
        last_epoch = {
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": current.loss,
            "val_acc": current.accuracy,
        }
        # With a picture of the classifier this epoch: where its test predictions land, per class;
        # and of its layers: the weights now and the gradients of the epoch's last batch.
        matrix = confusion_matrix(test_labels.cpu(), current.predictions, len(classes))
        ctx.emit(
            {
                "step": step,
                "epoch": epoch,
                **{k: finite_or_none(v) for k, v in last_epoch.items()},
                "confusion_matrix": matrix.tolist(),
                "per_class_acc": per_class_accuracy(matrix, classes),
                "histograms": layer_histograms(model),
            }
        )

        order = None  # the epoch is done
        changed, stop = ctx.control.boundary(step, epoch, params, save, epoch_end=True)
        if changed is not params:
            params = apply_live(changed, optimizer, schedule, loss_fn, steps_per_epoch)
    if stop is not None:
        status = stop

    result: dict[str, Any] = {
        "train_loss": finite_or_none(last_epoch["train_loss"]) if last_epoch else None,
        "train_acc": last_epoch.get("train_acc"),
        "val_loss": finite_or_none(last_epoch["val_loss"]) if last_epoch else None,
        "val_acc": last_epoch.get("val_acc"),
        "epochs_run": epochs_run,
        "steps_run": step,
        "classes": list(classes),
        "train_images": n_train,
        "test_images": test_images.shape[0],
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images_seen / train_seconds, 1) if train_seconds > 0 else None,
        "per_class_acc": None,
        "confusion_matrix": None,
        "confusion_examples": None,
        "samples": None,
    }
    if evaluation is not None:
        # From the last finished epoch's evaluation over the whole test split.
        samples_generator = torch.Generator().manual_seed(ctx.seed)
        result.update(
            summarize(
                classes, test_images, test_labels, evaluation.predictions, evaluation.confidences, samples_generator
            )
        )
    # Weights that overflowed predict nothing useful: a diverged run keeps none.
    state_dict = None
    if status != RunStatus.DIVERGED:
        state_dict = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    return RunOutcome(status=status, result=result, error=error, state_dict=state_dict)


# ----------------------------------------------------------------------------------------------
# Prediction


def _describe(data: bytes) -> str:
    """What the upload is: another image format PIL knows, else its size and first bytes."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as other:  # reads the header only
            return f"a {other.format} image of {len(data)} bytes"
    except Exception:  # noqa: BLE001 - anything unreadable is described by its bytes
        return f"{len(data)} bytes starting with {data[:16]!r}"


def decode_upload(data: bytes) -> torch.Tensor:
    """An uploaded PNG or JPEG of any size → uint8 (1, 3, 32, 32), as the training images are.

    The whole picture is resized to 32x32 (not cropped), the way CIFAR's images were made.
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
                width, height = image.size
                if width * height > MAX_UPLOAD_PIXELS:
                    raise InvalidImage(
                        f"a {width}x{height} {image.format}, over the limit of {MAX_UPLOAD_PIXELS:,} pixels"
                    )
                # JPEG only: decode at 1/2 to 1/8 scale straight away; a 12-megapixel photo costs little.
                image.draft("RGB", (4 * IMAGE_SIZE, 4 * IMAGE_SIZE))
                image = ImageOps.exif_transpose(image)  # phone photos: upright as shown
                rgb = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    except InvalidImage:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidImage(_describe(data)) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"{_describe(data)}, which could not be decoded: {exc}") from exc
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).unsqueeze(0)


def range_test(
    params: CifarParams,
    ctx: RunContext,
    forward: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    precision: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
) -> RunOutcome:
    """The learning-rate range test (app/experiments/lr_finder.py): one training batch (augmented
    as the run would be) per learning rate, the same lr for every parameter group, no schedule."""
    forward.train()
    batches: list[torch.Tensor] = []

    def step(lr: float) -> float:
        if not batches:
            batches.extend(order_batches(torch.randperm(images.shape[0], generator=generator), params.batch_size))
        index = batches.pop(0).to(images.device)
        imgs, targets = images.index_select(0, index), labels.index_select(0, index)
        if params.augment:
            imgs = batch_crop(batch_flip_lr(imgs, generator), CROP_PADDING, generator)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with precision:
            loss = loss_fn(forward(imgs), targets)
        value = loss.item()
        if math.isfinite(value):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return value

    status, finder = run_range_test(step, ctx)
    return RunOutcome(status=status, result={"lr_finder": finder, "steps_run": len(finder["losses"])})


def trained_net(
    params: CifarParams, state_dict: dict[str, torch.Tensor], channels_last: bool | None = None
) -> nn.Module:
    """The run's net with its saved weights, in eval mode (predict, the ONNX export, the view
    inside); ``channels_last`` None: as the run trained."""
    # The normalisation comes from the state_dict's buffers; these placeholders are overwritten.
    model = make_net(
        params.model,
        len(class_names(params.dataset)),
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        channels_last=params.uses_channels_last() if channels_last is None else channels_last,
        width=params.width,
    )
    model.load_state_dict(state_dict)
    return model.eval()


@torch.inference_mode()
def predict(params: CifarParams, state_dict: dict[str, torch.Tensor], image: bytes) -> dict[str, Any]:
    """The class of an uploaded picture and the probability of each class, on the CPU."""
    classes = class_names(params.dataset)
    model = trained_net(params, state_dict)
    outputs = test_time_outputs(model, decode_upload(image), params.tta_views())  # as the run's evaluation
    probabilities = outputs.float().softmax(dim=1)[0].tolist()
    best = max(range(len(classes)), key=probabilities.__getitem__)
    return {
        "label": classes[best],
        "probabilities": {name: p for name, p in zip(classes, probabilities)},
    }
