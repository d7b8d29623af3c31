"""Why the model chose a class: Grad-CAM and a gradient saliency map over the input image.

    fashion-cnn gradcam runs/tutorial --split test --index 0                 # why 'Ankle boot'?
    fashion-cnn gradcam runs/tutorial --split test --index 0 --class Sneaker  # why not 'Sneaker'?

* **Grad-CAM** (Selvaraju et al., 2017): the gradient of the class's score (its logit) with respect to a
  convolution layer's output, averaged over each channel's positions, weights that channel's map; the ReLU of
  the weighted sum, scaled to the input's size, shows where in the picture the evidence for the class lies.
  The last convolution layer is the default: it has the most class-specific features and still a 2-D layout.
* **Saliency** (Simonyan et al., 2014): the absolute gradient of the class's score with respect to each input
  pixel: which pixels would change the score most.

Both are for one image at a time, in eval mode (no dropout), and leave the model's parameters untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FashionCNNError
from .internals import conv_layer_names, get_layer, model_input, unfused


@dataclass
class Attribution:
    """Where the evidence for ``target`` lies in one image.

    Attributes:
        heatmap: (H, W) in 0..1, the input's size (all zeros when nothing supports the class).
        target: the class index explained.
        probabilities: the model's softmax output for the image (classes,).
        layer: the layer the map was taken at (``"input"`` for saliency).
    """

    heatmap: np.ndarray
    target: int
    probabilities: np.ndarray
    layer: str


def _target(target: int | None, probs: torch.Tensor) -> int:
    classes = probs.shape[-1]
    if target is None:
        return int(probs.argmax())
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < classes:
        raise FashionCNNError(f"class {target!r} is out of range: the model has {classes} classes (0 to {classes - 1})")
    return int(target)


def gradcam(model: nn.Module, image, target: int | None = None, layer: str | None = None) -> Attribution:
    """Grad-CAM of one image for class ``target``.

    Args:
        model: any fashion-cnn model with a convolution layer.
        image: uint8 pixels (H, W).
        target: the class to explain; default the predicted one. Another class answers "why not that one?".
        layer: a convolution (or pooling) layer's name; default the last convolution layer.

    Example:
        >>> cam = gradcam(model, images[0])
        >>> cam.heatmap.shape, float(cam.heatmap.max()) in (0.0, 1.0), cam.layer
        ((28, 28), True, 'conv2d_1')
    """
    if np.ndim(image) != 2:
        raise FashionCNNError(f"Grad-CAM explains one image of shape (H, W), got shape {np.shape(image)}")
    convs = conv_layer_names(model)
    if layer is None and not convs:
        raise FashionCNNError("Grad-CAM needs a convolution layer and this model has none; use saliency instead")
    name = convs[-1] if layer is None else layer
    module = get_layer(model, name)
    x = model_input(model, image).requires_grad_(True)  # a graph to the layer even when the weights are frozen
    kept: list[torch.Tensor] = []

    def keep(module, args, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise FashionCNNError(f"layer {name!r} does not output feature maps (N, C, H, W); choose one of: {', '.join(convs)}")
        kept.append(output)

    hook = module.register_forward_hook(keep)
    try:
        with unfused(model), torch.enable_grad():
            logits = model(x).float()
            probs = torch.softmax(logits, 1)[0].detach()
            k = _target(target, probs)
            (grads,) = torch.autograd.grad(logits[0, k], kept[0])
    finally:
        hook.remove()
    acts = kept[0].detach().float()[0]
    weights = grads.float()[0].mean(dim=(1, 2))  # one weight per channel: its gradient averaged over positions
    cam = torch.relu((weights[:, None, None] * acts).sum(0))
    cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return Attribution(_unit(cam.cpu().numpy()), k, probs.cpu().numpy(), name)


def saliency(model: nn.Module, image, target: int | None = None) -> Attribution:
    """The absolute gradient of class ``target``'s score with respect to each pixel of one image.

    Example:
        >>> s = saliency(model, images[0])
        >>> s.heatmap.shape, s.layer
        ((28, 28), 'input')
    """
    if np.ndim(image) != 2:
        raise FashionCNNError(f"a saliency map explains one image of shape (H, W), got shape {np.shape(image)}")
    x = model_input(model, image).requires_grad_(True)
    with unfused(model), torch.enable_grad():
        logits = model(x).float()
        probs = torch.softmax(logits, 1)[0].detach()
        k = _target(target, probs)
        (grad,) = torch.autograd.grad(logits[0, k], x)
    return Attribution(_unit(grad[0].abs().amax(0).cpu().numpy()), k, probs.cpu().numpy(), "input")


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(a.max()) if a.size else 0.0
    return a / top if top > 0 else np.zeros_like(a)
