"""Architectures by name, so a model file can say which one it holds and ``--model`` can pick one."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import FashionCNNError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: make ``build_model(name, **kwargs)`` call the decorated builder.

    Example:
        >>> from torch import nn
        >>> @register_model("tiny-linear")
        ... def tiny(num_classes=10, in_channels=1, image_size=28):
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes))
        >>> build_model("tiny-linear", num_classes=3).arch
        {'name': 'tiny-linear', 'kwargs': {'num_classes': 3}}
    """

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _BUILDERS[name] = builder
        return builder

    return add


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def check_model_name(name: str) -> None:
    """Refuse a name no architecture is registered under, listing those that are."""
    if name not in _BUILDERS:
        raise FashionCNNError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")


def build_model(name: str = "tutorial-cnn", **kwargs) -> nn.Module:
    """Build a registered architecture with fresh (Keras-style) weights.

    The returned module carries ``arch = {"name": ..., "kwargs": ...}`` so it can be saved and rebuilt.

    Example:
        >>> model = build_model("tutorial-cnn")
        >>> sum(p.numel() for p in model.parameters())
        333526
    """
    check_model_name(name)
    try:
        model = _BUILDERS[name](**kwargs)
    except TypeError as e:
        raise FashionCNNError(f"model {name!r} does not take these arguments ({e}); see its docstring") from None
    model.arch = {"name": name, "kwargs": dict(kwargs)}
    return model
