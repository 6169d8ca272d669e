"""Chapter 7's image classifier (and chapter 8's convnet, the small ResNet, airbench's net) as one script.

The book's loop (``for imgs, labels in train_loader: ... optimizer.step()``) with what the
playground changes for speed, each change marked where it happens: the images are decoded once into
a uint8 tensor (no per-image ``ToTensor``), batches are index tensors from ``torch.randperm`` with a
seeded generator, flips and crops work on whole batches, and the model normalises its input. The
template mirrors ``app/experiments/cifar.py``, ``cifar_data.py`` and ``cifar_models.py`` op for op
(the same random draws in the same order), so on a CPU with the worker's thread count it repeats
the job bit for bit. The speedruns' switches (whiten, flip, lookahead, tta, channels_last, compile,
mixed_precision) appear in the script only when a job turns them on, each where it acts.
"""

from __future__ import annotations

from typing import Any

from app.experiments.params import CifarParams
from app.export.history import RunHistory
from app.export.literals import changes_literal, py

TEMPLATE = '''\
{% include "header" %}


# %%
import datetime
import math
{% if notebook %}
import os
{% else %}
import sys
{% endif %}
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets

torch.manual_seed({{ seed }})  # the weights' initialisation
# Every random draw of the data (which images, the batch order, flips, crops) comes from this
# generator, so the same seed gives the same run on any device.
generator = torch.Generator().manual_seed({{ seed }})
device = torch.device("cpu")

hp = {
    "epochs": {{ hp.epochs }},  # passes over the training images
    "batch_size": {{ hp.batch_size }},  # images per gradient step
    "lr": {{ hp.lr }},  # learning rate{% if onecycle %} (the peak of the one-cycle schedule){% endif %}

    "weight_decay": {{ hp.weight_decay }},  # L2 penalty on the weights
    "augment": {{ hp.augment }},  # random horizontal flips and shifts by up to 2 pixels
    "label_smoothing": {{ hp.label_smoothing }},  # share of each target spread over the other classes
}


# %% [markdown]
# ## The data
#
# CIFAR-10 from `data_path`: torchvision's `cifar-10-batches-py/` (what `datasets.CIFAR10`
# downloads) or an image folder `cifar10/{train,test}/<class>/*.png`. Where the book turns every
# image into a tensor with `transforms.ToTensor()` on every epoch, here the whole set is decoded once
# into uint8 tensors (N, 3, 32, 32); the model normalises them (`Normalize` below).

# %%
{% if notebook %}
data_path = Path(os.environ.get("CIFAR10_DATA", "data"))  # the folder that holds either layout
{% else %}
data_path = Path(sys.argv[1] if len(sys.argv) > 1 else "data")  # the folder that holds either layout
{% endif %}
class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def read_image_folder(folder):
    """Every PNG or JPEG of folder/<class>/, in sorted order, as (uint8 images, labels)."""
    import numpy as np
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(sorted(p.name for p in folder.iterdir() if p.is_dir())):
        for path in sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
            with Image.open(path) as image:
                image = image.convert("RGB")
                if image.size != (32, 32):
                    image = image.resize((32, 32), Image.Resampling.BILINEAR)
                images.append(np.asarray(image))
            labels.append(label)
    # (N, 32, 32, 3) as PIL gives them → (N, 3, 32, 32), the layout convolutions take.
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


def load_split(train):
    """One split of CIFAR-10 as uint8 images (N, 3, 32, 32) and int64 labels."""
    if (data_path / "cifar-10-batches-py").is_dir():
        cifar10 = datasets.CIFAR10(data_path, train=train, download=False)  # checks the files' md5
        images = torch.from_numpy(cifar10.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(cifar10.targets, dtype=torch.int64)
    return read_image_folder(data_path / "cifar10" / ("train" if train else "test"))


def channel_stats(images, chunk=4096):
    """Per-channel mean and std on the 0..1 scale, as transforms.Normalize takes them (float64, in chunks)."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64) / 255
        total += block.sum(dim=(0, 2, 3))
        squares += block.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


train_images, train_labels = load_split(train=True)
test_images, test_labels = load_split(train=False)
mean, std = channel_stats(train_images)  # of all ten classes' training images
{% if cifar2 %}

# The book's cifar2: airplanes and birds, relabelled 0 and 1 (its label_map = {0: 0, 2: 1}).
class_names = ["airplane", "bird"]
label_map = torch.full((10,), -1, dtype=torch.int64)
label_map[torch.tensor([0, 2])] = torch.arange(2)
keep = torch.isin(train_labels, torch.tensor([0, 2]))
train_images, train_labels = train_images[keep], label_map[train_labels[keep]]
keep = torch.isin(test_labels, torch.tensor([0, 2]))
test_images, test_labels = test_images[keep], label_map[test_labels[keep]]
{% endif %}
{% if limit_train %}


def sample_per_class(labels, n, generator):
    """Indices of n images drawn at random, as evenly over the classes as they allow: each class
    shuffled, then the first image of every class, the second, ..., sorted."""
    if n >= labels.numel():
        return torch.arange(labels.numel())
    order = torch.randperm(labels.numel(), generator=generator)
    shuffled = labels[order]
    rank = torch.empty_like(order)  # the rank of each image within its class, in shuffled order
    for label in shuffled.unique():
        members = (shuffled == label).nonzero().squeeze(1)
        rank[members] = torch.arange(members.numel())
    picked = order[torch.sort(rank, stable=True).indices[:n]]
    return picked.sort().values


train_index = sample_per_class(train_labels, {{ limit_train }}, generator)
train_images, train_labels = train_images[train_index], train_labels[train_index]
{% endif %}
n_train = train_images.shape[0]
print(f"{n_train} training images, {test_images.shape[0]} test images, classes {class_names}")


# %% [markdown]
# ## The model
#
{% if model == "fc" %}
# The book's fully connected net: every pixel into 512 tanh units, then one output per class.
{% elif model == "conv" %}
# Chapter 8's `Net`: two convolutions with tanh and max-pooling, then 512 → 32 → one output per class.
{% elif model == "resnet" %}
# A small ResNet (David Page's ResNet-9 at a quarter of its width), whose first layer is a frozen
# 2x2 convolution that whitens the pixel patches (cifar10-airbench), set from the training images.
{% else %}
# cifar10-airbench's net (airbench94): a frozen 2x2 convolution that whitens the pixel patches, set
# from the training images, then three groups of two convolutions with batch norm and GELU.
{% endif %}
# It starts with `Normalize`, so it takes the uint8 images as they are and its state_dict carries
# the normalisation.

# %%
class Normalize(nn.Module):
    """uint8 images (0..255) → floats, per channel (x / 255 - mean) / std: ToTensor() then Normalize(mean, std)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images):
        scale = 1.0 / (255.0 * self.std)
{% if channels_last %}
        x = images * scale - self.mean / self.std  # uint8 * float gives float
        # Speed: convolutions run about 1.3x faster on a CPU with the channels last in memory (NHWC).
        return x.contiguous(memory_format=torch.channels_last)
{% else %}
        return images * scale - self.mean / self.std  # uint8 * float gives float
{% endif %}
{% if model == "fc" %}


class FullyConnected(nn.Module):
    def __init__(self, n_classes, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.model = nn.Sequential(
            nn.Linear(3 * 32 * 32, 512),
            nn.Tanh(),
            nn.Linear(512, n_classes),
        )

    def forward(self, images):
        return self.model(self.normalize(images).flatten(1))  # the book's img.view(img.shape[0], -1)


model = FullyConnected(len(class_names), mean, std)
{% elif model == "conv" %}


class Net(nn.Module):
    def __init__(self, n_classes, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, n_classes)

    def forward(self, images):
        x = self.normalize(images)
        out = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        out = F.max_pool2d(torch.tanh(self.conv2(out)), 2)
        out = out.reshape(-1, 8 * 8 * 8)  # the book's view(); reshape also takes NHWC (channels_last)
        out = torch.tanh(self.fc1(out))
        out = self.fc2(out)
        return out


model = Net(len(class_names), mean, std)
{% elif model == "resnet" %}


def conv_bn(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """x + f(x), with two 3x3 conv/batch-norm/ReLU layers as f."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class Stage(nn.Module):
    """conv → 2x2 max-pool → batch norm → ReLU, then residual blocks."""

    def __init__(self, c_in, c_out, residual):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.blocks = nn.Sequential(*(Residual(c_out) for _ in range(residual)))

    def forward(self, x):
        x = F.relu(self.norm(F.max_pool2d(self.conv(x), 2)), inplace=True)
        return self.blocks(x)


{{ patch_whitening }}


class ResNet(nn.Module):
    def __init__(self, n_classes, mean, std, widths=(32, 64, 128), residual=(1, 0, 1), whiten_keep=8):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.whiten = PatchWhitening(keep=whiten_keep)
        c_in = self.whiten.out_channels
        stages = []
        for width, blocks in zip(widths, residual):
            stages.append(Stage(c_in, width, blocks))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, n_classes, bias=False)
        self.logit_scale = 0.125  # a cooler softmax at the start trains faster

    def forward(self, images):
        x = F.relu(self.whiten(self.normalize(images)))
        x = self.stages(x)
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.logit_scale


model = ResNet(len(class_names), mean, std)
{% else %}


{{ patch_whitening }}


class AffineFreeBatchNorm(nn.BatchNorm2d):
    """Batch norm without a learned scale (the next convolution already chooses one): the weight stays 1."""

    def __init__(self, channels):
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


class IdentityConv(nn.Conv2d):
    """A 3x3 convolution whose first c_in filters start as the identity (they pass their input on)."""

    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[: min(c_in, c_out)])


class ConvGroup(nn.Module):
    """conv → 2x2 max-pool → batch norm → GELU → conv → batch norm → GELU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = IdentityConv(c_in, c_out)
        self.norm1 = AffineFreeBatchNorm(c_out)
        self.conv2 = IdentityConv(c_out, c_out)
        self.norm2 = AffineFreeBatchNorm(c_out)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    def __init__(self, n_classes, mean, std, width=64):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.whiten = PatchWhitening(keep=12)  # all 12 directions of 2x2x3 patches, both signs
        c_in = self.whiten.out_channels
        groups = []
        for c_out in (width, 4 * width, 4 * width):
            groups.append(ConvGroup(c_in, c_out))
            c_in = c_out
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c_in, n_classes, bias=False)
        self.logit_scale = 1 / 9

    def forward(self, images):
        x = F.gelu(self.whiten(self.normalize(images)))
        x = self.groups(x)  # 31 → 15 → 7 → 3 pixels
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) * self.logit_scale


model = AirbenchNet(len(class_names), mean, std, width={{ width }})
{% endif %}
{% if channels_last %}
model = model.to(memory_format=torch.channels_last)  # the weights in NHWC too
{% endif %}
{% if whitened and whiten %}
some = torch.randperm(n_train, generator=generator)[:5000]
model.whiten.init_from(model.normalize(train_images[some]))
{% elif whitened %}
model.whiten.weight.requires_grad_(True)  # not whitened: a plain first layer, random and trained
{% endif %}
model = model.to(device)
{% if flip_alternate %}
# Alternating flips (airbench): a random half of the images is mirrored in the first epoch, and
# every image the other way round from the epoch before after that.
first_flips = torch.rand(n_train, generator=generator) < 0.5
{% endif %}
{% if compile %}
# torch.compile: the steps and evaluations call the compiled net; `model` keeps the weights.
forward = torch.compile(model)
{% else %}
forward = model
{% endif %}
model


# %% [markdown]
# ## The training loop
#
# The book's loop over batches (forward, loss, `zero_grad()`, `backward()`, `step()`), then the
# accuracy on the test images each epoch. The batches are index tensors drawn from `generator`
{% if hp.augment == "True" or augment_changes %}
# (the book's `DataLoader(shuffle=True)`), flipped and shifted as whole batches.
{% else %}
# (the book's `DataLoader(shuffle=True)`).
{% endif %}
{% if changes %}
# `changes` are the live changes the job had: after step k (a batch), these values in `hp`.
{% endif %}

# %%
trainable = [p for p in model.parameters() if p.requires_grad]
{% if optimizer == "sgd" %}
optimizer = torch.optim.SGD(trainable, lr=hp["lr"], weight_decay=hp["weight_decay"])  # the book's optim.SGD
{% elif optimizer == "adam" %}
optimizer = torch.optim.Adam(trainable, lr=hp["lr"], weight_decay=hp["weight_decay"])
{% else %}


def one_cycle(step, total_steps, warmup=0.25, start=0.1, end=0.001):
    """The share of the peak rate at step (0-based): from start up to 1 over the warm-up, then down to end."""
    peak = max(1, round(warmup * total_steps))
    if step < peak:
        return start + (1 - start) * step / peak
    return 1 - (1 - end) * min(1.0, (step - peak) / max(1, total_steps - 1 - peak))


# The fast recipe (DAWNBench's ResNet-9, cifar10-airbench): Nesterov momentum and a one-cycle schedule.
{% if bias_groups %}
# As airbench: the batch norms' biases learn bias_lr_scale times faster, with their weight decay
# divided by as much (SGD decays by lr times weight_decay per step: the same decay for all).
bias_lr_scale = {{ bias_lr_scale }}
norm_biases = {
    id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.bias is not None and m.bias.requires_grad
}
optimizer = torch.optim.SGD(
    [
        {"params": [p for p in trainable if id(p) not in norm_biases]},
        {"params": [p for p in trainable if id(p) in norm_biases], "lr_scale": bias_lr_scale},
    ],
    lr=hp["lr"],
    momentum={{ momentum }},
    nesterov=True,
)
for group in optimizer.param_groups:
    group["lr"] = hp["lr"] * group.get("lr_scale", 1.0)
    group["weight_decay"] = hp["weight_decay"] / group.get("lr_scale", 1.0)
{% else %}
optimizer = torch.optim.SGD(trainable, lr=hp["lr"], momentum={{ momentum }}, nesterov=True, weight_decay=hp["weight_decay"])
{% endif %}
{% endif %}
loss_fn = nn.CrossEntropyLoss(label_smoothing=hp["label_smoothing"])


def order_batches(order, batch_size):
    """One epoch's batches: order cut into pieces; a last batch of one image is left out (batch norm
    cannot normalise it), as the book's DataLoader keeps the rest."""
    return [batch for batch in order.split(batch_size) if batch.numel() > 1 or order.numel() == 1]
{% if onecycle or lookahead %}


steps_per_epoch = len(order_batches(torch.arange(n_train), hp["batch_size"]))
{% endif %}
{% if onecycle %}
schedule = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: one_cycle(step, hp["epochs"] * steps_per_epoch)  # hp["epochs"] may change live
)
{% endif %}
{% if not flip_alternate %}


def batch_flip_lr(images, generator):
    """Mirror a random half of the images left-right (RandomHorizontalFlip for a whole batch)."""
    n = images.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    both = torch.cat([images, images.flip(-1)])
    return both.index_select(0, torch.arange(n) + n * flip)
{% endif %}


def batch_crop(images, padding, generator):
    """Shift each image by up to padding pixels each way, reflecting at the borders
    (RandomCrop(32, padding, padding_mode="reflect") for a whole batch)."""
    n, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode="reflect")
    shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    stride_n, stride_c, stride_y, _ = padded.stride()
    # Every row of the padded batch as its 2 * padding + 1 possible windows (a view, no copy).
    windows = padded.as_strided(
        (n, channels, height + 2 * padding, 2 * padding + 1, width), (stride_n, stride_c, stride_y, 1, 1)
    )
    index_n = torch.arange(n)[:, None, None]
    index_c = torch.arange(channels)[None, :, None]
    rows = torch.arange(height)[None, None, :] + shifts[0][:, None, None]
    return windows[index_n, index_c, rows, shifts[1][:, None, None]]
{% if flip_alternate %}


def batch_flip_where(images, flip):
    """Mirror the images whose entry of the bool tensor flip is True."""
    n = images.shape[0]
    both = torch.cat([images, images.flip(-1)])
    return both.index_select(0, torch.arange(n) + n * flip)
{% endif %}
{% if lookahead %}


class Lookahead:
    """airbench's Lookahead: every 5 steps the average moves towards the weights by 1 - decay and the
    weights are set to it; decay grows from 0 to 0.95**5 with the cube of the progress."""

    def __init__(self, model):
        self.average = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}

    @staticmethod
    def decay(step, total_steps):
        return 0.95**5 * (min(step, total_steps) / total_steps) ** 3

    @torch.no_grad()
    def pull(self, model, decay):
        for name, current in model.state_dict().items():
            if current.is_floating_point():  # the batch-norm statistics too, not their counters
                average = self.average[name]
                average.lerp_(current, 1 - decay)
                current.copy_(average)


lookahead = Lookahead(model)
{% endif %}
{% if tta == "flip" %}


def test_time_outputs(model, images):
    """Test-time augmentation: the mean of the outputs for each image and its mirror image."""
    return (model(images) + model(images.flip(-1))) / 2
{% elif tta == "flip_translate" %}


def flip_mean(model, images):
    return (model(images) + model(images.flip(-1))) / 2


def test_time_outputs(model, images):
    """Test-time augmentation (airbench's six views): half the mean of the outputs for each image
    and its mirror image, half the same mean for the image shifted one pixel down-right and
    up-left (reflected at the edges)."""
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    height, width = images.shape[-2:]
    translated = (flip_mean(model, padded[..., :height, :width]) + flip_mean(model, padded[..., 2:, 2:])) / 2
    return (flip_mean(model, images) + translated) / 2
{% endif %}


@torch.no_grad()
def evaluate(model, images, labels, batch_size=500):
    """Loss and accuracy over all of images."""
    model.eval()
    total_loss = torch.zeros(())
    predictions = []
    for start in range(0, images.shape[0], batch_size):
        batch_labels = labels[start : start + batch_size]
{% if mixed_precision %}
        with torch.autocast(device.type, dtype=torch.bfloat16):
            outputs = {{ "model(" if tta == "none" else "test_time_outputs(model, " }}images[start : start + batch_size])
            batch_loss = loss_fn(outputs, batch_labels)
        outputs = outputs.float()
        total_loss += batch_loss * batch_labels.shape[0]
{% else %}
        outputs = {{ "model(" if tta == "none" else "test_time_outputs(model, " }}images[start : start + batch_size])
        total_loss += loss_fn(outputs, batch_labels) * batch_labels.shape[0]
{% endif %}
        _, predicted = outputs.softmax(dim=1).max(dim=1)
        predictions.append(predicted)
    correct = (torch.cat(predictions) == labels).sum().item()
    return total_loss.item() / images.shape[0], correct / images.shape[0]
{% if changes %}


changes = {{ changes }}


def apply_changes(changed):
    """A live change the job had, in effect from the next step."""
    hp.update(changed)
    loss_fn.label_smoothing = hp["label_smoothing"]
    for group in optimizer.param_groups:
{% if bias_groups %}
        group["weight_decay"] = hp["weight_decay"] / group.get("lr_scale", 1.0)
        # The new lr is the peak of the rest of the cycle, new epochs re-plan it from this step on.
        group["lr"] = hp["lr"] * group.get("lr_scale", 1.0) * one_cycle(schedule.last_epoch, hp["epochs"] * steps_per_epoch)
    schedule.base_lrs = [hp["lr"] * group.get("lr_scale", 1.0) for group in optimizer.param_groups]
{% elif onecycle %}
        group["weight_decay"] = hp["weight_decay"]
        # The new lr is the peak of the rest of the cycle, new epochs re-plan it from this step on.
        group["lr"] = hp["lr"] * one_cycle(schedule.last_epoch, hp["epochs"] * steps_per_epoch)
    schedule.base_lrs = [hp["lr"]] * len(optimizer.param_groups)
{% else %}
        group["weight_decay"] = hp["weight_decay"]
        group["lr"] = hp["lr"]
{% endif %}
{% endif %}


step, epoch, diverged = 0, 0, False
train_loss = train_acc = val_loss = val_acc = None
while epoch < hp["epochs"]:{% if changes %}  # epochs may change with a live change{% endif %}

    epoch += 1
    batches = order_batches(torch.randperm(n_train, generator=generator), hp["batch_size"])
    loss_sum = torch.zeros(())  # the epoch's sums stay tensors: no host sync per step
    correct = torch.zeros((), dtype=torch.int64)
    seen = 0
    model.train()
    for batch_index, batch in enumerate(batches):
        # Speed: index_select copies whole images; plain indexing (images[batch]) is 8x slower.
        imgs, labels = train_images.index_select(0, batch), train_labels.index_select(0, batch)
        if hp["augment"]:
{% if flip_alternate %}
            flips = first_flips if epoch % 2 == 1 else ~first_flips  # every image alternates
            imgs = batch_crop(batch_flip_where(imgs, flips[batch]), 2, generator)
{% else %}
            imgs = batch_crop(batch_flip_lr(imgs, generator), 2, generator)
{% endif %}

{% if mixed_precision %}
        with torch.autocast(device.type, dtype=torch.bfloat16):  # the weights stay float32
            outputs = forward(imgs)
            loss = loss_fn(outputs, labels)
{% else %}
        outputs = forward(imgs)
        loss = loss_fn(outputs, labels)
{% endif %}

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
{% if onecycle %}
        schedule.step()
{% endif %}
        step += 1
{% if lookahead %}
        if step % 5 == 0:
            lookahead.pull(model, Lookahead.decay(step, hp["epochs"] * steps_per_epoch))
        if step == hp["epochs"] * steps_per_epoch:
            lookahead.pull(model, 1.0)  # the run ends on the average
{% endif %}

        if not math.isfinite(loss.item()):  # the playground stops a run whose loss blew up
            print(f"Step {step} (epoch {epoch}): loss {loss.item()}; the weights overflowed, stopping")
            diverged = True
            break
        loss_sum += loss.detach() * labels.shape[0]
        correct += (outputs.argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
{% if changes %}
        if step in changes and batch_index < len(batches) - 1:  # at an epoch's end: after its evaluation
            apply_changes(changes[step])
{% endif %}
    if diverged:
        break

    # The accuracy of the batches as they were trained on: free, where a second pass would cost a third of an epoch.
    train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen
    val_loss, val_acc = evaluate(forward, test_images, test_labels)
    print(
        f"{datetime.datetime.now()} Epoch {epoch}, Training loss {train_loss:.4f}, accuracy {train_acc:.3f}; "
        f"Validation loss {val_loss:.4f}, accuracy {val_acc:.3f}"
    )
{% if changes %}
    if step in changes:
        apply_changes(changes[step])
{% endif %}


# %% [markdown]
# ## The result
#
# The last epoch's training loss and accuracy (over its batches) and the test loss and accuracy,
# at full precision; then the weights, saved as the job's model download is (a run that diverged
# keeps none).

# %%
print(
    f"Final training loss {train_loss!r}, training accuracy {train_acc!r}, "
    f"validation loss {val_loss!r}, validation accuracy {val_acc!r}"
)
if not diverged:
    torch.save(model.state_dict(), "{{ weights_file }}")
'''


PATCH_WHITENING = '''\
class PatchWhitening(nn.Conv2d):
    """A frozen 2x2 convolution whose filters whiten 2x2x3 pixel patches: the eigenvectors of the
    patch covariance of the training images scaled by 1/sqrt(eigenvalue), and their negatives."""

    def __init__(self, kernel_size=2, keep=None):
        self.keep = keep or 3 * kernel_size * kernel_size  # eigenvectors kept, largest variance first
        super().__init__(3, 2 * self.keep, kernel_size=kernel_size, padding=0, bias=False)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def init_from(self, images, eps=5e-4):
        k = self.kernel_size[0]
        patches = images.unfold(2, k, 1).unfold(3, k, 1)  # (N, 3, H', W', k, k)
        patches = patches.transpose(1, 3).reshape(-1, 3 * k * k).double()
        patches = patches - patches.mean(dim=0)
        covariance = patches.T @ patches / patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        eigenvalues, eigenvectors = eigenvalues[-self.keep :], eigenvectors[:, -self.keep :]
        filters = (eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]).float()
        filters = filters.view(-1, 3, k, k)
        self.weight.copy_(torch.cat([filters, -filters]))
'''


def context(history: RunHistory) -> dict[str, Any]:
    params = history.params
    assert isinstance(params, CifarParams)
    changed = {name for change in history.changes for name in change.params}
    return {
        "cifar2": params.dataset == "cifar2",
        "limit_train": params.limit_train,
        "model": params.model,
        "width": params.width or 64,
        "whitened": params.model in ("resnet", "airbench"),
        "whiten": params.whiten,
        "patch_whitening": PATCH_WHITENING.rstrip("\n"),
        "flip_alternate": params.flip == "alternate",
        "lookahead": params.lookahead,
        "tta": params.tta_views(),
        "channels_last": params.uses_channels_last(),
        "compile": params.compile,
        "mixed_precision": params.mixed_precision,
        "optimizer": params.optimizer,
        "onecycle": params.optimizer == "nesterov_onecycle",
        "momentum": py(params.momentum),
        # The biases' own rate is nesterov_onecycle's only (make_optimizer): 1 for sgd and adam.
        "bias_groups": params.optimizer == "nesterov_onecycle" and params.bias_lr_scale != 1,
        "bias_lr_scale": py(params.bias_lr_scale),
        "hp": {
            name: py(getattr(params, name))
            for name in ("epochs", "batch_size", "lr", "weight_decay", "augment", "label_smoothing")
        },
        "augment_changes": "augment" in changed,
        "changes": changes_literal(history.changes),
    }
