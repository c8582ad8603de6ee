"""Test-time augmentation over the exact symmetries of the voxel grid, as a network wrapper.

Averaging a classifier's class probabilities over a group of input transformations makes it invariant to that group.
Over the grid rotations this needs no interpolation (permutations and flips of the axes, :func:`grid_symmetries`), so
the invariance is exact, like that of an SRE network, at the price of one forward pass per group element.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .equivariance import grid_symmetries

__all__ = ["ACTIVATIONS", "GridTTA"]

ACTIVATIONS = ("softmax", "sigmoid")


class GridTTA(nn.Module):
    """Wrap a classifier so that it returns its mean probability over the grid rotations of the input, as logits.

    .. math::

        \\mathrm{softmax}(\\mathrm{GridTTA}(x)) = \\frac{1}{|G|} \\sum_{g \\in G} \\mathrm{softmax}(f(g x))

    The output is ``log(mean softmax)`` (``activation="softmax"``) or ``logit(mean sigmoid)`` (``"sigmoid"``, for
    multi-label tasks), computed from log-probabilities with ``logsumexp``, so the usual post-processing (softmax or
    sigmoid) yields the mean probability. ``G`` is the group of the square (2D: 4 rotations x identity / flip, the 8
    elements of the dihedral group) or the 24 proper rotations of the cube (3D; ``reflections=True`` makes it all 48
    symmetries). The output is exactly invariant to every element of ``G`` (up to the order of a floating-point sum).

    Args:
        spatial_dims: 2 or 3.
        network: classifier from ``(B, C, *spatial)`` to logits ``(B, classes)``.
        reflections: include the reflections; None: in 2D yes (8 elements), in 3D no (24 rotations).
        activation: ``"softmax"`` (single-label) or ``"sigmoid"`` (multi-label).
        chunk_size: group elements per forward pass; their copies of the batch are stacked along the batch axis when
            they have the same shape (a non-cubic input permuted changes shape). 1 keeps the memory of a plain pass.

    Raises:
        ValueError: for a bad ``spatial_dims``, ``activation`` or ``chunk_size``.
        TypeError: if ``network`` is not a ``torch.nn.Module``.

    Example:
        >>> net = GridTTA(3, get_model("r3d_18", in_channels=1, num_classes=2))
        >>> net(torch.randn(2, 1, 28, 28, 28)).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        spatial_dims: int,
        network: nn.Module,
        reflections: bool | None = None,
        activation: str = "softmax",
        chunk_size: int = 1,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}.")
        if reflections is None:
            reflections = spatial_dims == 2
        self.spatial_dims = spatial_dims
        self.network = network
        self.activation = activation
        self.chunk_size = chunk_size
        self.symmetries = grid_symmetries(spatial_dims, rotations_only=not reflections)

    def _logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The network's logits for every group element's view of ``x``, in the order of ``self.symmetries``."""
        out = []
        for start in range(0, len(self.symmetries), self.chunk_size):
            views = [g(x) for g in self.symmetries[start : start + self.chunk_size]]
            if len({v.shape for v in views}) == 1:
                out += list(self.network(torch.cat(views, dim=0)).split(x.shape[0]))
            else:
                out += [self.network(v) for v in views]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"x must be (B, C, *spatial) with {self.spatial_dims} spatial dims, got shape {list(x.shape)}."
            )
        logits = torch.stack(self._logits(x), dim=0).float()
        log_n = math.log(logits.shape[0])
        if self.activation == "softmax":
            return torch.logsumexp(F.log_softmax(logits, dim=-1), dim=0) - log_n
        log_p = torch.logsumexp(F.logsigmoid(logits), dim=0) - log_n
        log_q = torch.logsumexp(F.logsigmoid(-logits), dim=0) - log_n
        return log_p - log_q
