"""Evaluation views: the original, the rotations of the paper's protocol and the flips, and how a batch looks in
each (:func:`apply_view`). The rotated-evaluation handlers of :mod:`monai_sre.handlers` run one evaluator per view."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_sre.transforms.rotation import reflection_protocol, rotate, rotation_protocol

__all__ = ["View", "apply_view", "make_views"]


class View(dict):
    """One evaluation view: ``{"kind": "original"|"rotation"|"reflection", "axis": int|None, "angle": float|None}``."""

    @property
    def name(self) -> str:
        if self["kind"] == "original":
            return "original"
        if self["kind"] == "reflection":
            return f"flip_axis{self['axis']}"
        axis = "" if self["axis"] is None else f"axis{self['axis']}_"
        return f"rot_{axis}{self['angle']:g}"

    @property
    def key(self) -> str:
        """The same for views that show the same thing (the original and 0/360-degree rotations): evaluate once."""
        if self["kind"] == "rotation" and float(self["angle"]) % 360.0 == 0.0:
            return "original"
        return self.name


def make_views(
    spatial_dims: int,
    rotations: Sequence[tuple[int | None, float]] | None = None,
    reflections: Sequence[int] | None = None,
) -> list[View]:
    """The original view plus rotations (default: the paper's protocol) and reflections (default: every axis).

    Args:
        spatial_dims: 2 or 3.
        rotations: ``(axis, angle)`` pairs; None uses :func:`rotation_protocol`.
        reflections: spatial axes to flip; None uses :func:`reflection_protocol`.

    Returns:
        list of :class:`View`, the original first.
    """
    rotations = rotation_protocol(spatial_dims) if rotations is None else rotations
    reflections = reflection_protocol(spatial_dims) if reflections is None else reflections
    views = [View(kind="original", axis=None, angle=0.0)]
    views += [View(kind="rotation", axis=None if a is None else int(a), angle=float(t)) for a, t in rotations]
    views += [View(kind="reflection", axis=int(a), angle=None) for a in reflections]
    return views


def apply_view(
    x: torch.Tensor, view: View, backend: str = "auto", background: float = 0.0, mode: str = "linear"
) -> torch.Tensor:
    """The batch ``x`` ``(B, C, *spatial)`` as seen in ``view``: unchanged (the original and 0/360 degrees),
    flipped, or rotated with ``mode`` interpolation (``"linear"`` for images, ``"nearest"`` for label maps); corners
    that come from outside the image get ``background``."""
    if view["kind"] == "original" or (view["kind"] == "rotation" and float(view["angle"]) % 360.0 == 0.0):
        return x
    if view["kind"] == "reflection":
        return torch.flip(x, dims=(2 + view["axis"],))
    if background == 0.0:
        return rotate(x, view["angle"], view["axis"], mode=mode, backend=backend)
    return rotate(x - background, view["angle"], view["axis"], mode=mode, backend=backend) + background
