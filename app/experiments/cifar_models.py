"""The CIFAR nets: the book's fully connected net, its convnet (chapter 8's ``Net``), a small
ResNet, and cifar10-airbench's net (airbench94).

Every net starts with :class:`Normalize`, so it takes the uint8 images as they are stored and its
``state_dict`` carries the normalisation: a saved model predicts without the training data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from app.experiments.cifar_data import IMAGE_SIZE


class Normalize(nn.Module):
    """uint8 images (0..255) → floats, per channel ``(x / 255 - mean) / std``.

    The same numbers as ``transforms.ToTensor()`` then ``transforms.Normalize(mean, std)``, for a
    whole batch at once, folded into one multiply and one add.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.channels_last = False  # set by use_channels_last: the float images leave in NHWC

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / (255.0 * self.std)
        # uint8 * float gives float: no separate .float() pass (and faster than addcmul on a CPU).
        x = images * scale - self.mean / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


# ----------------------------------------------------------------------------------------------
# The book's nets


class BookFC(nn.Module):
    """Chapter 7's fully connected model: ``nn.Sequential(nn.Linear(3072, 512), nn.Tanh(), nn.Linear(512, 2))``."""

    def __init__(self, n_classes: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.model = nn.Sequential(
            nn.Linear(3 * IMAGE_SIZE * IMAGE_SIZE, 512),
            nn.Tanh(),
            nn.Linear(512, n_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(images).flatten(1))  # the book's img.view(img.shape[0], -1)


class Net(nn.Module):
    """Chapter 8's ``Net``: two conv layers with tanh and max-pooling, then 512 → 32 → classes."""

    def __init__(self, n_classes: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalize(images)
        out = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        out = F.max_pool2d(torch.tanh(self.conv2(out)), 2)
        out = out.reshape(-1, 8 * 8 * 8)  # the book's view(); reshape also takes NHWC (channels_last)
        out = torch.tanh(self.fc1(out))
        out = self.fc2(out)
        return out


# ----------------------------------------------------------------------------------------------
# A small ResNet for accuracy per second on a CPU
#
# The shape of David Page's DAWNBench ResNet-9 ("How to train your ResNet") at a quarter of its
# width, with the first layer of cifar10-airbench: a frozen 2x2 convolution that whitens the
# pixel patches (initialised from the training images), which makes the first epochs count more.


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """``x + f(x)`` with two 3x3 conv/batch-norm/ReLU layers as ``f``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Stage(nn.Module):
    """conv → 2x2 max-pool → batch norm → ReLU, then residual blocks.

    Pooling comes before the norm (as in airbench): the norm and ReLU then touch a quarter of the pixels.
    """

    def __init__(self, c_in: int, c_out: int, residual: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)
        self.blocks = nn.Sequential(*(Residual(c_out) for _ in range(residual)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(F.max_pool2d(self.conv(x), 2)), inplace=True)
        return self.blocks(x)


class PatchWhitening(nn.Conv2d):
    """A 2x2 convolution whose filters whiten 2x2x3 pixel patches (cifar10-airbench's first layer).

    Its weights are the eigenvectors of the patch covariance of the training images, scaled by
    1/sqrt(eigenvalue), and their negatives (so the ReLU after it keeps both signs). It is frozen,
    bias included: then backward stops at the next convolution, whose input gradient (the largest
    tensor of the net, 31x31) is never computed. That is a tenth of a step on a CPU.
    """

    def __init__(self, kernel_size: int = 2, keep: int | None = None) -> None:
        self.keep = keep or 3 * kernel_size * kernel_size  # eigenvectors kept, largest variance first
        super().__init__(3, 2 * self.keep, kernel_size=kernel_size, padding=0, bias=False)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def init_from(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """``images``: normalised float images (N, 3, H, W), a few thousand are enough."""
        k = self.kernel_size[0]
        patches = images.unfold(2, k, 1).unfold(3, k, 1)  # (N, 3, H', W', k, k)
        patches = patches.transpose(1, 3).reshape(-1, 3 * k * k).double()  # rows ordered (channel, y, x)
        patches = patches - patches.mean(dim=0)
        covariance = patches.T @ patches / patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        eigenvalues, eigenvectors = eigenvalues[-self.keep :], eigenvectors[:, -self.keep :]
        filters = (eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]).float()  # (keep, 3*k*k)
        filters = filters.view(-1, 3, k, k)
        self.weight.copy_(torch.cat([filters, -filters]))


class ResNet(nn.Module):
    def __init__(
        self,
        n_classes: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        widths: tuple[int, int, int] = (32, 64, 128),
        residual: tuple[int, int, int] = (1, 0, 1),
        # The 8 strongest of the 12 directions of 2x2x3 patches: the 4 weakest are mostly pixel
        # noise (scaled up by 1/sqrt(eigenvalue)); without them the first 3x3 convolution, the
        # costliest layer, gets a third cheaper (an epoch 10-15% faster) at no measurable accuracy.
        whiten_keep: int | None = 8,
    ) -> None:
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
        # ResNet-9's output scaling: a cooler softmax at the start trains faster.
        self.logit_scale = 0.125

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.whiten(self.normalize(images)))
        x = self.stages(x)
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.logit_scale


# ----------------------------------------------------------------------------------------------
# cifar10-airbench's net (airbench94, legacy/airbench94.py): 94% on an A100 in 10 epochs
#
# The whitening layer, then three groups of conv → 2x2 max-pool → batch norm → GELU → conv → batch
# norm → GELU (widths 64, 256, 256), a 3x3 max-pool and a linear head scaled by 1/9. What differs
# from airbench: the whitening layer has no bias (airbench trains one for 3 epochs), so it stays
# frozen and backward stops at the first group's convolution, as in the ResNet above.


class AffineFreeBatchNorm(nn.BatchNorm2d):
    """Batch norm without a learned scale (airbench's BatchNorm): the weight stays 1, the bias trains.

    The scale of a channel is already the next convolution's to choose; a second, redundant one
    only slows the optimiser. eps 1e-12 and momentum 0.4 (airbench's 0.6 in its own convention).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


class IdentityConv(nn.Conv2d):
    """A 3x3 convolution (padding "same", no bias) whose first ``c_in`` filters start as the identity
    (airbench's partial identity initialisation: the group starts by passing its input on)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out, kernel_size=3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[: min(c_in, c_out)])


class ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = IdentityConv(c_in, c_out)
        self.norm1 = AffineFreeBatchNorm(c_out)
        self.conv2 = IdentityConv(c_out, c_out)
        self.norm2 = AffineFreeBatchNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    def __init__(
        self,
        n_classes: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        width: int = 64,  # the first group's channels; the other two have 4x (airbench94: 64, 256, 256)
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.whiten = PatchWhitening(keep=12)  # all 12 directions of 2x2x3 patches, both signs: 24 channels
        widths = (width, 4 * width, 4 * width)
        c_in = self.whiten.out_channels
        groups = []
        for c_out in widths:
            groups.append(ConvGroup(c_in, c_out))
            c_in = c_out
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c_in, n_classes, bias=False)
        self.logit_scale = 1 / 9

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(self.normalize(images)))
        x = self.groups(x)  # 31 → 15 → 7 → 3 pixels
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) * self.logit_scale


MODELS = {"fc": BookFC, "conv": Net, "resnet": ResNet, "airbench": AirbenchNet}
# Nets whose first layer whitens pixel patches (set from the training images before the first step).
WHITENED = ("resnet", "airbench")
# Speed: oneDNN's convolutions and max-pooling run about 1.3x faster on a CPU with the channels
# last in memory (NHWC) than in PyTorch's default NCHW (measured with the resnet); the default of
# the nets built for speed. (The book's nets are left as the book has them.)
CHANNELS_LAST = ("resnet", "airbench")


def use_channels_last(model: nn.Module) -> nn.Module:
    """Weights and the normalised images in NHWC; the same numbers, another layout in memory."""
    model.to(memory_format=torch.channels_last)
    model.normalize.channels_last = True
    return model


def make_net(
    name: str,
    n_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    channels_last: bool | None = None,
    width: int | None = None,
) -> nn.Module:
    """The net ``name``; ``channels_last`` None: the net's own default (:data:`CHANNELS_LAST`);
    ``width``: airbench's first group (None: 64)."""
    model = MODELS[name](n_classes, mean, std, **({"width": width} if name == "airbench" and width else {}))
    if channels_last if channels_last is not None else name in CHANNELS_LAST:
        use_channels_last(model)
    return model
