"""``model.summary()``: the Keras-style table of layers, output shapes and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    input_shape: tuple
    output_shape: tuple
    params: int
    trainable: int


def keras_shape(shape: torch.Size) -> tuple:
    """(N, C, H, W) → Keras' (None, H, W, C); other ranks keep their order, batch shown as None."""
    dims = list(shape[1:])
    if len(dims) == 3:
        dims = dims[1:] + dims[:1]
    return (None, *dims)


def layer_table(model: nn.Module, input_shape: tuple[int, int, int] | None = None) -> list[LayerInfo]:
    """Run one dummy image through ``model`` and record each top-level layer's shapes and parameters.

    Args:
        model: a model whose direct children are its layers (as every registered architecture is).
        input_shape: (C, H, W); default from the model's ``arch`` kwargs, else (1, 28, 28).
    """
    shapes: dict[str, tuple] = {}
    hooks = [
        child.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, (keras_shape(i[0].shape), keras_shape(o.shape))))
        for name, child in model.named_children()
    ]
    _dummy_forward(model, hooks, input_shape)
    rows = []
    for name, child in model.named_children():
        params = list(child.parameters())
        rows.append(
            LayerInfo(
                name=name,
                type=type(child).__name__,
                input_shape=shapes[name][0],
                output_shape=shapes[name][1],
                params=sum(p.numel() for p in params),
                trainable=sum(p.numel() for p in params if p.requires_grad),
            )
        )
    return rows


def mflops(model: nn.Module, input_shape: tuple[int, int, int] | None = None) -> float:
    """Millions of floating-point operations of one image's forward pass (a multiply-add counts 2) in the
    convolutions and dense layers, counted from their output shapes on a dummy image (what
    ``torch.utils.flop_counter`` counts, without the second it takes to import). Training costs about 3× this.

    Example:
        >>> from fashion_cnn import build_model
        >>> round(mflops(build_model("tutorial-cnn")), 1)
        8.3
    """
    flops = 0

    def count(module, args, output):
        nonlocal flops
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            flops += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
        else:  # nn.Linear
            flops += 2 * output.numel() * module.in_features

    _dummy_forward(model, [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))], input_shape)
    return flops / 1e6


def _dummy_forward(model: nn.Module, hooks: list, input_shape: tuple[int, int, int] | None = None) -> None:
    """One zero image through ``model`` in eval mode, without gradients, for the ``hooks`` just registered on it;
    the hooks are removed and the model's mode restored afterwards. ``input_shape`` (C, H, W) defaults to the
    model's ``arch`` kwargs, else (1, 28, 28)."""
    if input_shape is None:
        kw = getattr(model, "arch", {}).get("kwargs", {})
        side = kw.get("image_size", 28)
        input_shape = (kw.get("in_channels", 1), side, side)
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def summary(model: nn.Module, input_shape: tuple[int, int, int] | None = None, *, print_fn=None) -> str:
    """Print (and return) the Keras-style summary of ``model``.

    Shapes are shown channels-last, (None, 28, 28, 32), as the tutorial's Keras prints them.

    Example:
        >>> from fashion_cnn import build_model
        >>> text = summary(build_model("tutorial-cnn"), print_fn=lambda s: None)
        >>> "Total params: 333,526" in text
        True
    """
    rows = layer_table(model, input_shape)
    total = sum(r.params for r in rows)
    trainable = sum(r.trainable for r in rows)
    name = getattr(model, "arch", {}).get("name", type(model).__name__)
    table = [("Layer (type)", "Output Shape", "Param #")] + [(f"{r.name} ({r.type})", str(r.output_shape), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) + 3 for i in range(3)]
    rule = "─" * sum(widths)

    def fmt(row):
        return "".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    lines = [f'Model: "{name}"', rule, fmt(table[0]), rule.replace("─", "━")]
    for row in table[1:]:
        lines += [fmt(row), rule]
    lines[-1] = rule.replace("─", "━")
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"MFLOPs per image (forward): {mflops(model, input_shape):,.1f}",
    ]
    text = "\n".join(lines)
    (print_fn or print)(text)
    return text
