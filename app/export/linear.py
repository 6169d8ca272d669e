"""Chapter 5's linear fit as the book writes it: ``model``, ``loss_fn``, the hand-derived ``grad_fn``
and ``training_loop``, with the job's seed, data, optimizer and live changes.

The template mirrors ``app/experiments/linear.py`` op for op (the same tensors, dtypes and order),
so on a CPU the script's w, b and loss equal the job's bit for bit.
"""

from __future__ import annotations

from typing import Any

from app.export.history import RunHistory
from app.export.literals import changes_literal, float_list, py
from app.experiments.book_data import BOOK_T_C, BOOK_T_U
from app.experiments.params import LinearParams

TEMPLATE = '''\
{% include "header" %}


# %%
import math

import torch
{% if optim %}
import torch.optim as optim
{% endif %}

{% if val %}
torch.manual_seed({{ seed }})  # the run's seed
{% else %}
torch.manual_seed({{ seed }})  # the run's seed (nothing below draws from it: the fit is deterministic)
{% endif %}


# %% [markdown]
# ## The data
#
{% if book_data %}
# The book's thermometer readings: `t_c` in Celsius, `t_u` in an unknown unit.
{% else %}
# The job's own {{ n_points }} points: `t_u` are the inputs (x), `t_c` the targets (y).
{% endif %}
{% if val %}
# {{ n_val }} of them are held out for validation, drawn with the seed.
{% endif %}

# %%
t_c = torch.tensor({{ t_c }})
t_u = torch.tensor({{ t_u }})
{% if val %}

n_samples = t_u.shape[0]
n_val = {{ n_val_expr }}
shuffled_indices = torch.randperm(n_samples, generator=torch.Generator().manual_seed({{ seed }}))
train_indices = shuffled_indices[:-n_val]
val_indices = shuffled_indices[-n_val:]

# The model sees t_un = {{ input_scale }} * t_u{% if input_scale == "0.1" %} (the book's normalisation){% endif %}.
train_t_un = {{ input_scale }} * t_u[train_indices]
train_t_c = t_c[train_indices]
val_t_un = {{ input_scale }} * t_u[val_indices]
val_t_c = t_c[val_indices]
{% else %}
t_un = {{ input_scale }} * t_u  # what the model sees{{ scale_note }}

{% endif %}


# %% [markdown]
# ## The model
#
{% if manual %}
# A line, the mean squared error, and their derivatives written out by hand (the chain rule).
{% else %}
# A line and the mean squared error; autograd computes the gradient.
{% endif %}

# %%
def model(t_u, w, b):
    return w * t_u + b


def loss_fn(t_p, t_c):
    squared_diffs = (t_p - t_c) ** 2
    return squared_diffs.mean()
{% if manual %}


def dloss_fn(t_p, t_c):
    dsq_diffs = 2 * (t_p - t_c) / t_p.size(0)
    return dsq_diffs


def dmodel_dw(t_u, w, b):
    return t_u


def dmodel_db(t_u, w, b):
    return 1.0


def grad_fn(t_u, t_c, t_p, w, b):
    dloss_dtp = dloss_fn(t_p, t_c)
    dloss_dw = dloss_dtp * dmodel_dw(t_u, w, b)
    dloss_db = dloss_dtp * dmodel_db(t_u, w, b)
    return torch.stack([dloss_dw.sum(), dloss_db.sum()])
{% endif %}


# %% [markdown]
# ## The training loop
#
{% if manual %}
# Each epoch: forward, loss, the hand-derived gradient, one step of size `learning_rate`.
{% elif autograd %}
# Each epoch: forward, loss, `backward()`, and the update by hand under `torch.no_grad()`.
{% else %}
# Each epoch: forward, loss, `zero_grad()`, `backward()`, `optimizer.step()`.
{% endif %}
{% if changes %}
# `changes` are the live changes the job had: after epoch k, these values.
{% endif %}

# %%
{% if changes %}
changes = {{ changes }}


{% endif %}
{% set rate = "optimizer" if optim else "learning_rate" %}
{% set x = "train_t_u" if val else "t_u" %}
{% set y = "train_t_c" if val else "t_c" %}
{% set tp = "train_t_p" if val else "t_p" %}
{% set loss = "train_loss" if val else "loss" %}
{% if val %}
def training_loop(n_epochs, {{ rate }}, params, train_t_u, val_t_u, train_t_c, val_t_c):
{% else %}
def training_loop(n_epochs, {{ rate }}, params, t_u, t_c):
{% endif %}
{% if change_epochs %}
    epoch = 0
    while epoch < n_epochs:  # n_epochs changes with a live change
        epoch += 1
{% else %}
    for epoch in range(1, n_epochs + 1):
{% endif %}
{% if autograd %}
        if params.grad is not None:
            params.grad.zero_()

{% endif %}
        w, b = params
        {{ tp }} = model({{ x }}, w, b)
        {{ loss }} = loss_fn({{ tp }}, {{ y }})
{% if val %}
        with torch.no_grad():
            val_t_p = model(val_t_u, w, b)
            val_loss = loss_fn(val_t_p, val_t_c)
{% endif %}
        if not math.isfinite({{ loss }}.item()):  # the playground stops a run whose loss blew up
            print("Epoch %d, Loss %f: the steps overshot; stopping" % (epoch, {{ loss }}.item()))
            break

{% if manual %}
        grad = grad_fn({{ x }}, {{ y }}, {{ tp }}, w, b)
        params = params - learning_rate * grad
{% elif autograd %}
        {{ loss }}.backward()
        with torch.no_grad():
            params -= learning_rate * params.grad
{% else %}
        optimizer.zero_grad()
        {{ loss }}.backward()
        optimizer.step()
{% endif %}

        if epoch <= 3 or epoch % {{ print_every }} == 0:
{% if val %}
            print(f"Epoch {epoch}, Training loss {train_loss.item():.4f}, Validation loss {val_loss.item():.4f}")
{% else %}
            print("Epoch %d, Loss %f" % (epoch, loss.item()))
{% endif %}
{% if changes %}
        if epoch in changes:  # a change made while the job trained: in effect from the next epoch
{% if change_epochs %}
            n_epochs = changes[epoch].get("epochs", n_epochs)
{% endif %}
{% if change_lr %}
{% if optim %}
            for group in optimizer.param_groups:
                group["lr"] = changes[epoch].get("lr", group["lr"])
{% else %}
            learning_rate = changes[epoch].get("lr", learning_rate)
{% endif %}
{% endif %}
{% endif %}
    return params, {{ loss }}.item(){% if val %}, val_loss.item(){% endif %}



{% if book_start %}
params = torch.tensor([1.0, 0.0]{% if not manual %}, requires_grad=True{% endif %})  # the book's start: w = 1, b = 0
{% else %}
params = torch.tensor([{{ init_w }}, {{ init_b }}]{% if not manual %}, requires_grad=True{% endif %})  # the run's start: w = {{ init_w }}, b = {{ init_b }} (the book's is 1.0, 0.0)
{% endif %}
{% if optim %}
optimizer = optim.{{ optim }}([params], lr={{ lr }})
{% endif %}
params, train_loss{% if val %}, val_loss{% endif %} = training_loop(
    n_epochs={{ epochs }},
{% if optim %}
    optimizer=optimizer,
{% else %}
    learning_rate={{ lr }},
{% endif %}
    params=params,
{% if val %}
    train_t_u=train_t_un,
    val_t_u=val_t_un,
    train_t_c=train_t_c,
    val_t_c=val_t_c,
{% else %}
    t_u=t_un,
    t_c=t_c,
{% endif %}
)


# %% [markdown]
# ## The result
#
# The last epoch's loss (computed before its step, as the book prints it) and the final w and b,
# at full precision; then the weights, saved as the job's model download is.

# %%
w, b = params.detach().tolist()
print(f"Final training loss {train_loss!r}, {% if val %}validation loss {val_loss!r}, {% endif %}w {w!r}, b {b!r}")
torch.save({"w": torch.tensor(w), "b": torch.tensor(b)}, "{{ weights_file }}")
'''


SCALE_NOTES = {0.1: ": the book's normalisation", 1.0: ": the raw readings"}


def context(history: RunHistory) -> dict[str, Any]:
    params = history.params
    assert isinstance(params, LinearParams)
    if params.data is None:
        t_u, t_c = BOOK_T_U, BOOK_T_C
    else:
        t_u, t_c = [x for x, _ in params.data], [y for _, y in params.data]
    n = len(t_u)
    n_val = int(params.val_fraction * n)
    fraction = py(params.val_fraction)
    changed = {name for change in history.changes for name in change.params}
    return {
        "book_data": params.data is None,
        "n_points": n,
        "t_u": float_list(t_u, indent=4),
        "t_c": float_list(t_c, indent=4),
        "val": n_val > 0,
        "n_val": n_val,  # at most half the points (val_fraction <= 0.5): always some left to train on
        "n_val_expr": f"int({fraction} * n_samples)",
        "input_scale": py(params.input_scale),
        "scale_note": SCALE_NOTES.get(params.input_scale, ""),
        "manual": params.optimizer == "manual",
        "autograd": params.optimizer == "autograd",
        "optim": {"sgd": "SGD", "adam": "Adam"}.get(params.optimizer),
        "lr": py(params.lr),
        "book_start": (params.init_w, params.init_b) == (1.0, 0.0),
        "init_w": py(params.init_w),
        "init_b": py(params.init_b),
        "epochs": params.epochs,
        "print_every": max(1, params.epochs // 10),
        "changes": changes_literal(history.changes),
        "change_epochs": "epochs" in changed,
        "change_lr": "lr" in changed,
    }
