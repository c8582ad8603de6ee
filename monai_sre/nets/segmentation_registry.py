"""The name -> builder registry of segmentation networks (``sre_unet``, ``unet``).

Kept apart from the classifier registry of :mod:`monai_sre.nets.registry` (same :class:`ModelRegistry`), whose
models follow the ``(in_channels, num_classes, widths) -> logits (B, num_classes)`` contract; segmentation builders
take ``(spatial_dims, in_channels, out_channels, features)`` and return maps ``(B, out_channels, *spatial)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from .registry import ModelRegistry

__all__ = ["register_segmentation_model", "get_segmentation_model", "list_segmentation_models"]

_SEGMENTATION_MODELS = ModelRegistry("segmentation_model")


def register_segmentation_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a segmentation builder under ``name`` (default: the function's name).

    Raises:
        ValueError: empty name, or a name already taken (never overwritten silently).
    """
    return _SEGMENTATION_MODELS.register(name)


def list_segmentation_models() -> list[str]:
    """Sorted names of the registered segmentation networks."""
    return _SEGMENTATION_MODELS.names()


def get_segmentation_model(name: str, **kwargs) -> nn.Module:
    """Build the segmentation network registered as ``name`` with ``kwargs``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: unknown name (the message lists the registered ones).

    Example::

        >>> net = get_segmentation_model("sre_unet", spatial_dims=3, in_channels=1, out_channels=3)
    """
    return _SEGMENTATION_MODELS.builder(name)(**kwargs)
