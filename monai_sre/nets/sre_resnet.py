"""SRE-ResNet: one N-D residual network with SRE or standard convolutions, plus named presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.layers.factories import Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from monai_sre.blocks.smoothing import GaussianSmoothing
from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_pool import SREAvgPool
from monai_sre.blocks.sre_resblock import CONV_TYPES, SREBasicBlock, SREBottleneck, make_conv
from monai_sre.nets.registry import register_model

__all__ = [
    "SREResNet",
    "SRE_RESNET_DEPTHS",
    "sre_resnet10",
    "sre_resnet18",
    "sre_resnet34",
    "sre_resnet50",
    "resnet18",
    "sre_r3d_18",
    "sre_r3d_18_k5",
    "sre_r3d_18_fullres",
    "sre_r3d_18_strided",
    "r3d_18",
]

_BLOCKS = {"basic": SREBasicBlock, "bottleneck": SREBottleneck}
#: how an SRE stem downsamples (see ``SREResNet``'s ``stem_mode``)
STEM_MODES = ("pool", "strided")

#: depth -> (block, blocks per stage), as in torchvision / MONAI ``resnet_params``
SRE_RESNET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


def _per_stage(name: str, value: Any, num_stages: int, allow_none: bool = False) -> list:
    """Broadcast an int (or None) to every stage, or check a per-stage sequence."""
    if value is None and allow_none:
        return [None] * num_stages
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * num_stages
    if isinstance(value, (list, tuple)) and len(value) == num_stages:
        for v in value:
            if not ((isinstance(v, int) and not isinstance(v, bool)) or (v is None and allow_none)):
                raise ValueError(f"{name} must hold ints, got {value!r}.")
        return list(value)
    raise ValueError(f"{name} must be an int or a sequence of {num_stages} values (one per stage), got {value!r}.")


class SREResNet(nn.Module):
    """ResNet for 1D/2D/3D images built from SRE convolutions (Du et al., "SRE-Conv", ISBI 2025).

    .. code-block:: text

        x (B, in_channels, *spatial)
        -> stem: conv(stem_kernel_size) - norm - act [- downsample(stem_stride)] [- downsample(2)]
        -> stage 1 .. n: blocks of ``block`` type, width ``widths[i]``, kernel ``kernel_sizes[i]``;
           stages 2..n start with a downsampling by 2                         = forward_features
        -> global average pool - flatten - dropout - linear(num_classes)     = forward_head

    ``conv_type="sre"`` (default) uses :class:`~monai_sre.blocks.SREConv` for every convolution
    with more than one tap and downsamples only by symmetric average pooling
    (:class:`~monai_sre.blocks.SREAvgPool`) followed by stride-1 convolutions: there is no strided
    convolution and no max pool in the network. With BatchNorm in eval mode (or any pointwise
    norm) the logits are then *exactly* invariant, up to float rounding, under the 8 symmetries of
    the square / 48 of the cube (90-degree rotations and flips of the voxel grid) for every input
    size, including odd sizes met after halving (28 -> 14 -> 7 -> 4): :class:`SREAvgPool` places
    its windows symmetrically. ``forward_features`` is equivariant under the same symmetries.
    Rotations by other angles need interpolation of the input, so invariance to them is only
    approximate. Axis permutations need a cubic (square) input.

    ``conv_type="standard"`` builds the matching baseline from the same arguments: plain
    convolutions of the same sizes, strided convolutions for downsampling and, with
    ``stem_pool=True``, torchvision's 3x3 stride-2 max pool. ``num_bands``, ``stem_num_bands`` and
    ``sre_kwargs`` are ignored then.

    Cost: an SRE convolution has the FLOPs of the dense convolution of the same size. Because SRE
    downsampling convolves at stride 1 and pools afterwards (stem) or pools first (blocks), an SRE
    stem with ``stem_stride=s`` costs ``s ** spatial_dims`` times the strided baseline stem.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: image channels.
        num_classes: logits per sample.
        block: ``"basic"`` or ``"bottleneck"`` (output width x4).
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for depth 18 (see ``SRE_RESNET_DEPTHS``).
        widths: block width per stage (stage output is ``width * expansion``).
        kernel_sizes: odd kernel size per stage, or one int for all stages.
        num_bands: SRE bands per stage (int, per-stage list, or None for ``kernel // 2 + 1``).
        stem_kernel_size: odd kernel size of the first convolution.
        stem_num_bands: SRE bands of the stem; None for the default.
        stem_stride: downsampling factor of the stem convolution (SRE: symmetric pooling after it).
        stem_pool: add a further downsampling by 2 after the stem (SRE: symmetric average pool;
            standard: 3x3 stride-2 max pool as in torchvision).
        stem_channels: stem output channels; default ``widths[0]``.
        stem_mode: how an SRE stem downsamples by ``stem_stride``. ``"pool"`` (default): the
            ``stem_kernel_size`` convolution runs at full resolution, then norm, activation and symmetric average
            pooling; any input size. ``"strided"``: one symmetric convolution of size
            ``stem_kernel_size + stem_stride - 1`` (8 for 7 and 2; even sizes are centred between voxels, see
            :class:`~monai_sre.blocks.SREEvenConv`) at stride ``stem_stride`` with padding
            ``(stem_kernel_size - 1) / 2``: it reads the same input window as convolution plus pooling, costs
            about what the baseline's strided stem costs, and its output grid is symmetric when every
            spatial size is a multiple of ``stem_stride`` (other sizes are refused). Ignored for
            ``conv_type="standard"`` and ``stem_stride=1``.
        conv_type: ``"sre"`` or ``"standard"``.
        norm: MONAI norm name or ``(name, kwargs)``, e.g. ``"batch"``, ``"instance"``,
            ``("group", {"num_groups": 8})``.
        act: MONAI activation name or ``(name, kwargs)``.
        dropout: dropout probability before the linear head.
        zero_init_residual: zero the last norm's scale in each block (blocks start as identities).
        sre_kwargs: extra keyword arguments for every :class:`SREConv`, e.g. ``{"circular": True}``.
        input_smoothing: sigma (in voxels) of a fixed isotropic Gaussian low-pass
            (:class:`~monai_sre.blocks.GaussianSmoothing`, zero padding) applied to the input before the stem;
            ``None`` (default) applies none. Being part of the model, it is seen alike by training, evaluation,
            rotated views, inference and export. An off-grid rotation's interpolation low-passes the image;
            after this filter, that extra smoothing changes little. The filter is isotropic, so exact
            equivariance to the grid symmetries is kept. State dicts record the value, and loading one into
            a model built with another value is an error.

    Raises:
        ValueError: inconsistent arguments, or an input of the wrong rank or channel count.

    Example::

        >>> net = SREResNet(3, in_channels=1, num_classes=2, kernel_sizes=3, num_bands=2, stem_stride=2)
        >>> net(torch.randn(2, 1, 28, 28, 28)).shape
        torch.Size([2, 2])
        >>> net.forward_features(torch.randn(2, 1, 28, 28, 28)).shape
        torch.Size([2, 512, 2, 2, 2])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        kernel_sizes: Sequence[int] | int = 3,
        num_bands: Sequence[int | None] | int | None = None,
        stem_kernel_size: int = 7,
        stem_num_bands: int | None = None,
        stem_stride: int = 2,
        stem_pool: bool = False,
        stem_channels: int | None = None,
        stem_mode: str = "pool",
        conv_type: str = "sre",
        norm: str | tuple = "batch",
        act: str | tuple = ("relu", {"inplace": True}),
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        sre_kwargs: dict | None = None,
        input_smoothing: float | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {tuple(_BLOCKS)}, got {block!r}.")
        if conv_type not in CONV_TYPES:
            raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {conv_type!r}.")
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(n, int) and n >= 1 for n in layers):
            raise ValueError(f"layers must be a non-empty sequence of positive ints, got {layers!r}.")
        num_stages = len(layers)
        widths = _per_stage("widths", widths, num_stages)
        if any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive, got {widths!r}.")
        kernel_sizes = _per_stage("kernel_sizes", kernel_sizes, num_stages)
        num_bands = _per_stage("num_bands", num_bands, num_stages, allow_none=True)
        if not isinstance(stem_stride, int) or isinstance(stem_stride, bool) or stem_stride < 1:
            raise ValueError(f"stem_stride must be a positive int, got {stem_stride!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        if sre_kwargs is not None and not isinstance(sre_kwargs, dict):
            raise TypeError(f"sre_kwargs must be a dict or None, got {type(sre_kwargs).__name__}.")
        if input_smoothing is not None and (
            isinstance(input_smoothing, bool) or not isinstance(input_smoothing, (int, float))
            or not 0.0 < float(input_smoothing) < float("inf")
        ):
            raise ValueError(f"input_smoothing must be None or a positive sigma in voxels, got {input_smoothing!r}.")
        if stem_mode not in STEM_MODES:
            raise ValueError(f"stem_mode must be one of {STEM_MODES}, got {stem_mode!r}.")
        stem_channels = widths[0] if stem_channels is None else stem_channels
        if not isinstance(stem_channels, int) or stem_channels < 1:
            raise ValueError(f"stem_channels must be a positive int, got {stem_channels!r}.")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.conv_type = conv_type
        self.widths = tuple(widths)
        self.kernel_sizes = tuple(kernel_sizes)
        sre = conv_type == "sre"
        self.input_smoothing = None if input_smoothing is None else float(input_smoothing)
        # no parameters and a non-persistent kernel: state dicts are the same with or without it
        self.input_filter = (
            nn.Identity() if input_smoothing is None else GaussianSmoothing(spatial_dims, self.input_smoothing)
        )

        strided = sre and stem_stride > 1 and stem_mode == "strided"
        #: the input sizes must be multiples of this (a strided SRE stem); 1: any size
        self.size_multiple = stem_stride if strided else 1
        if strided:
            first = SREEvenConv(
                spatial_dims, in_channels, stem_channels, stem_kernel_size + stem_stride - 1, stride=stem_stride,
                padding=(stem_kernel_size - 1) // 2, bias=False,
            )
        else:
            first = make_conv(
                spatial_dims, in_channels, stem_channels, stem_kernel_size, 1 if sre else stem_stride, conv_type,
                stem_num_bands, sre_kwargs=sre_kwargs,
            )
        stem: list[nn.Module] = [first, get_norm_layer(norm, spatial_dims, stem_channels), get_act_layer(act)]
        if sre and stem_stride > 1 and not strided:
            stem.append(SREAvgPool(spatial_dims, stem_stride))
        if stem_pool:
            stem.append(SREAvgPool(spatial_dims, 2) if sre else Pool[Pool.MAX, spatial_dims](kernel_size=3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)

        block_type = _BLOCKS[block]
        stages: list[nn.Module] = []
        channels = stem_channels
        for i, (n, width, k, bands) in enumerate(zip(layers, widths, kernel_sizes, num_bands)):
            blocks: list[nn.Module] = []
            for j in range(n):
                blocks.append(
                    block_type(
                        spatial_dims, channels, width, kernel_size=k, stride=2 if (i > 0 and j == 0) else 1,
                        conv_type=conv_type, num_bands=bands, norm=norm, act=act, sre_kwargs=sre_kwargs,
                    )
                )
                channels = width * block_type.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = channels

        self.global_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.dropout = nn.Dropout(float(dropout)) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

        if zero_init_residual:
            for m in self.stages.modules():
                if isinstance(m, (SREBasicBlock, SREBottleneck)):
                    norm_layer = m.last_norm()
                    if getattr(norm_layer, "weight", None) is not None:
                        nn.init.zeros_(norm_layer.weight)

    @torch.jit.unused
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None and prefix[:-1] in metadata:
            metadata[prefix[:-1]]["input_smoothing"] = self.input_smoothing

    @torch.jit.unused
    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # the filter has no weights, so a mismatch would load silently and change every prediction; state dicts
        # saved before the option existed carry no entry and are not checked
        if "input_smoothing" in local_metadata and local_metadata["input_smoothing"] != self.input_smoothing:
            error_msgs.append(
                f"input_smoothing: the state dict was saved from a model with input_smoothing="
                f"{local_metadata['input_smoothing']!r}, this model has {self.input_smoothing!r}; build it with the "
                f"same value (bundle id `input_smoothing`)."
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing():  # a trace records the shapes it saw; comparing them only adds tracer warnings
            return
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"SREResNet with spatial_dims={self.spatial_dims} expects input (B, C, *spatial) with "
                f"{self.spatial_dims + 2} dims, got shape {list(x.shape)}."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"SREResNet expects {self.in_channels} input channel(s), got {x.shape[1]} (shape {list(x.shape)})."
            )
        if self.size_multiple > 1 and any(n % self.size_multiple for n in x.shape[2:]):
            raise ValueError(
                f"SREResNet with stem_mode='strided' needs spatial sizes that are multiples of {self.size_multiple} "
                f"(a symmetric output grid), got shape {list(x.shape)}; resize or pad the input, or use "
                f"stem_mode='pool', which takes any size."
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``(B, num_features, *spatial')``, equivariant for ``conv_type="sre"``."""
        self._check_input(x)
        return self.stages(self.stem(self.input_filter(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, dropout and linear layer; ``pre_logits=True`` returns the pooled, invariant features."""
        x = torch.flatten(self.global_pool(x), 1)
        x = self.dropout(x)
        if pre_logits:
            return x
        return self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _build(preset: dict[str, Any], in_channels: int, num_classes: int, kwargs: dict[str, Any]) -> SREResNet:
    args = {**preset, **kwargs}
    spatial_dims = args.pop("spatial_dims")
    return SREResNet(spatial_dims, in_channels, num_classes, **args)


def _sre_2d(depth: int) -> dict[str, Any]:
    block, layers = SRE_RESNET_DEPTHS[depth]
    return {
        "spatial_dims": 2, "block": block, "layers": layers, "kernel_sizes": (9, 9, 5, 5),
        "stem_kernel_size": 5, "stem_stride": 1, "stem_pool": False, "conv_type": "sre",
    }


@register_model()
def sre_resnet10(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """SRE-ResNet-10: the :func:`sre_resnet18` recipe with one basic block per stage."""
    return _build(_sre_2d(10), in_channels, num_classes, kwargs)


@register_model()
def sre_resnet18(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """The paper's 2D SRE-R18 (about 3.99M parameters).

    Basic blocks (2, 2, 2, 2), widths 64-512, stage kernels 9, 9, 5, 5 with the default 5, 5, 3, 3
    bands, a 5x5 SRE stem and no downsampling before the first stage (for 28-224 px MedMNIST).
    Any :class:`SREResNet` argument overrides the preset, e.g. ``spatial_dims=3`` or ``widths``.
    """
    return _build(_sre_2d(18), in_channels, num_classes, kwargs)


@register_model()
def sre_resnet34(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """SRE-ResNet-34: the :func:`sre_resnet18` recipe with (3, 4, 6, 3) basic blocks."""
    return _build(_sre_2d(34), in_channels, num_classes, kwargs)


@register_model()
def sre_resnet50(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """SRE-ResNet-50: the :func:`sre_resnet18` recipe with (3, 4, 6, 3) bottleneck blocks."""
    return _build(_sre_2d(50), in_channels, num_classes, kwargs)


@register_model()
def resnet18(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """2D ResNet-18 baseline with standard convolutions (about 11.17M parameters).

    MedMNIST-style for small images: 3x3 kernels everywhere, a stride-1 3x3 stem and no max pool,
    strided 3x3 convolutions between stages (as torchvision). ``conv_type="sre"`` turns it into a
    3x3 SRE-ResNet-18 with the same layout.
    """
    preset = {
        "spatial_dims": 2, "block": "basic", "layers": (2, 2, 2, 2), "kernel_sizes": 3,
        "stem_kernel_size": 3, "stem_stride": 1, "stem_pool": False, "conv_type": "standard",
    }
    return _build(preset, in_channels, num_classes, kwargs)


def _r3d(conv_type: str, kernel_size: int, num_bands: int | None) -> dict[str, Any]:
    return {
        "spatial_dims": 3, "block": "basic", "layers": (2, 2, 2, 2), "kernel_sizes": kernel_size,
        "num_bands": num_bands, "stem_kernel_size": 7, "stem_stride": 2, "stem_pool": False, "conv_type": conv_type,
    }


@register_model()
def sre_r3d_18(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """The paper's SRE-R3D-18 (Table 2, about 2.62M parameters): R3D-18 with 3x3x3 SRE kernels of 2 bands.

    Same layout as :func:`r3d_18`: an isotropic 7x7x7 SRE stem followed by a symmetric 2x average
    pool (instead of R3D's anisotropic 3x7x7 stride-(1,2,2) stem), basic blocks (2, 2, 2, 2), widths
    64-512, pooling + stride-1 convolutions between stages. ``kernel_sizes`` / ``num_bands`` are
    configurable; see :func:`sre_r3d_18_k5` for 5x5x5 kernels.
    """
    return _build(_r3d("sre", 3, 2), in_channels, num_classes, kwargs)


@register_model()
def sre_r3d_18_k5(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """:func:`sre_r3d_18` with 5x5x5 SRE kernels (3 bands) in every stage (about 3.9M parameters)."""
    return _build(_r3d("sre", 5, None), in_channels, num_classes, kwargs)


@register_model()
def sre_r3d_18_strided(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """:func:`sre_r3d_18` with a strided stem (``stem_mode="strided"``): one symmetric 8x8x8 convolution at stride 2
    instead of a 7x7x7 convolution at full resolution followed by pooling. Same stages and invariance to the 48
    grid symmetries; the stem costs about what R3D-18's does. Input sizes must be even.
    """
    return _build({**_r3d("sre", 3, 2), "stem_mode": "strided"}, in_channels, num_classes, kwargs)


@register_model()
def sre_r3d_18_fullres(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """SRE-R3D-18 in the official SRE-Conv layout: the 7x7x7 SRE stem at stride 1 with no pooling, so stage 1 runs at
    the input resolution (32^3 after the paper's 28 -> 32 resize) and stage 4 at 1/8 of it.

    Same parameters as :func:`sre_r3d_18` (about 2.62M at full widths); about 8x the stage-1 cost of
    :func:`sre_r3d_18`, which pools by 2 after the stem as R3D-18's stride-2 stem does.
    """
    return _build({**_r3d("sre", 3, 2), "stem_stride": 1}, in_channels, num_classes, kwargs)


@register_model()
def r3d_18(in_channels: int = 1, num_classes: int = 2, **kwargs) -> SREResNet:
    """3D ResNet-18 baseline with standard convolutions (about 33.16M parameters).

    7x7x7 stride-2 stem, no max pool, 3x3x3 basic blocks (2, 2, 2, 2), widths 64-512, strided
    downsampling; the parameter count equals MONAI's ``resnet18(spatial_dims=3, n_input_channels=1,
    bias_downsample=False)``. ``conv_type="sre"`` with ``num_bands=2`` gives :func:`sre_r3d_18`.
    """
    return _build(_r3d("standard", 3, None), in_channels, num_classes, kwargs)
