"""What a worker does with a job's saved weights, by ``action``: the predictor process and the Ray
task both call ``run``, so the two executors answer the same.

- ``predict``: the experiment's ``predict`` (outputs, or a cifar image's label and probabilities);
- ``onnx``: the model as ONNX bytes (``app.experiments.onnx_export``);
- ``inside``: a cifar net's activations, first-layer filters and saliency for one image
  (``app.experiments.cifar_inside``);
- ``cells``: a page of one confusion-matrix cell's test images, from the run's test split
  evaluated again (``app.experiments.cifar_cells``).
"""

from __future__ import annotations

from typing import Any

ACTIONS = ("predict", "onnx", "inside", "cells")


def run(kind: str, params: Any, state_dict: dict[str, Any], inputs: Any, action: str) -> Any:
    """``params`` typed (the experiment's params model), ``state_dict`` loaded on the CPU."""
    if action == "onnx":
        from app.experiments.onnx_export import export_onnx

        return export_onnx(kind, params, state_dict)
    if action == "inside":
        from app.experiments.cifar_inside import inside

        return inside(params, state_dict, inputs)
    if action == "cells":
        from app.experiments.cifar_cells import cell_page

        return cell_page(params, state_dict, inputs)
    if action == "predict":
        from app.experiments.registry import get_experiment

        return get_experiment(kind).load().predict(params, state_dict, inputs)
    raise ValueError(f"action={action!r} is not one of {', '.join(ACTIONS)}")
