"""Average pooling whose windows are placed symmetrically, so it commutes with grid symmetries."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import ensure_tuple_rep

from monai_sre.blocks.sre_resample import SizeDependentLayer

__all__ = ["SREAvgPool", "symmetric_pool_geometry"]


def symmetric_pool_geometry(size: int, factor: int) -> tuple[int, int]:
    """Window length and per-side padding that pool ``size`` samples by ``factor`` symmetrically.

    The output has ``m = ceil(size / factor)`` samples. With ``p = m * factor - size`` missing
    samples, the windows are ``factor`` long with ``p / 2`` padding per side when ``p`` is even,
    and ``factor + 1`` long with ``(p + 1) / 2`` padding per side when ``p`` is odd. Either way the
    window layout is its own mirror image, so flipping the axis before pooling equals flipping after.
    For ``factor=2`` this is the usual 2-window on even sizes and a 3-window, stride 2, padding 1 on
    odd sizes (windows centred on the even samples). A size up to ``factor`` is averaged whole.

    Args:
        size: input length along the axis (>= 1).
        factor: downsampling factor (>= 1).

    Returns:
        ``(kernel, padding)`` for that axis.
    """
    out = -(-size // factor)
    missing = out * factor - size
    if size <= factor:
        return size, 0
    if missing % 2 == 0:
        return factor, missing // 2
    return factor + 1, (missing + 1) // 2


class SREAvgPool(SizeDependentLayer):
    """N-D average pooling by an integer factor that keeps exact 90-degree and flip symmetry.

    Plain ``AvgPoolNd(2)`` on an odd size drops the last sample, so a flipped input is pooled on a
    shifted grid and invariance breaks (e.g. at MedMNIST's 28 px after three halvings: 28, 14, 7, 3).
    Here the window layout is chosen per axis from the current size (see
    :func:`symmetric_pool_geometry`), so for every size the output is ``ceil(size / factor)`` long
    and ``pool(g x) == g pool(x)`` for every grid symmetry ``g`` (axis permutations need equal
    factors on the permuted axes). Padded samples are not counted in the averages.

    Because the layout follows the input size, ``torch.jit.trace`` records it for the traced size only and warns
    once (see :func:`~monai_sre.blocks.sre_resample.traced_for_its_size`); ``torch.jit.script`` keeps the rule.

    Args:
        spatial_dims: 1, 2 or 3.
        factor: downsampling factor, int or one per axis.

    Example::

        >>> pool = SREAvgPool(2, 2)
        >>> pool(torch.randn(1, 4, 7, 8)).shape
        torch.Size([1, 4, 4, 4])
    """

    __constants__ = ["spatial_dims"]

    def __init__(self, spatial_dims: int, factor: Sequence[int] | int = 2) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        factors = ensure_tuple_rep(factor, spatial_dims)
        if not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in factors):
            raise ValueError(f"factor must be a positive int or {spatial_dims} positive ints, got {factor!r}.")
        self.spatial_dims = spatial_dims
        self.factor = [int(f) for f in factors]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"SREAvgPool with spatial_dims={self.spatial_dims} expects input (B, C, *spatial) "
                f"with {self.spatial_dims + 2} dims, got shape {list(x.shape)}."
            )
        kernel: list[int] = []
        padding: list[int] = []
        for i in range(self.spatial_dims):
            f = self.factor[i]
            size = x.shape[2 + i]
            out = (size + f - 1) // f
            missing = out * f - size
            if size <= f:
                kernel.append(size)
                padding.append(0)
            elif missing % 2 == 0:
                kernel.append(f)
                padding.append(missing // 2)
            else:
                kernel.append(f + 1)
                padding.append((missing + 1) // 2)
        if self.spatial_dims == 1:
            return F.avg_pool1d(x, kernel, self.factor, padding, False, False)
        if self.spatial_dims == 2:
            return F.avg_pool2d(x, kernel, self.factor, padding, False, False)
        return F.avg_pool3d(x, kernel, self.factor, padding, False, False)

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}, factor={tuple(self.factor)}"
