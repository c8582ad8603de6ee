"""SRE-UNet: one N-D segmentation UNet with SRE or standard convolutions (MONAI BasicUNet layout)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers.factories import Conv, Dropout, Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_resample import SREPool, symmetric_resize
from monai_sre.blocks.sre_resblock import CONV_TYPES, make_conv
from monai_sre.nets.segmentation_registry import register_segmentation_model

__all__ = ["SREUNet", "sre_unet", "unet"]

_DEFAULT_NORM = ("instance", {"affine": True})
_DEFAULT_ACT = ("leakyrelu", {"negative_slope": 0.1, "inplace": True})


class _TwoConv(nn.Sequential):
    """``conv - norm - act [- dropout] - conv - norm - act``, "same" padding, stride 1."""

    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, conv_type, num_bands, norm, act, dropout,
                 sre_kwargs):
        layers = []
        for i, (cin, cout) in enumerate(((in_channels, out_channels), (out_channels, out_channels))):
            layers += [
                make_conv(spatial_dims, cin, cout, kernel_size, 1, conv_type, num_bands, False, sre_kwargs),
                get_norm_layer(norm, spatial_dims, cout),
                get_act_layer(act),
            ]
            if i == 0 and dropout:
                layers.append(Dropout[Dropout.DROPOUT, spatial_dims](dropout))
        super().__init__(*layers)


class SREUNet(nn.Module):
    """UNet for 1D/2D/3D segmentation whose output commutes exactly with the grid symmetries.

    .. code-block:: text

        x -> TwoConv(f0) ----------------------------------------------- cat -> TwoConv(f_last) -> 1x1 -> logits
               `-> down -> TwoConv(f1) ------------------- cat -> TwoConv(f1) -> up --^
                            `-> down -> ... TwoConv(f_L) -> up --^

    The layout follows MONAI's ``BasicUNet``: ``features`` lists the channels of the encoder levels
    and, last, the channels of the final decoder level (``(32, 32, 64, 128, 256, 32)`` there); every
    level is two "same" convolutions with norm and activation; downsampling is 2x max pooling,
    upsampling a 2x transposed convolution whose output is concatenated with the skip features.

    ``conv_type="sre"`` (default): :class:`~monai_sre.blocks.SREConv` kernels, max pooling over
    symmetric windows (:class:`~monai_sre.blocks.SREPool`, ``ceil(n / 2)`` samples), a transposed
    convolution with a symmetric 2-tap kernel (:class:`~monai_sre.blocks.SREEvenConv`: a pointwise
    convolution, then nearest-neighbour upsampling), and where a skip has an odd size a symmetric
    linear resize (:func:`~monai_sre.blocks.symmetric_resize`). The segmentation map is then exactly
    equivariant, up to float rounding, under the 8 (2D) / 48 (3D) rotations and flips of the grid, at
    every input size; arbitrary angles need interpolation and are only approximately equivariant.
    See Du et al., "SRE-Conv", ISBI 2025, for the convolution.

    ``conv_type="standard"`` builds the baseline from the same arguments, as ``BasicUNet`` does:
    plain convolutions, ``MaxPoolNd(2)`` (floor), ``ConvTransposeNd(2, stride 2)`` and a one-voxel
    replicate pad on the far side where a skip has an odd size.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (classes, background included).
        features: encoder channels per level (at least 2 levels), then the final decoder channels.
        kernel_size: odd kernel size of every convolution.
        conv_type: ``"sre"`` or ``"standard"``.
        num_bands: SRE bands per kernel; default ``kernel_size // 2 + 1``.
        norm: MONAI norm name or ``(name, kwargs)``.
        act: MONAI activation name or ``(name, kwargs)``.
        dropout: dropout probability after the first convolution of each level.
        sre_kwargs: extra keyword arguments for :class:`~monai_sre.blocks.SREConv`.

    Raises:
        ValueError: bad ``spatial_dims``, ``conv_type``, ``features`` or ``kernel_size``.

    Example::

        >>> net = SREUNet(3, in_channels=1, out_channels=3, features=(8, 16, 32, 8))
        >>> net(torch.randn(2, 1, 24, 24, 17)).shape
        torch.Size([2, 3, 24, 24, 17])
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        features: Sequence[int] = (16, 16, 32, 64, 128, 16),
        kernel_size: int = 3,
        conv_type: str = "sre",
        num_bands: int | None = None,
        norm: str | tuple = _DEFAULT_NORM,
        act: str | tuple = _DEFAULT_ACT,
        dropout: float = 0.0,
        sre_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        if conv_type not in CONV_TYPES:
            raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {conv_type!r}.")
        features = list(features) if isinstance(features, (list, tuple)) else None
        if not features or len(features) < 3 or not all(isinstance(f, int) and f > 0 for f in features):
            raise ValueError(f"features must be at least 3 positive ints (2 encoder levels and the last decoder), got {features!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        self.spatial_dims = spatial_dims
        self.conv_type = conv_type
        sre = conv_type == "sre"
        enc, last = features[:-1], features[-1]

        def two_conv(cin: int, cout: int) -> nn.Module:
            return _TwoConv(spatial_dims, cin, cout, kernel_size, conv_type, num_bands, norm, act, dropout, sre_kwargs)

        self.encoders = nn.ModuleList([two_conv(in_channels, enc[0])])
        self.downs = nn.ModuleList()
        for cin, cout in zip(enc[:-1], enc[1:]):
            self.downs.append(SREPool(spatial_dims, 2, 2, mode="max", ceil_mode=True) if sre else Pool[Pool.MAX, spatial_dims](2))
            self.encoders.append(two_conv(cin, cout))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        below = enc[-1]
        for level in range(len(enc) - 2, -1, -1):
            skip = enc[level]
            cout = last if level == 0 else skip
            if sre:
                self.ups.append(SREEvenConv(spatial_dims, below, skip, 2, stride=2, transposed=True))
            else:
                self.ups.append(Conv[Conv.CONVTRANS, spatial_dims](below, skip, kernel_size=2, stride=2))
            self.decoders.append(two_conv(2 * skip, cout))
            below = cout
        self.head = Conv[Conv.CONV, spatial_dims](last, out_channels, kernel_size=1)

    def _match(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.conv_type == "sre":
            return symmetric_resize(up, skip.shape[2:])
        # BasicUNet: floor pooling loses one voxel on odd sizes; replicate it on the far side
        pad: list[int] = []
        for i in range(self.spatial_dims - 1, -1, -1):
            pad += [0, skip.shape[2 + i] - up.shape[2 + i]]
        return F.pad(up, pad, mode="replicate") if any(pad) else up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"SREUNet with spatial_dims={self.spatial_dims} expects input (B, C, *spatial), got shape {list(x.shape)}."
            )
        skips = [self.encoders[0](x)]
        for down, encoder in zip(self.downs, self.encoders[1:]):
            skips.append(encoder(down(skips[-1])))
        y = skips.pop()
        for up, decoder in zip(self.ups, self.decoders):
            skip = skips.pop()
            y = decoder(torch.cat([skip, self._match(up(y), skip)], dim=1))
        return self.head(y)


@register_segmentation_model()
def sre_unet(spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2, **kwargs) -> SREUNet:
    """SRE-UNet, ``features=(16, 16, 32, 64, 128, 16)``: exactly equivariant segmentation (see :class:`SREUNet`)."""
    return SREUNet(spatial_dims, in_channels, out_channels, **{"conv_type": "sre", **kwargs})


@register_segmentation_model()
def unet(spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2, **kwargs) -> SREUNet:
    """The baseline of :func:`sre_unet`: the same UNet with standard convolutions (MONAI ``BasicUNet`` style)."""
    return SREUNet(spatial_dims, in_channels, out_channels, **{"conv_type": "standard", **kwargs})
