"""Exact grid symmetries and a numeric equivariance check."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
from monai.networks import eval_mode

__all__ = ["GridSymmetry", "grid_symmetries", "equivariance_error", "equivariance_errors", "invariance_error"]


class GridSymmetry(NamedTuple):
    """A symmetry of the voxel grid: permute the spatial axes, then flip some of them.

    ``perm[i]`` is the input spatial axis that becomes output axis ``i``; ``flips`` are output
    spatial axes (0-based). Acting on ``(B, C, *spatial)`` tensors it is exact (no interpolation).
    The 2D group has 8 elements (4 rotations x reflection), the 3D group 48.
    """

    perm: tuple[int, ...]
    flips: tuple[int, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.dim() - len(self.perm)
        if lead < 0:
            raise ValueError(f"{self} acts on {len(self.perm)} spatial dims, got a tensor of shape {list(x.shape)}.")
        y = x.permute(*range(lead), *(lead + p for p in self.perm))
        return y.flip([lead + f for f in self.flips]) if self.flips else y

    @property
    def is_rotation(self) -> bool:
        """True for proper rotations (determinant +1), False for reflections."""
        inversions = sum(1 for i, j in itertools.combinations(range(len(self.perm)), 2) if self.perm[i] > self.perm[j])
        return (inversions + len(self.flips)) % 2 == 0


def grid_symmetries(spatial_dims: int, rotations_only: bool = False) -> list[GridSymmetry]:
    """All ``spatial_dims! * 2**spatial_dims`` symmetries of the grid (2, 8 or 48), identity first.

    Args:
        spatial_dims: 1, 2 or 3.
        rotations_only: keep only the proper rotations (1, 4 or 24).
    """
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
    out = []
    for perm in itertools.permutations(range(spatial_dims)):
        for n in range(spatial_dims + 1):
            for flips in itertools.combinations(range(spatial_dims), n):
                g = GridSymmetry(tuple(perm), tuple(flips))
                if not rotations_only or g.is_rotation:
                    out.append(g)
    return out


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().clamp_min(torch.finfo(b.dtype).tiny)
    return float(((a - b).abs().max() / scale).item())


def equivariance_errors(
    module: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    symmetries: Sequence[GridSymmetry] | None = None,
    chunk_size: int = 1,
) -> list[float]:
    """Relative error ``max|f(g x) - g f(x)| / max|g f(x)|`` for each symmetry ``g``.

    When the output has fewer dims than the input (e.g. logits ``(B, classes)``), ``g`` acts
    trivially on it and this measures invariance. Call it under ``torch.no_grad()`` and in eval
    mode for networks with batch statistics (they would couple the copies of a chunk).

    Args:
        module: any callable from ``(B, C, *spatial)`` to ``(B, C', *spatial)`` or ``(B, ...)``.
        x: input batch, channel-first.
        symmetries: subset of :func:`grid_symmetries`; default all of them (8 in 2D, 48 in 3D).
        chunk_size: symmetries per forward pass: the transformed copies of ``x`` are stacked along the batch axis,
            which is much faster on CPU than one pass per symmetry (symmetries that permute axes then need equal
            side lengths).

    Raises:
        ValueError: if ``chunk_size`` is below 1.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}.")
    spatial_dims = x.dim() - 2
    syms = grid_symmetries(spatial_dims) if symmetries is None else list(symmetries)
    y = module(x)
    spatial_out = y.dim() == x.dim()
    errors = []
    for start in range(0, len(syms), chunk_size):
        group = syms[start : start + chunk_size]
        outputs = module(torch.cat([g(x) for g in group], dim=0)).split(x.shape[0])
        for g, out in zip(group, outputs):
            errors.append(_relative(out, g(y) if spatial_out else y))
    return errors


def equivariance_error(
    module: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    symmetries: Sequence[GridSymmetry] | None = None,
    chunk_size: int = 1,
) -> float:
    """The largest relative equivariance (or invariance) error over ``symmetries``.

    Args:
        module: any callable from ``(B, C, *spatial)`` to ``(B, C', *spatial)`` or ``(B, ...)``.
        x: input batch, channel-first.
        symmetries: subset of :func:`grid_symmetries`; default all of them (8 in 2D, 48 in 3D).
        chunk_size: symmetries per forward pass (see :func:`equivariance_errors`).

    Returns:
        ``max_g max|f(g x) - g f(x)| / max|g f(x)|`` as a float.

    Example::

        >>> conv = SREConv(2, 3, 4, 5, padding="same")
        >>> equivariance_error(conv, torch.randn(1, 3, 16, 16)) < 1e-5
        True
    """
    return max(equivariance_errors(module, x, symmetries, chunk_size))


def invariance_error(
    model: nn.Module,
    x: torch.Tensor,
    symmetries: Sequence[GridSymmetry] | None = None,
    chunk_size: int = 16,
) -> float:
    """Largest relative change of the logits ``model(x)`` under grid symmetries, in eval mode without gradients,
    ``chunk_size`` symmetries per forward pass (see :func:`equivariance_errors`).

    Raises:
        ValueError: when the output keeps spatial axes (use :func:`equivariance_error` for feature maps).
    """
    with eval_mode(model):
        probe = model(x[:1])
        if probe.dim() == x.dim():
            raise ValueError(
                f"invariance_error expects an output without spatial axes, got shape {list(probe.shape)}; "
                "use equivariance_error for feature maps."
            )
        return equivariance_error(model, x, symmetries, chunk_size)
