"""What ``POST /predict?include=gradcam&include=feature_maps`` adds to an answer: why the model chose its class
(Grad-CAM over the picture it saw) and what its first convolution layer made of the picture.

The pictures are small PNGs drawn here with NumPy and Pillow (matplotlib only lends its colour maps): a
request costs a forward and backward pass of one image and a few milliseconds of encoding, not a figure.
Explanations run on a private copy of the model, one at a time: Grad-CAM hooks a layer and switches the model
to its layer-by-layer mode, which must not touch the copy that other requests are using.
"""

from __future__ import annotations

import base64
import copy
import threading

import numpy as np
from torch import nn

from ..data.images import to_png
from ..errors import FashionCNNError
from ..inspection.attribution import gradcam
from ..inspection.internals import conv_layer_names, layer_outputs

#: What ``include=`` may ask for.
PARTS = ("gradcam", "feature_maps")
#: The overlay's side: the 28×28 picture scaled 4× (pixels kept sharp, the heatmap smooth).
OVERLAY_SCALE = 4
#: Feature maps per row of the grid, and the gap between maps in pixels.
MAP_COLUMNS, MAP_GAP = 8, 2


class Explainer:
    """Grad-CAM and first-layer feature maps for one model, on a private copy of it.

    Args:
        model: a PyTorch fashion-cnn model (the ONNX engine cannot explain: it has no gradients).
    """

    def __init__(self, model: nn.Module):
        convs = conv_layer_names(model)
        if not convs:
            raise FashionCNNError("this model has no convolution layer, so the service cannot explain its answers")
        self.model = copy.deepcopy(model).float().eval()
        for p in self.model.parameters():
            p.requires_grad_(False)  # gradients flow to the layer's output only, never pile up on the weights
        self.first, self.last = convs[0], convs[-1]
        self._lock = threading.Lock()

    def explain(self, image: np.ndarray, target: int, include) -> dict:
        """``{"gradcam": ..., "feature_maps": ...}`` (those asked for) for one preprocessed uint8 picture."""
        out = {}
        with self._lock:
            if "gradcam" in include:
                cam = gradcam(self.model, image, target, self.last)
                out["gradcam"] = {
                    "layer": cam.layer,
                    "index": cam.target,
                    "overlay_png": _b64(to_png(_overlay(image, cam.heatmap))),
                    "heatmap": np.round(cam.heatmap, 3).tolist(),
                }
            if "feature_maps" in include:
                maps = layer_outputs(self.model, image, [self.first])[self.first][0]
                out["feature_maps"] = {
                    "layer": self.first,
                    "count": int(len(maps)),
                    "columns": min(MAP_COLUMNS, len(maps)),
                    "grid_png": _b64(to_png(_map_grid(maps))),
                }
        return out


def _colour(values: np.ndarray, cmap: str) -> np.ndarray:
    """0..1 values → uint8 RGB through a matplotlib colour map."""
    import matplotlib

    return (matplotlib.colormaps[cmap](np.clip(values, 0, 1))[..., :3] * 255).round().astype(np.uint8)


def _overlay(image: np.ndarray, heatmap: np.ndarray, scale: int = OVERLAY_SCALE) -> np.ndarray:
    """The picture (as the model saw it: light on dark) scaled up with sharp pixels, half covered by the heatmap
    (``jet``: blue nothing, red most) scaled up smoothly."""
    from PIL import Image

    side = (image.shape[1] * scale, image.shape[0] * scale)
    base = np.asarray(Image.fromarray(image).resize(side, Image.Resampling.NEAREST), dtype=np.float32)[..., None]
    heat = np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(side, Image.Resampling.BILINEAR))
    return (0.5 * base + 0.5 * _colour(heat, "jet")).round().astype(np.uint8)


def _map_grid(maps: np.ndarray) -> np.ndarray:
    """Feature maps (C, H, W) as one RGB picture: ``MAP_COLUMNS`` a row, each map in its own range (viridis),
    white gaps between."""
    count, h, w = maps.shape
    cols = min(MAP_COLUMNS, count)
    rows = -(-count // cols)
    grid = np.full((rows * h + (rows - 1) * MAP_GAP, cols * w + (cols - 1) * MAP_GAP, 3), 255, np.uint8)
    for k, m in enumerate(maps):
        low, high = float(m.min()), float(m.max())
        tile = _colour((m - low) / (high - low) if high > low else np.zeros_like(m), "viridis")
        r, c = divmod(k, cols)
        grid[r * (h + MAP_GAP) : r * (h + MAP_GAP) + h, c * (w + MAP_GAP) : c * (w + MAP_GAP) + w] = tile
    return grid


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
