"""Inside a model: its layers by name, what each outputs for an image, and its convolution filters.

The book's "visualising the CNN" section, in PyTorch terms:

    import fashion_cnn as fc
    model = fc.load_model("runs/tutorial")
    fc.layer_names(model)                      # ['conv2d', 'max_pooling2d', 'conv2d_1', ..., 'dense_1']
    kernel, bias = fc.conv_filters(model, "conv2d")      # (32, 1, 3, 3), (32,): PyTorch's (out, in, h, w)
    fc.weight_stats(kernel)                    # {'mean': ..., 'std': ..., ...}
    maps = fc.layer_outputs(model, images[:1], ["conv2d", "conv2d_1"])   # {'conv2d': (1, 32, 28, 28), ...}

Keras keeps a kernel as (h, w, in, out) and a feature map as (n, h, w, channels); here they are PyTorch's
(out, in, h, w) and (n, channels, h, w): ``kernel[i, 0]`` is Keras' ``kernel[:, :, 0, i]``.
A layer's output is what Keras' ``Model(model.input, layer.output)`` gives: a ``Conv2D`` with ``relu``
includes its activation (the fused conv → pool → ReLU of ``KerasSequential`` is switched off meanwhile).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data.transforms import tensor_of, to_model_input
from ..errors import FashionCNNError
from ..inference.predict import EVAL_BATCH
from ..models.layers import Conv2D, Dense, KerasSequential
from ..models.registry import build_model


def layer_names(model: nn.Module) -> list[str]:
    """The model's layers by name, in order: Keras' names for the tutorial's layers (``conv2d``, ``dense_1``),
    dotted module paths for others. The parts inside a Keras-shaped layer (its ``conv`` and ``act``) are not
    listed: the layer stands for them.

    Example:
        >>> layer_names(model)[:3]
        ['conv2d', 'max_pooling2d', 'conv2d_1']
    """
    names, inside = [], set()
    for name, module in model.named_modules():
        if not name or any(name.startswith(p + ".") for p in inside):
            continue
        names.append(name)
        if isinstance(module, (Conv2D, Dense)):
            inside.add(name)
    return names


def conv_layer_names(model: nn.Module) -> list[str]:
    """The names of the convolution layers, in order (``['conv2d', 'conv2d_1']`` for the tutorial's model)."""
    return [n for n in layer_names(model) if _conv_of(dict(model.named_modules())[n]) is not None]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The layer called ``name``; a wrong name is refused with the names there are (Keras' ``get_layer``)."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or name not in layer_names(model):
        raise FashionCNNError(f"the model has no layer {name!r}; its layers are: {', '.join(layer_names(model))}")
    return modules[name]


def _conv_of(module: nn.Module) -> nn.Conv2d | None:
    if isinstance(module, nn.Conv2d):
        return module
    if isinstance(module, Conv2D):
        return module.conv
    return None


def conv_filters(model: nn.Module, layer: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A convolution layer's kernel (out, in, h, w) and bias (out,), as float32 NumPy copies.

    Args:
        model: any fashion-cnn model.
        layer: a convolution layer's name; default the first.

    Example:
        >>> kernel, bias = conv_filters(model)       # the tutorial's first layer: 32 filters of 3×3 on 1 channel
        >>> kernel.shape, bias.shape
        ((32, 1, 3, 3), (32,))
    """
    convs = conv_layer_names(model)
    if not convs:
        raise FashionCNNError("the model has no convolution layer, so there are no filters to show")
    name = convs[0] if layer is None else layer
    conv = _conv_of(get_layer(model, name))
    if conv is None:
        raise FashionCNNError(f"layer {name!r} is not a convolution; the convolution layers are: {', '.join(convs)}")
    bias = conv.bias.detach().float().cpu().numpy().copy() if conv.bias is not None else None
    return conv.weight.detach().float().cpu().numpy().copy(), bias


def weight_stats(weights) -> dict[str, float]:
    """Mean, standard deviation, smallest and largest value, and count of an array of weights (the book's
    ``conv_weights.mean(), conv_weights.std()``).

    Example:
        >>> weight_stats(np.array([-1.0, 0.0, 1.0]))
        {'mean': 0.0, 'std': 0.816497, 'min': -1.0, 'max': 1.0, 'count': 3}
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0:
        raise FashionCNNError("no weights to describe (an empty array)")
    return {
        "mean": round(float(w.mean()), 6),
        "std": round(float(w.std()), 6),
        "min": round(float(w.min()), 6),
        "max": round(float(w.max()), 6),
        "count": int(w.size),
    }


@contextlib.contextmanager
def unfused(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` computing each layer on its own (no conv → pool → ReLU rewrite), so every layer's output is the
    one Keras shows, in eval mode (no dropout); the previous state comes back after."""
    sequences = [m for m in model.modules() if isinstance(m, KerasSequential)]
    before = [m.fuse for m in sequences]
    was_training = model.training
    for m in sequences:
        m.fuse = False
    model.eval()
    try:
        yield model
    finally:
        for m, fuse in zip(sequences, before):
            m.fuse = fuse
        model.train(was_training)


def model_input(model: nn.Module, images) -> torch.Tensor:
    """uint8 images (N, H, W) or one image (H, W) → the model's float input (N, 1, H, W) on its device."""
    t = tensor_of(images)
    if t.dtype != torch.uint8 or t.ndim not in (2, 3):
        raise FashionCNNError(f"images must be uint8 pixels of shape (H, W) or (N, H, W), got {tuple(t.shape)} {t.dtype}")
    t = t.unsqueeze(0) if t.ndim == 2 else t
    return to_model_input(t, next(model.parameters()).device)


def layer_outputs(
    model: nn.Module, images, layers: str | Sequence[str] | None = None, batch_size: int = EVAL_BATCH
) -> dict[str, np.ndarray]:
    """What named layers output for ``images`` (Keras' ``Model(model.input, [layer.output, ...]).predict``).

    Args:
        model: any fashion-cnn model.
        images: uint8 pixels (N, H, W), or one image (H, W) (then N is 1).
        layers: a layer name or names (see ``layer_names``); default every layer.
        batch_size: images per forward pass (no gradients are kept).

    Returns:
        ``{name: array}`` in the order asked, each float32 (N, ...): (N, channels, H, W) for convolution and
        pooling layers, (N, units) for dense ones.

    Example:
        >>> maps = layer_outputs(model, images[:2], ["conv2d", "max_pooling2d_1"])
        >>> {name: a.shape for name, a in maps.items()}
        {'conv2d': (2, 32, 28, 28), 'max_pooling2d_1': (2, 64, 7, 7)}
    """
    names = layer_names(model) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise FashionCNNError("no layers asked for; name at least one (see fashion_cnn.layer_names(model))")
    modules = {name: get_layer(model, name) for name in names}
    x = model_input(model, images)
    got: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def keep(name):
        return lambda module, args, output: got[name].append(output.detach().float().cpu())

    run_hooked(model, x, [module.register_forward_hook(keep(name)) for name, module in modules.items()], batch_size)
    return {name: torch.cat(parts).numpy() for name, parts in got.items()}


def run_hooked(model: nn.Module, x: torch.Tensor, hooks: list, batch_size: int = EVAL_BATCH) -> None:
    """Run ``x`` through ``model`` in batches, layer by layer (``unfused``) and without gradients, so the
    ``hooks`` just registered on its layers see every batch; the hooks are removed afterwards, whatever happens."""
    try:
        with unfused(model), torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i : i + batch_size])
    finally:
        for h in hooks:
            h.remove()


def untrained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture freshly initialised with ``seed``: what a run seeded so started from (``train``
    seeds torch, then builds the model). Torch's global random state is left as it was.

    Example:
        >>> fresh = untrained_like(model, seed=0)
        >>> fresh.arch == model.arch, torch.equal(fresh.conv2d.conv.weight, model.conv2d.conv.weight)
        (True, False)
    """
    arch = getattr(model, "arch", None)
    if not arch:
        raise FashionCNNError("the model does not name its architecture, so no untrained twin can be built")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch["name"], **arch.get("kwargs", {}))
