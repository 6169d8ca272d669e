"""Inside a trained CIFAR net, for one image (``POST /api/jobs/{id}/inside``, issue 14): what each
convolution layer sees, what the first layer looks for, and which pixels decided the answer.

- ``layers``: every ``nn.Conv2d`` in the order the image goes through them, with its output's shape
  and its strongest channels (by mean activation over the map) as small grey pictures, each scaled
  to its own range (``low``, ``high`` say what black and white are).
- ``filters``: the first convolution's kernels as small RGB pictures (each scaled to its own range,
  mid-grey is zero), strongest (largest norm) first.
- ``saliency``: the gradient of the predicted class's score with respect to the input pixels (the
  largest absolute value over the three colours, scaled to 0..255): where a small change of the
  picture changes the score most (Simonyan et al. 2014, "Deep Inside Convolutional Networks").
- ``grad_cam``: Grad-CAM (Selvaraju et al. 2017) on the last convolution: its maps weighted by
  the predicted class's score's gradient averaged over each map, summed, ReLU, upsampled bilinearly
  to 32x32 and scaled to 0..255 (``low``, ``high``: the raw values that black and white stand
  for): the regions whose features speak for the answer. ``png`` is the map; ``overlay`` the
  picture, dimmed where the map is low. ``layer`` and ``layer_shape`` say which convolution. None
  for a net without a convolution (the book's fully connected one), ``grad_cam_reason`` says so.
- ``label`` and ``probabilities``, as ``predict`` gives them (without test-time augmentation: the
  pictures are of one forward pass).

Runs in a worker (the predictor or a Ray task), never in the web process.
"""

from __future__ import annotations

import base64
import io
from typing import Any

TOP_CHANNELS = 8  # activation maps per layer, strongest first
MAX_FILTERS = 32  # first-layer kernels shown
OVERLAY_FLOOR = 0.2  # the overlay's brightness where Grad-CAM is 0: the picture stays recognisable
NO_CONVOLUTION = (
    "this net has no convolution (the book's fully connected model): Grad-CAM weighs a convolution's "
    "maps, and the pixels go straight into a linear layer"
)


def inside(params: Any, state_dict: dict[str, Any], image: bytes) -> dict[str, Any]:
    import torch
    from torch import nn

    from app.experiments.cifar import class_names, decode_upload, trained_net

    classes = class_names(params.dataset)
    net = trained_net(params, state_dict, channels_last=False)

    convolutions = [(name, module) for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]
    outputs: dict[str, torch.Tensor] = {}  # still in the graph: Grad-CAM needs the score's gradient for the last
    hooks = [
        module.register_forward_hook(lambda _m, _in, out, name=name: outputs.__setitem__(name, out))
        for name, module in convolutions
    ]
    pixels = decode_upload(image).float().requires_grad_(True)  # 0..255, as the net's Normalize takes them
    try:
        logits = net(pixels).float()
    finally:
        for hook in hooks:
            hook.remove()
    probabilities = logits.softmax(dim=1)[0]
    best = int(probabilities.argmax())
    last = convolutions[-1][0] if convolutions else None
    wrt = [pixels] + ([outputs[last]] if last else [])
    gradients = torch.autograd.grad(logits[0, best], wrt)
    saliency = gradients[0][0].abs().amax(dim=0)  # (32, 32)
    image_uint8 = pixels.detach()[0].round().clamp(0, 255).to(torch.uint8)

    cam: dict[str, Any] | None = None
    if last:
        maps = outputs[last].detach()[0]
        heat = grad_cam(maps, gradients[1][0], tuple(saliency.shape))
        cam = {
            "layer": last,
            "layer_shape": list(maps.shape),
            "shape": list(heat.shape),
            **_grey(heat),
            "overlay": _overlay(image_uint8, heat),
        }

    layers = []
    for name, _module in convolutions:
        maps = outputs[name].detach()[0]  # (C, H, W)
        strength = maps.mean(dim=(1, 2))
        order = strength.argsort(descending=True)[:TOP_CHANNELS].tolist()
        layers.append(
            {
                "name": name,
                "shape": list(maps.shape),
                "channels": [
                    {"channel": c, "mean": float(strength[c]), **_grey(maps[c])} for c in order
                ],
            }
        )
    filters = []
    if convolutions:
        weights = convolutions[0][1].weight.detach().float()  # (C_out, C_in, k, k)
        norms = weights.flatten(1).norm(dim=1)
        for c in norms.argsort(descending=True)[:MAX_FILTERS].tolist():
            filters.append({"channel": c, "norm": float(norms[c]), "png": _kernel_png(weights[c])})
    return {
        "label": classes[best],
        "probabilities": {name: float(p) for name, p in zip(classes, probabilities.tolist(), strict=True)},
        "image": _png(image_uint8),
        "saliency": {**_grey(saliency), "shape": list(saliency.shape)},
        "grad_cam": cam,
        **({} if cam else {"grad_cam_reason": NO_CONVOLUTION}),
        "layers": layers,
        "filters": filters,
    }


def grad_cam(maps: Any, gradients: Any, size: tuple[int, int]) -> Any:
    """Grad-CAM of one layer: ``maps`` (C, H, W), its activations; ``gradients`` (C, H, W), the
    class score's gradient with respect to them. Each map weighted by its mean gradient (how much
    the score grows with that feature, wherever it is), summed, ReLU (only what speaks for the
    class), upsampled bilinearly to ``size``: a (size) map of raw values, 0 or more."""
    import torch.nn.functional as F

    weights = gradients.float().mean(dim=(1, 2))  # (C,)
    cam = (weights[:, None, None] * maps.float()).sum(dim=0).relu()
    return F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def _overlay(image: Any, heat: Any) -> str:
    """The (3, H, W) uint8 picture, full where ``heat`` is at its highest, dimmed to
    ``OVERLAY_FLOOR`` where at its lowest."""
    import torch

    low, high = float(heat.min()), float(heat.max())
    scaled = (heat - low) / (high - low) if high > low else torch.zeros_like(heat)
    lit = image.float() * (OVERLAY_FLOOR + (1 - OVERLAY_FLOOR) * scaled)
    return _png(lit.round().clamp(0, 255).to(torch.uint8))


def _grey(values: Any) -> dict[str, Any]:
    """A 2-D map as a grey PNG, black at its lowest value and white at its highest."""
    import torch

    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else torch.zeros_like(values)
    grey = (scaled * 255).round().to(torch.uint8)
    return {"low": low, "high": high, "png": _png(grey.unsqueeze(0).expand(3, -1, -1))}


def _kernel_png(kernel: Any) -> str:
    """A (3, k, k) kernel as RGB: mid-grey is zero, the largest absolute weight is black or white.
    A kernel on more than three input channels shows its first three."""
    import torch

    rgb = kernel[:3] if kernel.shape[0] >= 3 else kernel[:1].expand(3, -1, -1)
    peak = float(rgb.abs().max()) or 1.0
    return _png(((rgb / peak + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))


def _png(image: Any) -> str:
    """A uint8 (3, H, W) tensor as ``data:image/png;base64,...``."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).contiguous().cpu().numpy()).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
