"""Chapter 5: fit ``t_c = w * t_u + b`` by gradient descent, four ways.

The loop is the book's ``training_loop`` with its ``model``, ``loss_fn`` and ``grad_fn``; what it
adds is a metric point per epoch, a cancellation check, stopping when the loss blows up, and a
control point after each epoch's step (pause, resume from a checkpoint, live lr and epochs).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from app.experiments._data import load_points, sample_pairs, split_indices
from app.experiments.base import Checkpoint, RunContext, RunOutcome, RunStatus, finite_or_none
from app.experiments.checkpoints import check_resume, detached
from app.experiments.lr_finder import run_range_test
from app.experiments.params import LinearParams

# ----------------------------------------------------------------------------------------------
# The book's model, loss and hand-derived gradient


def model(t_u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return w * t_u + b


def loss_fn(t_p: torch.Tensor, t_c: torch.Tensor) -> torch.Tensor:
    squared_diffs = (t_p - t_c) ** 2
    return squared_diffs.mean()


def dloss_fn(t_p: torch.Tensor, t_c: torch.Tensor) -> torch.Tensor:
    return 2 * (t_p - t_c) / t_p.size(0)


def grad_fn(t_u: torch.Tensor, t_c: torch.Tensor, t_p: torch.Tensor) -> torch.Tensor:
    dloss_dtp = dloss_fn(t_p, t_c)
    dloss_dw = dloss_dtp * t_u  # d model / d w = t_u
    dloss_db = dloss_dtp * 1.0  # d model / d b = 1
    return torch.stack([dloss_dw.sum(), dloss_db.sum()])


def learning_rate_bounds(t_un: torch.Tensor) -> tuple[float, float]:
    """For plain gradient descent on this data: the largest stable learning rate and the fastest.

    The loss is quadratic in (w, b), so its Hessian H = 2/N [[sum x^2, sum x], [sum x, N]] is the
    same everywhere, and a step of lr multiplies the error along each eigenvector of H by
    (1 - lr * lambda). That shrinks for every eigenvector when lr < 2 / lambda_max (the stable
    bound) and shrinks fastest overall at lr = 2 / (lambda_max + lambda_min).
    """
    x = t_un.detach().to("cpu", torch.float64)
    n = x.numel()
    hessian = (2.0 / n) * torch.tensor([[float((x * x).sum()), float(x.sum())], [float(x.sum()), float(n)]])
    low, high = torch.linalg.eigvalsh(hessian).tolist()
    return 2.0 / high, 2.0 / (high + low)


def suggested_lr(stable: float, fastest: float) -> float:
    """A round learning rate that converges: the fastest one (safely under the stable bound) with
    one significant digit, rounded down."""
    target = min(fastest, 0.95 * stable)
    exponent = math.floor(math.log10(target))
    return float(f"{math.floor(target / 10**exponent)}e{exponent}")


def diverged_message(loss: float, epoch: int, params: LinearParams, bounds: tuple[float, float] | None) -> str:
    hints = [f"a smaller learning rate (lr={params.lr / 10:g})"]
    if bounds is not None:
        stable, fastest = bounds
        hints = [
            f"a smaller learning rate, under {stable:.2g}, e.g. lr={suggested_lr(stable, fastest):g} (gradient "
            "descent on these points is stable below 2 / the largest eigenvalue of the loss's Hessian)"
        ]
    if params.input_scale >= 0.5:
        hints.append("scaling the inputs (input_scale=0.1, the book's t_un = 0.1 * t_u)")
    return (
        f"The loss became {loss} at epoch {epoch}: each step overshot the minimum by more than the "
        f"last, so w and b blew up. Try {' or '.join(hints)}."
    )


# ----------------------------------------------------------------------------------------------
# Live parameters and the training state (pause, resume: base.py's control point)


def apply_live(params: LinearParams, optimizer: torch.optim.Optimizer | None) -> LinearParams:
    """Makes the optimizer use ``params``' learning rate (manual and autograd read params.lr
    themselves; epochs is read by the loop). Idempotent; returns ``params``."""
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["lr"] = params.lr
    return params


def with_start(cp: Checkpoint) -> Checkpoint:
    """A checkpoint saved before the start was a parameter started where the book does (w=1, b=0):
    its params say so, so that resuming it is not refused for "changing" init_w and init_b."""
    defaults = {name: LinearParams.model_fields[name].default for name in ("init_w", "init_b")}
    return replace(cp, params={**defaults, **cp.params})


def restore(state: dict, coeffs: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> torch.Tensor:
    """Loads a save() into the run's optimizer; returns the coefficients to go on with."""
    with torch.no_grad():
        coeffs.copy_(state["coeffs"])  # in place: an optimizer holds this very tensor
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return coeffs


# ----------------------------------------------------------------------------------------------
# Training


def run(params: LinearParams, ctx: RunContext) -> RunOutcome:
    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)

    t_u, t_c = load_points(params.data)
    train_idx, val_idx = split_indices(t_u.shape[0], params.val_fraction, ctx.seed)
    has_val = val_idx.numel() > 0
    # The book's normalisation: the model sees t_un = input_scale * t_u.
    train_t_un = (params.input_scale * t_u[train_idx]).to(device)
    train_t_c = t_c[train_idx].to(device)
    val_t_un = (params.input_scale * t_u[val_idx]).to(device)
    val_t_c = t_c[val_idx].to(device)

    # Adam's steps do not scale with the gradient, so only plain gradient descent has these bounds.
    bounds = learning_rate_bounds(train_t_un) if params.optimizer != "adam" else None

    coeffs = torch.tensor([params.init_w, params.init_b], device=device)  # the book's start: w=1, b=0
    optimizer = None
    if params.optimizer != "manual":
        coeffs.requires_grad_(True)
    if params.optimizer == "sgd":
        optimizer = torch.optim.SGD([coeffs], lr=params.lr)
    elif params.optimizer == "adam":
        optimizer = torch.optim.Adam([coeffs], lr=params.lr)

    status, error = RunStatus.SUCCEEDED, None
    train_loss_value: float | None = None
    val_loss_value: float | None = None
    epoch = 0  # epochs done; one gradient step each, so also the step
    stop: RunStatus | None = None  # PAUSED or CANCELLED, from the control point

    def save() -> dict:
        """Everything the next epoch depends on. (Nothing here draws random numbers after the split;
        torch's RNG state goes along all the same, as in every kind's checkpoint.)"""
        return {
            "seed": ctx.seed,
            "step": epoch,
            "epoch": epoch,
            "coeffs": coeffs.detach().to("cpu", copy=True),
            "optimizer": detached(optimizer.state_dict()) if optimizer is not None else None,
            "torch_rng": torch.get_rng_state(),
            "train_loss": train_loss_value,
            "val_loss": val_loss_value,
        }

    if ctx.resume is not None:
        check_resume(with_start(ctx.resume), "linear", params)
        state = detached(ctx.resume.state)  # a copy: the run trains in place, the checkpoint stays as it was
        coeffs = restore(state, coeffs, optimizer)
        epoch, train_loss_value, val_loss_value = state["epoch"], state["train_loss"], state["val_loss"]
        # Changes made while it was paused take effect here, before the first new step.
        params, stop = ctx.control.boundary(epoch, epoch, params, save)
        apply_live(params, optimizer)  # also replaces the lr that load_state_dict brought back

    if params.lr_finder:
        return range_test(params, ctx, coeffs, optimizer, train_t_un, train_t_c, bounds)

    while stop is None and epoch < params.epochs:  # epochs may change live
        if ctx.should_stop():
            status = RunStatus.CANCELLED
            break
        epoch += 1
        w, b = coeffs[0], coeffs[1]
        train_t_p = model(train_t_un, w, b)
        train_loss = loss_fn(train_t_p, train_t_c)
        if has_val:
            with torch.no_grad():
                val_loss = loss_fn(model(val_t_un, w, b), val_t_c)

        # One host sync per epoch: the chart wants every epoch's loss and the (w, b) path.
        train_loss_value = train_loss.item()
        val_loss_value = val_loss.item() if has_val else None
        if not math.isfinite(train_loss_value):
            status, error = RunStatus.DIVERGED, diverged_message(train_loss_value, epoch, params, bounds)
            break
        w_value, b_value = coeffs.tolist()
        ctx.emit(
            {
                "step": epoch,
                "epoch": epoch,
                "train_loss": train_loss_value,
                "val_loss": finite_or_none(val_loss_value) if has_val else None,
                "w": w_value,
                "b": b_value,
                "lr": params.lr,
            }
        )

        if params.optimizer == "manual":
            grad = grad_fn(train_t_un, train_t_c, train_t_p)
            coeffs = coeffs - params.lr * grad
        elif params.optimizer == "autograd":
            if coeffs.grad is not None:
                coeffs.grad.zero_()
            train_loss.backward()
            with torch.no_grad():
                coeffs -= params.lr * coeffs.grad
        else:
            optimizer.zero_grad()
            train_loss.backward()
            optimizer.step()

        # The control point (base.py): pause here, or go on with changed live parameters.
        changed, stop = ctx.control.boundary(epoch, epoch, params, save)
        if changed is not params:
            params = apply_live(changed, optimizer)
    if stop is not None:
        status = stop

    w_value, b_value = coeffs.detach().cpu().tolist()
    x_min, x_max = float(t_u.min()), float(t_u.max())
    slope = w_value * params.input_scale  # the fitted line in data units: t_c = slope * t_u + b
    result = {
        "w": finite_or_none(w_value),
        "b": finite_or_none(b_value),
        "train_loss": finite_or_none(train_loss_value) if train_loss_value is not None else None,
        "val_loss": finite_or_none(val_loss_value) if val_loss_value is not None else None,
        "epochs_run": epoch,
        "slope": finite_or_none(slope),
        "intercept": finite_or_none(b_value),
        "input_scale": params.input_scale,
        "line": [
            [x_min, finite_or_none(slope * x_min + b_value)],
            [x_max, finite_or_none(slope * x_max + b_value)],
        ],
        "train_points": sample_pairs(t_u[train_idx], t_c[train_idx]),
        "val_points": sample_pairs(t_u[val_idx], t_c[val_idx]),
        # Plain gradient descent on these points (manual, autograd, sgd): lr under stable_lr
        # converges; suggested_lr is a round value that does (see learning_rate_bounds).
        "stable_lr": bounds[0] if bounds else None,
        "suggested_lr": suggested_lr(*bounds) if bounds else None,
    }
    state_dict = {"w": torch.tensor(w_value), "b": torch.tensor(b_value)}
    return RunOutcome(status=status, result=result, error=error, state_dict=state_dict)


def range_test(
    params: LinearParams,
    ctx: RunContext,
    coeffs: torch.Tensor,
    optimizer: torch.optim.Optimizer | None,
    t_un: torch.Tensor,
    t_c: torch.Tensor,
    bounds: tuple[float, float] | None,
) -> RunOutcome:
    """The learning-rate range test (app/experiments/lr_finder.py) with this run's optimizer: one
    step of the book's loop per learning rate, from the run's start (init_w, init_b)."""

    def step(lr: float) -> float:
        nonlocal coeffs
        t_p = model(t_un, coeffs[0], coeffs[1])
        loss = loss_fn(t_p, t_c)
        value = loss.item()
        if not math.isfinite(value):
            return value
        if params.optimizer == "manual":
            coeffs = coeffs - lr * grad_fn(t_un, t_c, t_p)
        elif params.optimizer == "autograd":
            loss.backward()
            with torch.no_grad():
                coeffs -= lr * coeffs.grad
            coeffs.grad.zero_()
        else:
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return value

    status, finder = run_range_test(step, ctx)
    result = {
        "lr_finder": finder,
        "epochs_run": len(finder["losses"]),
        "input_scale": params.input_scale,
        "stable_lr": bounds[0] if bounds else None,
    }
    return RunOutcome(status=status, result=result)


def predict(params: LinearParams, state_dict: dict, inputs: list[float]) -> list[float | None]:
    """Outputs for inputs in data units (like t_u); the model sees input_scale * x."""
    x = torch.tensor(inputs, dtype=torch.float32) * params.input_scale
    y = model(x, state_dict["w"].float(), state_dict["b"].float())
    return [finite_or_none(v) for v in y.tolist()]
