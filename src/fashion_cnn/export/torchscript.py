"""TorchScript export: a model that runs in C++ (libtorch) or Python without fashion-cnn's code.

    fashion-cnn export runs/NAME --format torchscript      # → runs/NAME/model.torchscript.pt

Same contract as the ONNX export: uint8 pixels (batch, H, W) in, probabilities (batch, classes) out;
the metadata is the extra file ``fashion_cnn.json``. A TorchScript file is a program: unlike
safetensors, load one (``torch.jit.load``) only if you trust whoever made it.
"""

from __future__ import annotations

import io
import json
import os
import warnings

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError
from ..files import atomic_write_bytes
from .graph import export_metadata, exportable

META_FILE = "fashion_cnn.json"
TOLERANCE = 1e-5


def export_torchscript(model: nn.Module, path: str | os.PathLike) -> dict:
    """Trace ``model`` with its preprocessing and softmax, check it, and write it atomically.

    Returns:
        ``{"path", "max_abs_diff"}``: the largest difference from the model's own probabilities.
    """
    wrapped, example = exportable(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(wrapped, example)
    check = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (64, *example.shape[1:]), dtype=np.uint8))
    with torch.no_grad():
        diff = float((traced(check) - wrapped(check)).abs().max())
    if not diff <= TOLERANCE:
        raise FashionCNNError(f"the traced model differs from the original by {diff:.2e}; nothing was written")
    extra = {META_FILE: json.dumps(export_metadata(model), ensure_ascii=False)}
    buffer = io.BytesIO()  # in memory first: torch.jit.save onto a full disk aborts the process (a C++ terminate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, buffer, _extra_files=extra)
    atomic_write_bytes(path, buffer.getvalue())
    return {"path": str(path), "max_abs_diff": diff}
