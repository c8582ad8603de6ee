"""Band path of an SRE convolution: filter with the fixed band masks and mix with a 1x1 convolution.

An SRE kernel is ``K[o, i] = sum_b W[o, i, b] * M_b`` with ``B`` fixed one-hot band masks ``M_b``, so

.. math::

    y_o = \\sum_b M_b \\star \\Big(\\sum_i W_{o,i,b}\\, x_i\\Big) = \\sum_{i,b} W_{o,i,b}\\, (M_b \\star x_i).

Two orders compute this without building ``K`` (``d`` spatial dims, ``k^d`` taps, groups ``g``):

- ``"filter_mix"`` (order A): filter every input channel with the ``B`` masks (``C_in * B * k^d``
  multiply-adds per output voxel), then mix the ``C_in * B`` responses with a 1x1 convolution
  (``C_in / g * B * C_out``).
- ``"mix_filter"`` (order B): mix first with a 1x1 convolution to ``C_out * B`` channels at the
  input resolution (``C_in / g * C_out * B`` per *input* voxel), then filter every output channel
  with the masks and sum over bands (``C_out * B * k^d``).

The dense path costs ``C_in / g * C_out * k^d``, so the band path pays off for wide layers with
large kernels. The mask filtering runs as a depthwise convolution whose backward pass is itself a
forward depthwise convolution (PyTorch's CPU backward of depthwise 3D convolutions is far slower
than its forward); stride, dilation and padding are handled exactly. All functions are N-D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["BAND_ORDERS", "band_conv", "band_conv_nd", "band_filter", "band_conv_costs", "conv_nd"]

BAND_ORDERS = ("filter_mix", "mix_filter")


def conv_nd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    output_padding: list[int] | None = None,
) -> torch.Tensor:
    """``torch.nn.functional.conv{1,2,3}d`` for any number of spatial dims, or ``conv_transpose{1,2,3}d`` when
    ``output_padding`` is given: ``torch.convolution``, the op all of them call, so the result is bit-identical."""
    if output_padding is None:
        return torch.convolution(x, weight, bias, stride, padding, dilation, False, [0] * len(stride), groups)
    return torch.convolution(x, weight, bias, stride, padding, dilation, True, output_padding, groups)


def _fast_format(x: torch.Tensor) -> torch.Tensor:
    """Channels-last copy for 2D/3D (oneDNN's depthwise kernels prefer it on CPU); identity on CUDA and in 1D."""
    if x.device.type != "cpu":
        return x
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _depthwise_transpose(g: torch.Tensor, w: torch.Tensor, stride: list[int], padding: list[int],
                         dilation: list[int], in_shape: list[int]) -> torch.Tensor:
    """Adjoint of the depthwise convolution ``conv_nd(., w, stride, padding, dilation, groups=channels)``,
    computed as a *forward* depthwise convolution with the flipped masks on a zero-stuffed input."""
    nd = g.dim() - 2
    ks = list(w.shape[2:])
    if any(s > 1 for s in stride):
        up_shape = [g.shape[0], g.shape[1]] + [(n - 1) * s + 1 for n, s in zip(g.shape[2:], stride)]
        up = g.new_zeros(up_shape)
        index = [slice(None), slice(None)] + [slice(None, None, s) for s in stride]
        up[tuple(index)] = g
        g = up
    pads = []
    for ax in reversed(range(nd)):  # F.pad wants the last axis first
        span = dilation[ax] * (ks[ax] - 1)
        left = span - padding[ax]
        right = in_shape[ax] - g.shape[2 + ax] - left + span
        pads += [left, right]
    if any(p != 0 for p in pads):
        g = F.pad(g, pads)  # negative entries crop
    flipped = w.flip(list(range(2, 2 + nd)))
    return conv_nd(_fast_format(g), flipped, None, [1] * nd, [0] * nd, dilation, g.shape[1])


class _BandFilter(torch.autograd.Function):
    """``split``: (N, C, *S) -> (N, C*B, *S'), channel ``c*B+b`` = ``M_b * x_c``.
    ``merge``: (N, C*B, *S) -> (N, C, *S'), channel ``c`` = ``sum_b M_b * u_{c*B+b}``."""

    @staticmethod
    def forward(ctx, x, masks, stride, padding, dilation, merge):
        nb = masks.shape[0]
        n, ch = x.shape[0], x.shape[1]
        spatial = list(x.shape[2:])
        channels = ch if merge else ch * nb
        w = masks.repeat(channels // nb, *([1] * (masks.dim() - 1)))  # (C*B, 1, *k)
        if not merge:
            x = x.unsqueeze(2).expand(n, ch, nb, *spatial).reshape(n, channels, *spatial)
        y = conv_nd(_fast_format(x), w, None, stride, padding, dilation, channels)
        if merge:
            y = y.unflatten(1, (ch // nb, nb)).sum(2)
        ctx.save_for_backward(w)
        ctx.conf = (stride, padding, dilation, spatial, merge, nb)
        return y

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        stride, padding, dilation, spatial, merge, nb = ctx.conf
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        if merge:
            n, ch = grad.shape[0], grad.shape[1]
            grad = grad.unsqueeze(2).expand(n, ch, nb, *grad.shape[2:]).reshape(n, ch * nb, *grad.shape[2:])
        gx = _depthwise_transpose(grad, w, stride, padding, dilation, spatial)
        if not merge:
            gx = gx.unflatten(1, (gx.shape[1] // nb, nb)).sum(2)
        return gx, None, None, None, None, None


def _filter_plain(x: torch.Tensor, masks: torch.Tensor, stride: list[int], padding: list[int],
                  dilation: list[int], merge: bool) -> torch.Tensor:
    nb = masks.shape[0]
    n, ch = x.shape[0], x.shape[1]
    channels = ch if merge else ch * nb
    w = masks.repeat([channels // nb] + [1] * (masks.dim() - 1))
    if not merge:
        x = x.repeat_interleave(nb, dim=1)
    y = conv_nd(x, w, None, stride, padding, dilation, channels)
    if merge:
        y = y.reshape([n, ch // nb, nb] + list(y.shape[2:])).sum(2)
    return y


@torch.jit.ignore
def _filter_autograd(x: torch.Tensor, masks: torch.Tensor, stride: list[int], padding: list[int],
                     dilation: list[int], merge: bool) -> torch.Tensor:
    return _BandFilter.apply(x, masks, stride, padding, dilation, merge)


def band_filter(
    x: torch.Tensor,
    basis: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    merge: bool = False,
) -> torch.Tensor:
    """Filter channels with the band masks (zero padding; pad beforehand for other modes).

    Args:
        x: ``(N, C, *S)``; for ``merge`` ``C`` is a multiple of the band count, laid out ``c * B + b``.
        basis: band masks ``(B, *k)`` (see :func:`monai_sre.layers.band_basis`).
        stride: one per spatial axis.
        padding: symmetric zero padding, one per spatial axis.
        dilation: one per spatial axis.
        merge: ``False``: ``(N, C, *S) -> (N, C * B, *S')`` with channel ``c * B + b = M_b * x_c``;
            ``True``: ``(N, C * B, *S) -> (N, C, *S')`` with channel ``c = sum_b M_b * x_{c * B + b}``.

    Returns:
        The filtered tensor. Differentiable in ``x``; ``basis`` is treated as a constant. Eager
        mode uses a custom backward (a forward depthwise convolution); TorchScript uses autograd.
    """
    masks = basis.to(x.dtype).unsqueeze(1)
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return _filter_plain(x, masks, stride, padding, dilation, merge)
    return _filter_autograd(x, masks, stride, padding, dilation, merge)


def band_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Sequence[int] | int = 1,
    padding: Sequence[int] | int = 0,
    dilation: Sequence[int] | int = 1,
    groups: int = 1,
    order: str = "filter_mix",
) -> torch.Tensor:
    """SRE convolution by the band path; equals ``F.convNd(x, expand_kernel(weight, basis), ...)``.

    Args:
        x: input ``(N, C_in, *S)`` (already padded for padding modes other than zeros).
        weight: band weights ``(C_out, C_in / groups, B)``.
        basis: band masks ``(B, *k)``.
        bias: optional ``(C_out,)``.
        stride: int or one per spatial axis.
        padding: zero padding, int or one per spatial axis.
        dilation: int or one per spatial axis.
        groups: as in ``torch.nn.ConvNd``.
        order: ``"filter_mix"`` or ``"mix_filter"`` (see the module docstring).

    Returns:
        ``(N, C_out, *S')``, in the input's memory layout.

    Raises:
        ValueError: for an unknown ``order``.

    Example::

        >>> from monai_sre.layers import band_basis, expand_kernel
        >>> basis = band_basis(5, spatial_dims=3)
        >>> w, x = torch.randn(8, 4, 3), torch.randn(1, 4, 9, 9, 9)
        >>> y = band_conv(x, w, basis, padding=2)
        >>> torch.allclose(y, F.conv3d(x, expand_kernel(w, basis), padding=2), atol=1e-5)
        True
    """
    nd = x.dim() - 2
    stride_l = [stride] * nd if isinstance(stride, int) else [int(s) for s in stride]
    padding_l = [padding] * nd if isinstance(padding, int) else [int(p) for p in padding]
    dilation_l = [dilation] * nd if isinstance(dilation, int) else [int(d) for d in dilation]
    return band_conv_nd(x, weight, basis, bias, stride_l, padding_l, dilation_l, groups, order)


def band_conv_nd(
    x: torch.Tensor,
    weight: torch.Tensor,
    basis: torch.Tensor,
    bias: torch.Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    order: str,
) -> torch.Tensor:
    """TorchScript-friendly core of :func:`band_conv`: every argument given, lists one entry per axis."""
    nd = x.dim() - 2
    c_out, c_in_g, nb = weight.shape[0], weight.shape[1], weight.shape[2]
    ones = [1] * nd
    if order == "filter_mix":
        z = band_filter(x, basis, stride, padding, dilation, False)
        mix = weight.reshape([c_out, c_in_g * nb] + ones)
        y = conv_nd(z, mix, bias, ones, [0] * nd, ones, groups)
    elif order == "mix_filter":
        mix = weight.permute(0, 2, 1).reshape([c_out * nb, c_in_g] + ones)
        u = conv_nd(x, mix, None, ones, [0] * nd, ones, groups)
        y = band_filter(u, basis, stride, padding, dilation, True)
        if bias is not None:
            y = y + bias.reshape([1, c_out] + ones)
    else:
        raise ValueError("order must be 'filter_mix' or 'mix_filter', got " + order + ".")
    if x.dim() > 3 and x.is_contiguous() and not y.is_contiguous():
        y = y.contiguous()
    return y


def band_conv_costs(
    in_channels: int,
    out_channels: int,
    kernel_size: Sequence[int],
    num_bands: int,
    stride: Sequence[int] | int = 1,
    groups: int = 1,
) -> dict[str, float]:
    """Multiply-adds per *output* voxel of the dense path and of both band orders.

    ``mix_filter`` mixes at the input resolution, so its 1x1 term is scaled by ``prod(stride)``.

    Returns:
        ``{"dense": ..., "filter_mix": ..., "mix_filter": ...}``.
    """
    taps = math.prod(kernel_size)
    nd = len(kernel_size)
    strides = [stride] * nd if isinstance(stride, int) else list(stride)
    up = math.prod(strides)
    c_in_g = in_channels // groups
    return {
        "dense": float(c_in_g * out_channels * taps),
        "filter_mix": float(in_channels * num_bands * taps + c_in_g * num_bands * out_channels),
        "mix_filter": float(up * c_in_g * out_channels * num_bands + out_channels * num_bands * taps),
    }
