"""Residual blocks built from SRE convolutions, with a standard-convolution switch for baselines."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from monai_sre.blocks.sre_conv import SREConv
from monai_sre.blocks.sre_pool import SREAvgPool

__all__ = ["CONV_TYPES", "make_conv", "SREBasicBlock", "SREBottleneck"]

CONV_TYPES = ("sre", "standard")

_DEFAULT_ACT = ("relu", {"inplace": True})


def _check_conv_type(conv_type: str) -> str:
    if conv_type not in CONV_TYPES:
        raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {conv_type!r}.")
    return conv_type


def _check_kernel(name: str, kernel_size: int) -> int:
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int, got {kernel_size!r}.")
    return kernel_size


def make_conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    conv_type: str = "sre",
    num_bands: int | None = None,
    bias: bool = False,
    sre_kwargs: dict | None = None,
) -> nn.Module:
    """A "same"-padded convolution: :class:`SREConv` or a plain ``ConvNd``.

    With ``conv_type="sre"`` and ``kernel_size > 1`` this is an :class:`SREConv` (``stride`` must be
    1: SRE nets downsample by pooling). A 1-tap kernel is a plain ``ConvNd`` either way (it is
    trivially symmetric). With ``conv_type="standard"`` it is ``ConvNd(kernel_size, stride,
    padding=kernel_size // 2)``, as in torchvision's ResNet; ``num_bands`` and ``sre_kwargs`` are ignored.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd int, the same on every axis.
        stride: downsampling stride (standard convolutions only).
        conv_type: ``"sre"`` or ``"standard"``.
        num_bands: SRE bands; default ``kernel_size // 2 + 1``.
        bias: add a bias.
        sre_kwargs: extra keyword arguments for :class:`SREConv` (e.g. ``spacing``, ``circular``).
    """
    _check_conv_type(conv_type)
    _check_kernel("kernel_size", kernel_size)
    if conv_type == "sre" and kernel_size > 1:
        if stride != 1:
            raise ValueError(f"SRE convolutions downsample by pooling; stride must be 1, got {stride!r}.")
        return SREConv(
            spatial_dims, in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2,
            bias=bias, num_bands=num_bands, **(sre_kwargs or {}),
        )
    return Conv[Conv.CONV, spatial_dims](
        in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2, bias=bias
    )


class _SREResidualBlock(nn.Module):
    """Shared constructor pieces: the downsampling rule and the shortcut."""

    expansion: int = 1

    def _init_common(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        conv_type: str,
        norm: str | tuple,
    ) -> int:
        """Set ``self.pool`` and ``self.shortcut``; return the stride the main path's convolution takes."""
        _check_conv_type(conv_type)
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        self.spatial_dims = spatial_dims
        self.conv_type = conv_type
        sre = conv_type == "sre"
        # SRE: pool once at the block entry, feeding both paths; every convolution has stride 1
        self.pool: nn.Module = SREAvgPool(spatial_dims, stride) if sre and stride > 1 else nn.Identity()
        conv_stride = 1 if sre else stride
        # a downsampling block always gets the 1x1 projection (the paper's pool + 1x1 conv rule)
        if in_channels != out_channels or stride > 1:
            self.shortcut: nn.Module = nn.Sequential(
                Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1, stride=conv_stride, bias=False),
                get_norm_layer(norm, spatial_dims, out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        return conv_stride


class SREBasicBlock(_SREResidualBlock):
    """ResNet basic block, ``act(x' + norm(conv(act(norm(conv(x'))))))`` with ``x' = pool(x)``.

    With ``conv_type="sre"`` both convolutions are stride-1 :class:`SREConv` layers and a
    ``stride > 1`` becomes a symmetric average pool (:class:`SREAvgPool`) at the block entry, shared
    by the main path and the shortcut (a 1x1 convolution plus norm when the width changes). The
    block then commutes with every grid symmetry. With ``conv_type="standard"`` it is the
    torchvision block: the first convolution and the 1x1 shortcut carry the stride.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        width: channels of both convolutions; the block outputs ``width`` channels.
        kernel_size: odd int, both convolutions.
        stride: downsampling factor.
        conv_type: ``"sre"`` or ``"standard"``.
        num_bands: SRE bands per kernel; default ``kernel_size // 2 + 1``.
        norm: MONAI norm name or ``(name, kwargs)``, e.g. ``"batch"`` or ``("group", {"num_groups": 8})``.
        act: MONAI activation name or ``(name, kwargs)``.
        sre_kwargs: extra keyword arguments for every :class:`SREConv`.

    Example::

        >>> block = SREBasicBlock(3, 16, 32, kernel_size=3, stride=2)
        >>> block(torch.randn(2, 16, 7, 7, 7)).shape
        torch.Size([2, 32, 4, 4, 4])
    """

    expansion = 1

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        width: int,
        kernel_size: int = 3,
        stride: int = 1,
        conv_type: str = "sre",
        num_bands: int | None = None,
        norm: str | tuple = "batch",
        act: str | tuple = _DEFAULT_ACT,
        sre_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        conv_stride = self._init_common(spatial_dims, in_channels, width, stride, conv_type, norm)
        self.conv1 = make_conv(spatial_dims, in_channels, width, kernel_size, conv_stride, conv_type, num_bands, sre_kwargs=sre_kwargs)
        self.norm1 = get_norm_layer(norm, spatial_dims, width)
        self.act1 = get_act_layer(act)
        self.conv2 = make_conv(spatial_dims, width, width, kernel_size, 1, conv_type, num_bands, sre_kwargs=sre_kwargs)
        self.norm2 = get_norm_layer(norm, spatial_dims, width)
        self.act2 = get_act_layer(act)

    def last_norm(self) -> nn.Module:
        """The norm layer before the residual sum (zeroed by ``zero_init_residual``)."""
        return self.norm2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        identity = self.shortcut(x)
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act2(out + identity)


class SREBottleneck(_SREResidualBlock):
    """ResNet bottleneck block: 1x1 reduce, ``kernel_size`` SRE conv, 1x1 expand (x4), residual sum.

    Downsampling follows the same rule as :class:`SREBasicBlock`: symmetric average pooling at the
    entry for ``conv_type="sre"``, the stride on the middle convolution (torchvision "v1.5") and on
    the 1x1 shortcut for ``conv_type="standard"``.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        width: channels of the middle convolution; the block outputs ``4 * width`` channels.
        kernel_size: odd int, the middle convolution.
        stride: downsampling factor.
        conv_type: ``"sre"`` or ``"standard"``.
        num_bands: SRE bands of the middle kernel; default ``kernel_size // 2 + 1``.
        norm: MONAI norm name or ``(name, kwargs)``.
        act: MONAI activation name or ``(name, kwargs)``.
        sre_kwargs: extra keyword arguments for every :class:`SREConv`.

    Example::

        >>> block = SREBottleneck(2, 64, 16, kernel_size=5)
        >>> block(torch.randn(2, 64, 28, 28)).shape
        torch.Size([2, 64, 28, 28])
    """

    expansion = 4

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        width: int,
        kernel_size: int = 3,
        stride: int = 1,
        conv_type: str = "sre",
        num_bands: int | None = None,
        norm: str | tuple = "batch",
        act: str | tuple = _DEFAULT_ACT,
        sre_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        conv_stride = self._init_common(spatial_dims, in_channels, out_channels, stride, conv_type, norm)
        self.conv1 = make_conv(spatial_dims, in_channels, width, 1, 1, conv_type)
        self.norm1 = get_norm_layer(norm, spatial_dims, width)
        self.act1 = get_act_layer(act)
        self.conv2 = make_conv(spatial_dims, width, width, kernel_size, conv_stride, conv_type, num_bands, sre_kwargs=sre_kwargs)
        self.norm2 = get_norm_layer(norm, spatial_dims, width)
        self.act2 = get_act_layer(act)
        self.conv3 = make_conv(spatial_dims, width, out_channels, 1, 1, conv_type)
        self.norm3 = get_norm_layer(norm, spatial_dims, out_channels)
        self.act3 = get_act_layer(act)

    def last_norm(self) -> nn.Module:
        """The norm layer before the residual sum (zeroed by ``zero_init_residual``)."""
        return self.norm3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        identity = self.shortcut(x)
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.act3(out + identity)
