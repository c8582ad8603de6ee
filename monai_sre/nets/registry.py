"""Name -> builder registries for the networks of :mod:`monai_sre.nets`.

One :class:`ModelRegistry` class, two instances: classifiers (:func:`register_model`, :func:`get_model`) and, in
:mod:`monai_sre.nets.segmentation_registry`, segmentation networks, which have a different builder contract.

Names that MONAI's own components also have (``resnet18``, ``unet``) are renamed (:data:`RENAMED`): MONAI's bundle
``ComponentLocator`` searches every module whose name starts with ``monai``, ``monai_sre`` included, and would find
both. The old names still build the same networks, with a ``FutureWarning`` naming the new one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch.nn as nn

__all__ = [
    "RENAMED",
    "ModelRegistry",
    "canonical_name",
    "register_model",
    "get_model",
    "list_models",
    "get_model_builder",
]

#: registered names of earlier versions -> their names now (the old ones are also MONAI component names)
RENAMED = {"resnet18": "plain_resnet18", "unet": "plain_unet"}


def canonical_name(name: str) -> str:
    """Today's name of a network name: the new name of a renamed one (with a ``FutureWarning``), else ``name``.

    Run records of earlier versions name the networks by their old names; reading them through this function makes
    them compare equal to records that use the new names.

    Example:
        >>> canonical_name("resnet18")  # doctest: +SKIP
        'plain_resnet18'
    """
    if isinstance(name, str) and name in RENAMED:
        warnings.warn(
            f"network name {name!r} is deprecated (MONAI has a component of that name) and will be removed; "
            f"use {RENAMED[name]!r}.", FutureWarning, stacklevel=2,
        )
        return RENAMED[name]
    return name


class _RenamedBuilder:
    """A builder under its old, renamed Python name: builds the same network after a ``FutureWarning``.

    Not a function, so MONAI's ``ComponentLocator`` (which lists classes and functions) does not offer it as a
    component of that name.
    """

    def __init__(self, fn: Callable[..., nn.Module], old: str, new: str) -> None:
        functools.update_wrapper(self, fn)
        self._fn, self._old, self._new = fn, old, new

    def __call__(self, *args, **kwargs) -> nn.Module:
        warnings.warn(
            f"{self._old}() is deprecated (MONAI has a component of that name) and will be removed; build the "
            f"network by its registered name {self._new!r} (get_model / get_segmentation_model).",
            FutureWarning, stacklevel=2,
        )
        return self._fn(*args, **kwargs)


class ModelRegistry:
    """Builders by name; ``kind`` names the registry's functions in error messages (e.g. ``"model"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., nn.Module]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
        """Decorator that registers a builder under ``name`` (default: the function's name).

        A name of :data:`RENAMED` registers the builder under its new name and returns a deprecated stand-in for
        the old one.

        Raises:
            ValueError: empty name, or a name already taken (registration never overwrites silently).
        """

        def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
            key = fn.__name__ if name is None else name
            if not isinstance(key, str) or not key:
                raise ValueError(f"register_{self.kind}: name must be a non-empty str, got {key!r}.")
            if key in RENAMED:
                self.register(RENAMED[key])(fn)
                return _RenamedBuilder(fn, key, RENAMED[key])
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
        """The builder registered under ``name`` (a renamed name warns and gives its new name's builder).

        Raises:
            TypeError: ``name`` is not a str.
            ValueError: unknown name; the message lists the registered names.
        """
        if not isinstance(name, str):
            raise TypeError(f"get_{self.kind}: name must be a str, got {type(name).__name__} {name!r}.")
        if name in RENAMED and RENAMED[name] in self._builders:
            name = canonical_name(name)
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
