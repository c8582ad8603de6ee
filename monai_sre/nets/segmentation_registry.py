"""A name -> builder registry for segmentation networks (``sre_unet``, ``unet``).

Kept apart from :mod:`monai_sre.nets.registry`, whose models are classifiers with the
``(in_channels, num_classes, widths) -> logits (B, num_classes)`` contract; segmentation builders take
``(spatial_dims, in_channels, out_channels, features)`` and return maps ``(B, out_channels, *spatial)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

__all__ = ["register_segmentation_model", "get_segmentation_model", "list_segmentation_models"]

_SEGMENTATION_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_segmentation_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a segmentation builder under ``name`` (default: the function's name).

    Raises:
        ValueError: empty name, or a name already taken (never overwritten silently).
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = fn.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise ValueError(f"register_segmentation_model: name must be a non-empty str, got {key!r}.")
        if key in _SEGMENTATION_MODELS:
            raise ValueError(f"register_segmentation_model: {key!r} is already registered ({_SEGMENTATION_MODELS[key]!r}).")
        _SEGMENTATION_MODELS[key] = fn
        return fn

    return wrap


def list_segmentation_models() -> list[str]:
    """Sorted names of the registered segmentation networks."""
    return sorted(_SEGMENTATION_MODELS)


def get_segmentation_model(name: str, **kwargs) -> nn.Module:
    """Build the segmentation network registered as ``name`` with ``kwargs``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: unknown name (the message lists the registered ones).

    Example::

        >>> net = get_segmentation_model("sre_unet", spatial_dims=3, in_channels=1, out_channels=3)
    """
    if not isinstance(name, str):
        raise TypeError(f"get_segmentation_model: name must be a str, got {type(name).__name__} {name!r}.")
    if name not in _SEGMENTATION_MODELS:
        raise ValueError(
            f"get_segmentation_model: unknown model {name!r}; available: {', '.join(list_segmentation_models())}."
        )
    return _SEGMENTATION_MODELS[name](**kwargs)
