"""A small name -> builder registry for the networks of :mod:`monai_sre.nets`."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

__all__ = ["register_model", "get_model", "list_models", "get_model_builder"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model builder under ``name`` (default: the function's name).

    Raises:
        ValueError: when the name is already taken (registration never overwrites silently).

    Example::

        >>> @register_model("tiny_net")
        ... def tiny_net(in_channels=1, num_classes=2, **kwargs):
        ...     return SREResNet(2, in_channels, num_classes, widths=(8, 8, 8, 8), **kwargs)
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = fn.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise ValueError(f"register_model: name must be a non-empty str, got {key!r}.")
        if key in _MODELS:
            raise ValueError(f"register_model: a model named {key!r} is already registered ({_MODELS[key]!r}).")
        _MODELS[key] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: unknown name; the message lists the registered names.
    """
    if not isinstance(name, str):
        raise TypeError(f"get_model: name must be a str, got {type(name).__name__} {name!r}.")
    if name not in _MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; available: {', '.join(list_models())}.")
    return _MODELS[name]


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` (e.g. ``in_channels``, ``num_classes``, ``widths``) override its preset.

    Example::

        >>> net = get_model("sre_r3d_18", in_channels=1, num_classes=3)
        >>> net(torch.randn(2, 1, 28, 28, 28)).shape
        torch.Size([2, 3])
    """
    return get_model_builder(name)(**kwargs)
