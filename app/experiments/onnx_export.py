"""A run's trained model as ONNX (``GET /api/jobs/{id}/model?format=onnx``), for onnxruntime, Netron
and the other tools that do not read a PyTorch ``state_dict``.

The graph computes what the run's predictions compute (``predict`` of each experiment), in the same
units, for a batch of any size:

- linear, mlp: input ``t_u`` (float32, shape [batch]: readings in the data's units; the input scale
  is inside the graph), output ``t_c`` (float32, [batch]).
- cifar: input ``image`` (uint8, [batch, 3, 32, 32], RGB as CIFAR stores it; the normalisation is
  inside the graph), output ``logits`` (float32, [batch, classes]); the class names are in the
  model's metadata (``classes``), and with the run's test-time augmentation (``tta``) the logits
  are the mean over the image and its mirror image, as the run's evaluation takes them.

Made with PyTorch's own exporter (``torch.onnx.export(dynamo=True)``, which uses onnxscript), in a
worker process (the predictor), never in the web process.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any

FORMATS = ("pt", "onnx")  # what GET /api/jobs/{id}/model serves
OPSET = 18
MEDIA_TYPE = "application/onnx"


def export_onnx(kind: str, params: Any, state_dict: dict[str, Any]) -> bytes:
    """The serialized ONNX model of a run of ``kind`` with typed ``params`` and its weights."""
    import torch

    module, example, input_name, output_name, metadata = _graph(kind, params, state_dict)
    module.eval()
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    # The exporter prints its progress on stdout whatever `verbose` says, and onnxscript's optimizer
    # logs each pass at INFO: kept out of the worker's log.
    logging.getLogger("onnxscript").setLevel(logging.WARNING)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    for key, value in {"kind": kind, "params": json.dumps(params.model_dump(mode="json")), **metadata}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pytorch-playground"
    return model.SerializeToString()


def _graph(kind: str, params: Any, state_dict: dict[str, Any]) -> tuple[Any, Any, str, str, dict[str, str]]:
    import torch
    from torch import nn

    if kind == "linear":

        class Line(nn.Module):
            """t_c = w * (input_scale * t_u) + b, the book's model on the run's scaled input."""

            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("w", state_dict["w"].detach().float().reshape(()))
                self.register_buffer("b", state_dict["b"].detach().float().reshape(()))
                self.scale = float(params.input_scale)

            def forward(self, t_u: torch.Tensor) -> torch.Tensor:
                return self.w * (t_u * self.scale) + self.b

        return Line(), torch.tensor([35.7, 55.9]), "t_u", "t_c", {}

    if kind == "mlp":
        from app.experiments.mlp import make_model

        net = make_model(params)
        net.load_state_dict(state_dict)

        class Mlp(nn.Module):
            """The run's network on input_scale * t_u, one reading per row."""

            def __init__(self) -> None:
                super().__init__()
                self.net = net
                self.scale = float(params.input_scale)

            def forward(self, t_u: torch.Tensor) -> torch.Tensor:
                return self.net((t_u * self.scale).unsqueeze(1)).squeeze(1)

        return Mlp(), torch.tensor([35.7, 55.9]), "t_u", "t_c", {}

    if kind == "cifar":
        from app.experiments.cifar import class_names, test_time_outputs, trained_net

        classes = class_names(params.dataset)
        net = trained_net(params, state_dict)
        tta = params.tta_views()

        class Classifier(nn.Module):
            """The run's net, with its test-time augmentation as its evaluation uses it."""

            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, image: torch.Tensor) -> torch.Tensor:
                return test_time_outputs(self.net, image, tta).float()

        example = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
        return Classifier(), example, "image", "logits", {"classes": json.dumps(list(classes))}

    raise ValueError(f"kind={kind!r} has no ONNX export; the kinds are linear, mlp and cifar")
