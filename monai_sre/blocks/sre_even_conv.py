"""Symmetric convolutions and transposed convolutions with kernels of any size, even ones included.

:class:`~monai_sre.blocks.sre_conv.SREConv` needs a centre tap. An even kernel (2x2x2 in most
segmentation decoders) has its centre between taps, at ``(k - 1) / 2``; it is still symmetric when
taps at equal distance from that centre share a weight, and a 2-tap-per-axis kernel then has a
single band: the transposed convolution becomes "1x1 convolution, then nearest-neighbour
upsampling", which commutes exactly with every grid symmetry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.utils import ensure_tuple_rep

from monai_sre.layers.band_conv import conv_nd

__all__ = ["SREEvenConv", "distance_bands", "plain_conv"]


def distance_bands(kernel_size: Sequence[int], dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Band masks ``(B, *kernel_size)``: one band per distinct distance from the kernel centre.

    Works for odd and even sizes. Each mask is divided by ``sqrt`` of its tap count (orthonormal
    bands). Taps related by a grid symmetry have equal distances, so any combination of the masks
    is a symmetric kernel.
    """
    ks = tuple(int(k) for k in kernel_size)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"kernel_size must be positive on every axis, got {ks}.")
    grids = torch.meshgrid(*[torch.arange(k, dtype=torch.float64) * 2 - (k - 1) for k in ks], indexing="ij")
    twice_sq = sum(g**2 for g in grids)  # (2 d)^2, an exact integer in float64
    values = torch.unique(twice_sq)
    masks = torch.stack([(twice_sq == v).to(torch.float64) for v in values])
    masks = masks / masks.flatten(1).sum(1).sqrt().view(-1, *([1] * len(ks)))
    return masks.to(dtype=dtype or torch.get_default_dtype(), device=device)


def plain_conv(layer: nn.Module, kernel: torch.Tensor, **kwargs) -> nn.Module:
    """The ``torch.nn.ConvNd`` / ``ConvTransposeNd`` (by ``layer.transposed``) equal to ``layer``, holding ``kernel``.

    Args:
        layer: an SRE convolution with ``spatial_dims``, ``transposed``, ``weight``, ``bias`` and ``training``.
        kernel: its expanded kernel, shaped as the plain layer's weight.
        kwargs: the plain layer's constructor arguments (channels, geometry, groups, padding mode).
    """
    kind = "ConvTranspose" if layer.transposed else "Conv"
    conv = getattr(nn, f"{kind}{layer.spatial_dims}d")(
        bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype, **kwargs
    )
    with torch.no_grad():
        conv.weight.copy_(kernel)
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    conv.train(layer.training)
    return conv


class BasisModule(nn.Module):
    """A module with a fixed kernel basis buffer ``basis`` of shape ``(bands, *kernel_size)``.

    ``module.to(memory_format=torch.channels_last_3d)`` gives every 4D and 5D tensor of a network that memory format,
    and a 3D basis is a 4D tensor that no memory format fits. The basis is moved and cast like every other tensor,
    as a ``(bands, taps)`` matrix, so that a network holding SRE layers converts to channels-last (the band weights
    are 3D and are left as they are too).
    """

    @torch.jit.unused
    def _apply(self, fn, recurse=True):
        basis = self._buffers.pop("basis", None)
        try:
            super()._apply(fn, recurse)
        except BaseException:
            self._buffers["basis"] = basis  # as it was, so the module stays whole
            raise
        if basis is not None:
            self._buffers["basis"] = fn(basis.reshape(basis.shape[0], -1)).reshape(basis.shape)
        return self


class SREEvenConv(BasisModule):
    """N-D convolution or transposed convolution with a symmetric kernel of any size.

    Weight ``(out, in / groups, B)`` (transposed: ``(in, out / groups, B)``), one value per distance
    band of :func:`distance_bands`. The layer commutes with the grid symmetries whenever its
    output grid is symmetric: stride 1 (any padding), or a transposed convolution with
    ``output_padding=0``. :func:`~monai_sre.utils.convert.convert_to_sre` uses it for the even
    kernels of MONAI's decoders.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as in
            ``torch.nn.ConvNd`` / ``ConvTransposeNd`` (integer padding, zeros only).
        transposed: build a transposed convolution.

    Example::

        >>> up = SREEvenConv(3, 8, 4, kernel_size=2, stride=2, transposed=True)
        >>> up(torch.randn(1, 8, 5, 6, 7)).shape
        torch.Size([1, 4, 10, 12, 14])
    """

    __constants__ = ["spatial_dims", "transposed", "groups"]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int = 0,
        dilation: Sequence[int] | int = 1,
        groups: int = 1,
        bias: bool = True,
        transposed: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups}).")
        self.spatial_dims = spatial_dims
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.transposed = bool(transposed)
        self.kernel_size = self._ints("kernel_size", kernel_size, 1)
        self.stride = self._ints("stride", stride, 1)
        self.padding = self._ints("padding", padding, 0)
        self.dilation = self._ints("dilation", dilation, 1)
        basis = distance_bands(self.kernel_size, dtype=dtype, device=device)
        self.num_bands = int(basis.shape[0])
        self.register_buffer("basis", basis, persistent=False)
        shape = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        self.weight = nn.Parameter(torch.empty(*shape, self.num_bands, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def _ints(self, name: str, value, low: int) -> tuple[int, ...]:
        try:
            out = ensure_tuple_rep(value, self.spatial_dims)
        except ValueError as e:
            raise ValueError(f"{name} must be an int or {self.spatial_dims} ints, got {value!r}.") from e
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in out):
            raise ValueError(f"{name} must hold ints >= {low}, got {value!r}.")
        return tuple(int(v) for v in out)

    def reset_parameters(self) -> None:
        """Uniform init with bound ``1 / sqrt(fan_in)``, ``fan_in = weight.shape[1] * num_bands``."""
        bound = 1.0 / math.sqrt(self.weight.shape[1] * self.num_bands)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def expanded_kernel(self) -> torch.Tensor:
        """The full symmetric kernel, shaped as ``torch.nn.ConvNd`` (or ``ConvTransposeNd``) expects."""
        return torch.einsum("oib,b...->oi...", self.weight, self.basis.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"SREEvenConv with spatial_dims={self.spatial_dims} expects input (B, C, *spatial), got shape {list(x.shape)}."
            )
        return conv_nd(
            x, self.expanded_kernel(), self.bias, stride=list(self.stride), padding=list(self.padding),
            dilation=list(self.dilation), groups=self.groups,
            output_padding=[0] * self.spatial_dims if self.transposed else None,
        )

    def to_plain(self) -> nn.Module:
        """A plain ``torch.nn.ConvNd`` (or ``ConvTransposeNd``) holding the expanded kernel: same outputs."""
        return plain_conv(self, self.expanded_kernel(), in_channels=self.in_channels, out_channels=self.out_channels,
                          kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                          dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        return (
            f"{self.spatial_dims}D, {self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bands={self.num_bands}, transposed={self.transposed}"
        )
