"""The three CIFAR nets: the book's fully connected net, its convnet (chapter 8's ``Net``), a small ResNet.

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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / (255.0 * self.std)
        # uint8 * float gives float: no separate .float() pass (and faster than addcmul on a CPU).
        return images * scale - self.mean / self.std


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
        out = out.view(-1, 8 * 8 * 8)
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
        # Speed: oneDNN's convolutions and max-pooling run about 1.3x faster on a CPU with the
        # channels last in memory (NHWC) than in PyTorch's default NCHW.
        self.to(memory_format=torch.channels_last)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalize(images).contiguous(memory_format=torch.channels_last)
        x = F.relu(self.whiten(x))
        x = self.stages(x)
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.logit_scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.logits(images)
        # Test-time augmentation (airbench): in eval mode the net looks at each image as it is and
        # mirrored, and averages; trained on flips, it gains most of a percent for a second pass.
        return (self.logits(images) + self.logits(images.flip(-1))) / 2


MODELS = {"fc": BookFC, "conv": Net, "resnet": ResNet}


def make_net(name: str, n_classes: int, mean: tuple[float, ...], std: tuple[float, ...]) -> nn.Module:
    return MODELS[name](n_classes, mean, std)
