"""What every export contains: the model plus its preprocessing and softmax, and the metadata to ship."""

from __future__ import annotations

import copy
import json

import torch
from torch import nn

from ..data.transforms import to_model_input
from ..errors import FashionCNNError
from ..inference.onnx import INPUT, OUTPUT, SCORE
from ..inference.ood import distance, forward_with_features, has_detector, prototypes_of
from ..models.files import unwrap
from ..models.metadata import describe_input, input_side, temperature_of
from ..version import __version__


class PixelsToProbabilities(nn.Module):
    """uint8 pixels (N, H, W) → class probabilities (N, classes): exactly ``predict_proba``'s arithmetic."""

    def __init__(self, model: nn.Module, scores: bool = False):
        super().__init__()
        self.model = copy.deepcopy(unwrap(model))  # exporting must not move or re-layout the caller's model
        self.temperature = temperature_of(getattr(unwrap(model), "meta", None))  # a calibrated model's, in the graph
        # With ``scores`` (ONNX, for a model with a not-clothing detector): a second output, ``inference.ood``'s score.
        self.register_buffer("prototypes", prototypes_of(model).clone() if scores else None)

    def forward(self, pixels: torch.Tensor):
        x = to_model_input(pixels)
        if self.prototypes is None:
            logits = self.model(x)
        else:
            logits, feats = forward_with_features(self.model, x)
        probs = torch.softmax(logits if self.temperature == 1.0 else logits / self.temperature, dim=1)
        return probs if self.prototypes is None else (probs, distance(feats, self.prototypes))


def exportable(model: nn.Module, batch: int | None = None, *, scores: bool = False) -> tuple[PixelsToProbabilities, torch.Tensor]:
    """The wrapped model in eval mode on the CPU, and an example batch of the input size it expects.

    ``batch``: the example's batch size, for a static-batch export (default 2, which a dynamic axis needs).
    ``scores``: also output the not-clothing score (the model must have a detector: ``inference.ood.has_detector``).
    """
    side = input_side({**getattr(model, "meta", {}), "arch": getattr(model, "arch", {})})
    wrapped = PixelsToProbabilities(model, scores).to("cpu", memory_format=torch.contiguous_format).eval()
    return wrapped, torch.zeros((2 if batch is None else batch, side, side), dtype=torch.uint8)


def check_batch(batch: int | None) -> int | None:
    """``None`` (a dynamic batch axis) or a static batch size of at least 1."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise FashionCNNError(f"a static batch must be at least 1 image, got {batch!r}; leave it out for a dynamic batch axis")
    return batch


def export_metadata(model: nn.Module, batch: int | None = None) -> dict[str, str]:
    """String metadata for the exported file: the full fashion-cnn header plus readable keys.

    ``batch``: the static batch size of the graph's input, or ``None`` for a dynamic batch axis.
    """
    meta = {**getattr(model, "meta", {}), "arch": getattr(model, "arch", {})}
    meta["input"] = describe_input(meta)
    meta["versions"] = {**meta.get("versions", {}), "exported_by": f"fashion-cnn {__version__}, torch {torch.__version__}"}
    rows = "batch" if batch is None else str(batch)
    static = "" if batch is None else f"; static batch: exactly {batch} images a run (pad the last run, drop its padded rows)"
    return {
        "fashion_cnn": json.dumps(meta, ensure_ascii=False),
        "classes": json.dumps(meta.get("classes", []), ensure_ascii=False),
        "classes_ko": json.dumps(meta.get("classes_ko", []), ensure_ascii=False),
        "input": f"{INPUT}: uint8 [{rows}, height, width], 0..255, light object on a dark background (Fashion-MNIST){static}",
        "batch": "dynamic" if batch is None else str(batch),
        "normalisation": "x / 255, applied inside the graph",
        "output": f"{OUTPUT}: float32 [{rows}, classes], softmax probabilities summing to 1"
        + (
            f"; {SCORE}: float32 [{rows}], the not-clothing score (over ood.threshold in fashion_cnn: not clothing)"
            if has_detector(model)
            else ""
        ),
    }
