"""Chapter 6: a small neural network (``nn.Sequential``) fits the same temperature data.

The loop is the book's ``training_loop`` with a validation split; what it adds is a metric point
per epoch, a cancellation check, stopping when the loss blows up, now and then the network's
output over the input range (``curve`` on that epoch's point), so a chart can show it bend to the
data, with histograms of each layer's weights and gradients (``histograms``, see histograms.py), and
a control point after each epoch's step (pause, resume from a checkpoint, live lr and epochs).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn, optim

from app.experiments._data import load_points, sample_pairs, split_indices
from app.experiments.base import Checkpoint, RunContext, RunOutcome, RunStatus, finite_or_none
from app.experiments.checkpoints import check_resume, detached
from app.experiments.histograms import layer_histograms
from app.experiments.lr_finder import run_range_test
from app.experiments.params import MlpParams

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
CURVE_POINTS = 200  # points of the network's curve drawn over the data
# While it trains: the curve at epoch 1, the last epoch and evenly in between, LIVE_CURVES times in
# all, LIVE_CURVE_POINTS points each (a job keeps them: ~50 x 64 pairs is ~60 KB of JSON).
LIVE_CURVES = 50
LIVE_CURVE_POINTS = 64


def network_curve(model: nn.Module, x: torch.Tensor, input_scale: float, device: torch.device) -> list[list[float | None]]:
    """[x, network output] pairs; the network sees input_scale * x."""
    with torch.no_grad():
        y = model((input_scale * x).unsqueeze(1).to(device)).squeeze(1).cpu()
    return [[xi, finite_or_none(yi)] for xi, yi in zip(x.tolist(), y.tolist())]


UNITS_SHOWN = 16  # hidden units pictured in the result: the ones that move the output most
UNIT_POINTS = 120


def hidden_units(model: nn.Sequential, x_min: float, x_max: float, input_scale: float) -> dict:
    """The network's output as a sum of bent lines: each unit of the last hidden layer's contribution
    (its output weight times its activation) over the data's range and as far again on each side,
    beyond the data, where the network extrapolates. output = bias + the sum over all units."""
    span = x_max - x_min or 1.0
    x = torch.linspace(x_min - 0.5 * span, x_max + 0.5 * span, UNIT_POINTS)
    with torch.no_grad():
        last_hidden = model[:-1]  # every layer but output_linear
        hidden = last_hidden((input_scale * x).unsqueeze(1).to(model.output_linear.weight.device))
        contributions = (hidden * model.output_linear.weight[0]).cpu()  # [points, units]
        bias = float(model.output_linear.bias[0])
        output = contributions.sum(dim=1) + bias
    strongest = contributions.abs().amax(dim=0).argsort(descending=True)[:UNITS_SHOWN].tolist()
    return {
        "x": x.tolist(),
        "data_range": [x_min, x_max],
        "output": [finite_or_none(v) for v in output.tolist()],
        "bias": finite_or_none(bias),
        "hidden": contributions.shape[1],
        "units": sorted(strongest),
        "contributions": [[finite_or_none(v) for v in contributions[:, j].tolist()] for j in sorted(strongest)],
    }


def make_model(params: MlpParams) -> nn.Sequential:
    """The book's net for layers=1; each further hidden layer is another Linear(hidden, hidden) and
    activation (hidden_linear_2, hidden_activation_2, ...), made in order, so the seed gives the
    first layers the same initial weights whatever the depth."""
    layers = [
        ("hidden_linear", nn.Linear(1, params.hidden)),
        ("hidden_activation", ACTIVATIONS[params.activation]()),
    ]
    for k in range(2, params.layers + 1):
        layers += [
            (f"hidden_linear_{k}", nn.Linear(params.hidden, params.hidden)),
            (f"hidden_activation_{k}", ACTIVATIONS[params.activation]()),
        ]
    layers.append(("output_linear", nn.Linear(params.hidden, 1)))
    return nn.Sequential(OrderedDict(layers))


def with_defaults(cp: Checkpoint) -> Checkpoint:
    """A checkpoint from before a parameter existed (layers) lacks it; its run used what is now its
    default, so compare with that."""
    try:
        filled = MlpParams.model_validate(cp.params).model_dump(mode="json")
    except ValueError:
        return cp  # check_resume names what differs
    return Checkpoint(cp.kind, cp.step, cp.epoch, cp.epoch_end, filled, cp.state)


def make_optimizer(params: MlpParams, model: nn.Module) -> optim.Optimizer:
    if params.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=params.lr)
    return optim.SGD(model.parameters(), lr=params.lr)


def apply_live(params: MlpParams, optimizer: optim.Optimizer) -> MlpParams:
    """Makes the optimizer use ``params``' learning rate (epochs is read by the loop). Idempotent."""
    for group in optimizer.param_groups:
        group["lr"] = params.lr
    return params


def run(params: MlpParams, ctx: RunContext) -> RunOutcome:
    torch.manual_seed(ctx.seed)  # the network's initial weights come from the seed
    device = torch.device(ctx.device)

    t_u, t_c = load_points(params.data)
    train_idx, val_idx = split_indices(t_u.shape[0], params.val_fraction, ctx.seed)
    has_val = val_idx.numel() > 0
    # The book's shapes: (N, 1) inputs and targets, via unsqueeze(1); the net sees input_scale * t_u.
    t_un = (params.input_scale * t_u).unsqueeze(1)
    t_c_col = t_c.unsqueeze(1)
    train_t_un, train_t_c = t_un[train_idx].to(device), t_c_col[train_idx].to(device)
    val_t_un, val_t_c = t_un[val_idx].to(device), t_c_col[val_idx].to(device)

    model = make_model(params).to(device)
    optimizer = make_optimizer(params, model)
    loss_fn = nn.MSELoss()

    x_min, x_max = float(t_u.min()), float(t_u.max())
    live_x = torch.linspace(x_min, x_max, LIVE_CURVE_POINTS)

    status, error = RunStatus.SUCCEEDED, None
    train_loss_value: float | None = None
    val_loss_value: float | None = None
    epoch = 0  # epochs done; one gradient step each, so also the step
    stop: RunStatus | None = None  # PAUSED or CANCELLED, from the control point

    def save() -> dict:
        """Everything the next epoch depends on (nothing draws random numbers after the
        initialisation; torch's RNG state goes along all the same)."""
        return {
            "seed": ctx.seed,
            "step": epoch,
            "epoch": epoch,
            "model": detached(model.state_dict()),
            "optimizer": detached(optimizer.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "train_loss": train_loss_value,
            "val_loss": val_loss_value,
        }

    if ctx.resume is not None:
        check_resume(with_defaults(ctx.resume), "mlp", params)
        state = detached(ctx.resume.state)  # a copy: the run trains in place, the checkpoint stays as it was
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        epoch, train_loss_value, val_loss_value = state["epoch"], state["train_loss"], state["val_loss"]
        # Changes made while it was paused take effect here, before the first new step.
        params, stop = ctx.control.boundary(epoch, epoch, params, save)
        apply_live(params, optimizer)  # also replaces the lr that load_state_dict brought back

    if params.lr_finder:
        return range_test(ctx, model, optimizer, loss_fn, train_t_un, train_t_c)

    while stop is None and epoch < params.epochs:  # epochs may change live
        if ctx.should_stop():
            status = RunStatus.CANCELLED
            break
        epoch += 1
        train_t_p = model(train_t_un)
        train_loss = loss_fn(train_t_p, train_t_c)
        if has_val:
            with torch.no_grad():
                val_loss = loss_fn(model(val_t_un), val_t_c)

        # One host sync per epoch: the chart wants every epoch's loss.
        train_loss_value = train_loss.item()
        val_loss_value = val_loss.item() if has_val else None
        if not math.isfinite(train_loss_value):
            status = RunStatus.DIVERGED
            error = (
                f"The loss became {train_loss_value} at epoch {epoch}: the steps overshot and the "
                f"weights blew up. Try a smaller learning rate (lr={params.lr / 10:g})"
                + (" or scaling the inputs (input_scale=0.1)." if params.input_scale >= 0.5 else ".")
            )
            break
        point = {
            "step": epoch,
            "epoch": epoch,
            "train_loss": train_loss_value,
            "val_loss": finite_or_none(val_loss_value) if has_val else None,
            "lr": params.lr,
        }
        live_every = max(1, params.epochs // LIVE_CURVES)
        pictured = epoch == 1 or epoch % live_every == 0 or epoch == params.epochs
        if pictured:
            # The output of the weights this epoch's loss was computed with (before the update).
            point["curve"] = network_curve(model, live_x, params.input_scale, device)

        optimizer.zero_grad()
        train_loss.backward()
        if pictured:
            # Those weights again, and this loss's gradients of them, before the step uses them.
            point["histograms"] = layer_histograms(model)
        ctx.emit(point)
        optimizer.step()

        # The control point (base.py): pause here, or go on with changed live parameters.
        changed, stop = ctx.control.boundary(epoch, epoch, params, save)
        if changed is not params:
            params = apply_live(changed, optimizer)
    if stop is not None:
        status = stop

    model.eval()
    result = {
        "train_loss": finite_or_none(train_loss_value) if train_loss_value is not None else None,
        "val_loss": finite_or_none(val_loss_value) if val_loss_value is not None else None,
        "epochs_run": epoch,
        "input_scale": params.input_scale,
        "curve": network_curve(model, torch.linspace(x_min, x_max, CURVE_POINTS), params.input_scale, device),
        "hidden_units": hidden_units(model, x_min, x_max, params.input_scale),
        "train_points": sample_pairs(t_u[train_idx], t_c[train_idx]),
        "val_points": sample_pairs(t_u[val_idx], t_c[val_idx]),
    }
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return RunOutcome(status=status, result=result, error=error, state_dict=state_dict)


def range_test(
    ctx: RunContext,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loss_fn: nn.Module,
    t_un: torch.Tensor,
    t_c: torch.Tensor,
) -> RunOutcome:
    """The learning-rate range test (app/experiments/lr_finder.py) with this run's network and
    optimizer: one step per learning rate, from the seed's initialisation."""

    def step(lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(t_un), t_c)
        value = loss.item()
        if math.isfinite(value):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return value

    status, finder = run_range_test(step, ctx)
    return RunOutcome(status=status, result={"lr_finder": finder, "epochs_run": len(finder["losses"])})


def predict(params: MlpParams, state_dict: dict, inputs: list[float]) -> list[float | None]:
    """Outputs for inputs in data units (like t_u); the network sees input_scale * x."""
    model = make_model(params)
    model.load_state_dict(state_dict)
    model.eval()
    x = torch.tensor(inputs, dtype=torch.float32).unsqueeze(1) * params.input_scale
    with torch.no_grad():
        y = model(x).squeeze(1)
    return [finite_or_none(v) for v in y.tolist()]
