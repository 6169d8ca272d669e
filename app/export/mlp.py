"""Chapter 6's small network as the book writes it: ``nn.Sequential`` with named layers, ``nn.MSELoss``
and ``training_loop`` with a validation split, with the job's seed, data, optimizer and live changes.

The template mirrors ``app/experiments/mlp.py`` op for op (the seed right before the layers are made,
the same split, shapes and order), so on a CPU the script's weights equal the job's bit for bit.
"""

from __future__ import annotations

from typing import Any

from app.export.history import RunHistory
from app.export.linear import SCALE_NOTES
from app.export.literals import changes_literal, float_list, py
from app.experiments.book_data import BOOK_T_C, BOOK_T_U
from app.experiments.params import MlpParams

TEMPLATE = '''\
{% include "header" %}


# %%
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.optim as optim

torch.manual_seed({{ seed }})  # the run's seed: the network's initial weights come from it


# %% [markdown]
# ## The data
#
{% if book_data %}
# The book's thermometer readings: `t_c` in Celsius, `t_u` in an unknown unit, as columns of shape
# (N, 1): a batch of N samples of one number each, the shape `nn.Linear` takes.
{% else %}
# The job's own {{ n_points }} points: `t_u` are the inputs (x), `t_c` the targets (y), as columns of
# shape (N, 1): a batch of N samples of one number each, the shape `nn.Linear` takes.
{% endif %}
{% if val %}
# {{ n_val }} of them are held out for validation, drawn with the seed.
{% endif %}

# %%
t_c = torch.tensor({{ t_c }}).unsqueeze(1)
t_u = torch.tensor({{ t_u }}).unsqueeze(1)
{% if val %}

n_samples = t_u.shape[0]
n_val = {{ n_val_expr }}
shuffled_indices = torch.randperm(n_samples, generator=torch.Generator().manual_seed({{ seed }}))
train_indices = shuffled_indices[:-n_val]
val_indices = shuffled_indices[-n_val:]

t_u_train = t_u[train_indices]
t_c_train = t_c[train_indices]
t_u_val = t_u[val_indices]
t_c_val = t_c[val_indices]

# The network sees t_un = {{ input_scale }} * t_u{% if input_scale == "0.1" %} (the book's normalisation){% endif %}.
t_un_train = {{ input_scale }} * t_u_train
t_un_val = {{ input_scale }} * t_u_val
{% else %}
t_un = {{ input_scale }} * t_u  # what the network sees{{ scale_note }}

{% endif %}


# %% [markdown]
# ## The model
#
{% if layers == 1 %}
# One hidden layer of {{ hidden }} units with {{ activation }}, then a linear output: a sum of {{ hidden }} bent lines.
{% else %}
# {{ layers }} hidden layers of {{ hidden }} units, each followed by {{ activation }}, then a linear output.
{% endif %}

# %%
seq_model = nn.Sequential(OrderedDict([
    ("hidden_linear", nn.Linear(1, {{ hidden }})),
    ("hidden_activation", nn.{{ activation }}()),
{% for k in range(2, layers + 1) %}
    ("hidden_linear_{{ k }}", nn.Linear({{ hidden }}, {{ hidden }})),
    ("hidden_activation_{{ k }}", nn.{{ activation }}()),
{% endfor %}
    ("output_linear", nn.Linear({{ hidden }}, 1)),
]))
optimizer = optim.{{ optim }}(seq_model.parameters(), lr={{ lr }})
seq_model


# %% [markdown]
# ## The training loop
#
# Each epoch: forward, loss, `zero_grad()`, `backward()`, `optimizer.step()`{% if val %}; the validation
# loss from the same weights, without a graph{% endif %}.
{% if changes %}
# `changes` are the live changes the job had: after epoch k, these values.
{% endif %}

# %%
{% if changes %}
changes = {{ changes }}


{% endif %}
{% if val %}
def training_loop(n_epochs, optimizer, model, loss_fn, t_u_train, t_u_val, t_c_train, t_c_val):
{% else %}
def training_loop(n_epochs, optimizer, model, loss_fn, t_u_train, t_c_train):
{% endif %}
{% if change_epochs %}
    epoch = 0
    while epoch < n_epochs:  # n_epochs changes with a live change
        epoch += 1
{% else %}
    for epoch in range(1, n_epochs + 1):
{% endif %}
        t_p_train = model(t_u_train)
        loss_train = loss_fn(t_p_train, t_c_train)
{% if val %}
        with torch.no_grad():
            t_p_val = model(t_u_val)
            loss_val = loss_fn(t_p_val, t_c_val)
{% endif %}
        if not math.isfinite(loss_train.item()):  # the playground stops a run whose loss blew up
            print(f"Epoch {epoch}, Training loss {loss_train.item()}: the weights blew up; stopping")
            break

        optimizer.zero_grad()
        loss_train.backward()
        optimizer.step()

        if epoch == 1 or epoch % {{ print_every }} == 0:
{% if val %}
            print(f"Epoch {epoch}, Training loss {loss_train.item():.4f}, Validation loss {loss_val.item():.4f}")
{% else %}
            print(f"Epoch {epoch}, Training loss {loss_train.item():.4f}")
{% endif %}
{% if changes %}
        if epoch in changes:  # a change made while the job trained: in effect from the next epoch
{% if change_epochs %}
            n_epochs = changes[epoch].get("epochs", n_epochs)
{% endif %}
{% if change_lr %}
            for group in optimizer.param_groups:
                group["lr"] = changes[epoch].get("lr", group["lr"])
{% endif %}
{% endif %}
    return loss_train.item(){% if val %}, loss_val.item(){% endif %}



loss_train{% if val %}, loss_val{% endif %} = training_loop(
    n_epochs={{ epochs }},
    optimizer=optimizer,
    model=seq_model,
    loss_fn=nn.MSELoss(),
{% if val %}
    t_u_train=t_un_train,
    t_u_val=t_un_val,
    t_c_train=t_c_train,
    t_c_val=t_c_val,
{% else %}
    t_u_train=t_un,
    t_c_train=t_c,
{% endif %}
)


# %% [markdown]
# ## The result
#
# The last epoch's losses (computed before its step, as the book prints them) at full precision;
# then the weights, saved as the job's model download is.

# %%
print(f"Final training loss {loss_train!r}, validation loss {% if val %}{loss_val!r}{% else %}None{% endif %}")
torch.save(seq_model.state_dict(), "{{ weights_file }}")
'''

ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}


def context(history: RunHistory) -> dict[str, Any]:
    params = history.params
    assert isinstance(params, MlpParams)
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
        "hidden": params.hidden,
        "layers": params.layers,
        "activation": ACTIVATIONS[params.activation],
        "optim": {"sgd": "SGD", "adam": "Adam"}[params.optimizer],
        "lr": py(params.lr),
        "epochs": params.epochs,
        "print_every": max(1, params.epochs // 5),
        "changes": changes_literal(history.changes),
        "change_epochs": "epochs" in changed,
        "change_lr": "lr" in changed,
    }
