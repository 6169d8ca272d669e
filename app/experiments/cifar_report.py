"""What a CIFAR run reports besides its curves: the confusion matrix, and test images as PNG data URIs."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch

N_SAMPLES = 16  # test images shown with their predicted labels
N_CELL_EXAMPLES = 3  # test images kept for each cell of the confusion matrix


def png_data_uri(image: torch.Tensor) -> str:
    """A uint8 (3, H, W) image as ``data:image/png;base64,...`` for an <img> tag."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts, rows the true classes, columns the predicted ones."""
    cells = labels * n_classes + predictions
    return torch.bincount(cells, minlength=n_classes * n_classes).view(n_classes, n_classes)


def per_class_accuracy(matrix: torch.Tensor, classes: tuple[str, ...]) -> dict[str, float]:
    """{class: share of its test images predicted right}, from a confusion matrix."""
    per_class = matrix.diagonal().double() / matrix.sum(dim=1).clamp_min(1).double()
    return dict(zip(classes, per_class.tolist()))


def confusion_examples(
    images: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor, n_classes: int
) -> list[list[list[str]]]:
    """For each [true][predicted] cell, the first few test images that landed there (PNG data URIs)."""
    cells = labels * n_classes + predictions
    order = torch.argsort(cells, stable=True)
    counts = torch.bincount(cells, minlength=n_classes * n_classes).tolist()
    examples: list[list[list[str]]] = [[[] for _ in range(n_classes)] for _ in range(n_classes)]
    start = 0
    for cell, count in enumerate(counts):
        for index in order[start : start + min(count, N_CELL_EXAMPLES)].tolist():
            examples[cell // n_classes][cell % n_classes].append(png_data_uri(images[index]))
        start += count
    return examples


def summarize(
    classes: tuple[str, ...],
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    predictions: torch.Tensor,
    confidences: torch.Tensor,
    generator: torch.Generator,
) -> dict[str, Any]:
    """per_class_acc, confusion_matrix, confusion_examples and samples, from one evaluation's
    predictions (and their softmax confidences) over the whole test split."""
    n_classes = len(classes)
    labels = test_labels.cpu()
    matrix = confusion_matrix(labels, predictions, n_classes)
    picked = torch.randperm(labels.shape[0], generator=generator)[:N_SAMPLES].tolist()
    return {
        "per_class_acc": per_class_accuracy(matrix, classes),
        "confusion_matrix": matrix.tolist(),
        "confusion_examples": confusion_examples(test_images, labels, predictions, n_classes),
        "samples": [
            {
                "image": png_data_uri(test_images[i]),
                "true": classes[labels[i]],
                "pred": classes[predictions[i]],
                "confidence": round(float(confidences[i]), 4),
            }
            for i in picked
        ],
    }
