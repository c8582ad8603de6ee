"""Name -> builder registries for the networks of :mod:`monai_sre.nets`.

One :class:`ModelRegistry` class, two instances: classifiers (:func:`register_model`, :func:`get_model`) and, in
:mod:`monai_sre.nets.segmentation_registry`, segmentation networks, which have a different builder contract.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

__all__ = ["ModelRegistry", "register_model", "get_model", "list_models", "get_model_builder"]


class ModelRegistry:
    """Builders by name; ``kind`` names the registry's functions in error messages (e.g. ``"model"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., nn.Module]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
        """Decorator that registers a builder under ``name`` (default: the function's name).

        Raises:
            ValueError: empty name, or a name already taken (registration never overwrites silently).
        """

        def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            key = fn.__name__ if name is None else name
            if not isinstance(key, str) or not key:
                raise ValueError(f"register_{self.kind}: name must be a non-empty str, got {key!r}.")
            if key in self._builders:
                raise ValueError(
                    f"register_{self.kind}: a model named {key!r} is already registered ({self._builders[key]!r})."
                )
            self._builders[key] = fn
            return fn

        return wrap

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._builders)

    def builder(self, name: str) -> Callable[..., nn.Module]:
        """The builder registered under ``name``.

        Raises:
            TypeError: ``name`` is not a str.
            ValueError: unknown name; the message lists the registered names.
        """
        if not isinstance(name, str):
            raise TypeError(f"get_{self.kind}: name must be a str, got {type(name).__name__} {name!r}.")
        if name not in self._builders:
            raise ValueError(f"get_{self.kind}: unknown model {name!r}; available: {', '.join(self.names())}.")
        return self._builders[name]


_MODELS = ModelRegistry("model")


def register_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a classifier builder under ``name`` (default: the function's name).

    Raises:
        ValueError: when the name is empty or already taken (registration never overwrites silently).

    Example::

        >>> @register_model("tiny_net")
        ... def tiny_net(in_channels=1, num_classes=2, **kwargs):
        ...     return SREResNet(2, in_channels, num_classes, widths=(8, 8, 8, 8), **kwargs)
    """
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return _MODELS.names()


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: unknown name; the message lists the registered names.
    """
    return _MODELS.builder(name)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` (e.g. ``in_channels``, ``num_classes``, ``widths``) override its preset.

    Example::

        >>> net = get_model("sre_r3d_18", in_channels=1, num_classes=3)
        >>> net(torch.randn(2, 1, 28, 28, 28)).shape
        torch.Size([2, 3])
    """
    return get_model_builder(name)(**kwargs)
