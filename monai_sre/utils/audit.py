"""What :func:`~monai_sre.utils.convert.convert_to_sre` knows about the modules it does not rebuild.

Every module a conversion meets is one of three kinds:

* **equivariant as it is**: pointwise and per-channel layers (activations, normalisation over channels, dropout,
  ``1x1`` layers, ``Linear`` over features, vector quantisation per voxel), global and adaptive pooling, upsampling by integer factors or by
  linear interpolation, attention over the voxels of a feature map without position encoding (MONAI's
  ``SpatialAttentionBlock``), and the SRE layers themselves;
* **made equivariant** by the conversion (convolutions, pooling, padding, MONAI's ``UpCat``: see
  :func:`~monai_sre.utils.convert.convert_to_sre`); or
* **not equivariant, and no SRE layer can make it so**: anything that mixes positions by a learned or
  position-dependent rule. :func:`audit` gives the reason for each.

A container (``Sequential``, ``ModuleList``, a network class) is judged by its children. A module of a type not
listed here that holds its own parameters or buffers with more than one axis is refused (its ``forward`` may use
them per position); its children are still judged. A few MONAI classes are refused for what their ``forward`` does
outside modules (a one-sided ``F.pad`` or crop, a one-voxel shift, a reshape of positions into features). Code inside a ``forward`` that is not a module (``x.view(B, -1)``, ``torch.cat`` with a fixed
grid, ...) cannot be seen; check a converted network with :func:`~monai_sre.utils.equivariance.equivariance_error`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch.nn as nn
from monai.networks.blocks import (
    CrossAttentionBlock,
    PatchEmbed,
    PatchEmbeddingBlock,
    SABlock,
    SpatialAttentionBlock,
    SubpixelUpsample,
)
from monai.networks.blocks.dints_block import FactorizedReduceBlock
from monai.networks.blocks.mednext_block import MedNeXtUpBlock
from monai.networks.layers.simplelayers import Flatten as MonaiFlatten
from monai.networks.layers.vector_quantizer import EMAQuantizer, VectorQuantizer
from monai.networks.layers.simplelayers import Reshape as MonaiReshape
from monai.networks.nets.autoencoderkl import AsymmetricPad
from monai.networks.nets.hovernet import _ResidualBlock as HoVerNetResidualBlock
from monai.networks.nets.regunet import AffineHead
from monai.networks.nets.segresnet import SegResNetVAE
from monai.networks.nets.swin_unetr import PatchMerging, PatchMergingV2, WindowAttention
from monai.networks.nets.varautoencoder import VarAutoEncoder

from monai_sre.blocks.smoothing import GaussianSmoothing
from monai_sre.blocks.sre_conv import SREConvBase
from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_pool import SREAvgPool
from monai_sre.blocks.sre_resample import SREPool

__all__ = ["EQUIVARIANT", "REFUSED", "WALK", "audit"]

#: the module commutes with the grid symmetries as it is; nothing inside it needs converting
EQUIVARIANT = "equivariant"
#: a container: its children decide
WALK = "walk"
#: the module mixes positions by a learned or position-dependent rule
REFUSED = "refused"

Problems = list[tuple[str, str]]

_ACTIVATIONS = tuple(
    c for c in vars(nn.modules.activation).values()
    if isinstance(c, type) and issubclass(c, nn.Module) and c not in (nn.Module, nn.MultiheadAttention)
)
_POINTWISE = (
    *_ACTIVATIONS, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LocalResponseNorm, nn.CrossMapLRN2d,
    nn.modules.dropout._DropoutNd, nn.Identity, nn.Linear, nn.Bilinear, nn.Embedding, nn.ChannelShuffle,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
    SREConvBase, SREEvenConv, SREPool, SREAvgPool, GaussianSmoothing,
    EMAQuantizer, VectorQuantizer,  # the nearest codebook vector of each voxel's features
)
_ATTENTION = (nn.MultiheadAttention, SABlock, CrossAttentionBlock)
_GLOBAL_POOLS = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


def _fixed(reason: str) -> Callable[[str, nn.Module, nn.Module | None], tuple[str, Problems]]:
    return lambda name, m, previous: (REFUSED, [(name, reason)])


def _attention(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    return REFUSED, [(name, f"{type(m).__name__}: attention over a token sequence (patches or positions in raster "
                            f"order, with position information); no SRE layer acts on it")]


def _spatial_attention(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    # flattens the voxels of a feature map into tokens; with no position encoding, attention is equivariant to
    # every permutation of the voxels, grid symmetries included
    if getattr(m.attn, "rel_positional_embedding", None) is not None:
        return REFUSED, [(name, "SpatialAttentionBlock with a relative position embedding: weights depend on offsets")]
    return EQUIVARIANT, []


def _patch_embedding(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    problems = [(f"{name}.patch_embeddings", "patch embedding: cuts the grid into patches (kernel = stride = patch "
                                             "size) that become a sequence of tokens in raster order")]
    if isinstance(getattr(m, "position_embeddings", None), nn.Parameter):
        problems.append((f"{name}.position_embeddings", "learned position embedding: one vector per patch position"))
    return REFUSED, problems


def _flatten(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    if isinstance(previous, _GLOBAL_POOLS) and all(v == 1 for v in _as_list(previous.output_size)):
        return EQUIVARIANT, []
    return REFUSED, [(name, f"{type(m).__name__} that no global pooling precedes: spatial positions become features "
                            f"in a fixed order (a following Linear mixes them by a learned rule)")]


def _layer_norm(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    if len(m.normalized_shape) > 1 and getattr(m, "elementwise_affine", True):
        return REFUSED, [(name, f"{type(m).__name__} over the trailing axes {tuple(m.normalized_shape)} with a weight "
                                f"per position")]
    return EQUIVARIANT, []


def _upsample(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
    if m.mode not in ("nearest", "nearest-exact"):
        return EQUIVARIANT, []  # linear modes place samples symmetrically, align_corners or not
    factors = _as_list(m.scale_factor) if m.scale_factor is not None else []
    if m.size is None and all(float(f).is_integer() for f in factors):
        return EQUIVARIANT, []
    return REFUSED, [(name, f"nearest upsampling to size {m.size} / by {m.scale_factor}: a non-integer factor repeats "
                            f"samples asymmetrically")]


def _flattened_linears(*children: str) -> Callable[[str, nn.Module, nn.Module | None], tuple[str, Problems]]:
    """A network whose forward flattens a feature map into the given ``Linear`` children (``x.view(B, -1)``)."""

    def rule(name: str, m: nn.Module, previous: nn.Module | None) -> tuple[str, Problems]:
        prefix = f"{name}." if name else ""
        return WALK, [(f"{prefix}{child}", f"Linear over the flattened feature map: {type(m).__name__}.forward "
                                           f"reshapes spatial positions into features")
                      for child in children if isinstance(getattr(m, child, None), nn.Linear)]

    return rule


def _as_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


#: (types, rule), first match wins
_RULES: list[tuple[tuple[type, ...], Callable[[str, nn.Module, nn.Module | None], tuple[str, Problems]]]] = [
    ((SpatialAttentionBlock,), _spatial_attention),
    ((PatchEmbeddingBlock,), _patch_embedding),
    ((PatchEmbed,), _fixed("patch embedding: a strided convolution (kernel = stride = patch size) whose patches "
                           "become tokens")),
    ((WindowAttention,), _fixed("window attention with a relative position bias: weights depend on the offset "
                                "between positions")),
    ((PatchMerging, PatchMergingV2), _fixed("patch merging: Linear over the 2x2(x2) neighbours concatenated in a "
                                            "fixed order, which mixes positions by a learned rule")),
    (_ATTENTION, _attention),
    ((SubpixelUpsample,), _fixed("pixel shuffle: channels become positions in a fixed order")),
    ((nn.Flatten, MonaiFlatten), _flatten),
    ((VarAutoEncoder,), _flattened_linears("mu", "logvar", "decodeL")),
    ((SegResNetVAE,), _flattened_linears("vae_fc1", "vae_fc2", "vae_fc3")),
    ((AffineHead,), _fixed("affine head: Linear over the flattened feature map, applied to a fixed coordinate grid")),
    ((AsymmetricPad,), _fixed("pads one side of every axis (F.pad (0, 1)) before a strided convolution")),
    ((MedNeXtUpBlock,), _fixed("its forward pads one side of every axis (F.pad (1, 0)) after the upsampling")),
    ((HoVerNetResidualBlock,), _fixed("its forward crops one side of every axis (x[..., :-1, :-1])")),
    ((FactorizedReduceBlock,), _fixed("its forward shifts the input by one voxel on every axis (x[..., 1:, 1:]) "
                                      "for half of the channels")),
    ((nn.Unflatten, MonaiReshape), _fixed("reshapes features into positions (or positions into features) in a "
                                          "fixed order")),
    ((nn.LayerNorm, nn.RMSNorm), _layer_norm),
    ((nn.Upsample,), _upsample),
    ((nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d), _fixed("max unpooling places values at the positions a max "
                                                              "pooling chose on its asymmetric grid")),
    ((nn.LPPool1d, nn.LPPool2d, nn.LPPool3d), _fixed("power-average pooling has no symmetric counterpart")),
    ((nn.RNNBase,), _fixed("recurrent layer: runs along a sequence axis in one direction")),
    (_POINTWISE, lambda name, m, previous: (EQUIVARIANT, [])),
    ((nn.Sequential, nn.ModuleList, nn.ModuleDict), lambda name, m, previous: (WALK, [])),
]


def audit(name: str, m: nn.Module, previous: nn.Module | None = None) -> tuple[str, Problems]:
    """The kind of a module that the conversion does not rebuild, with the reasons when it is refused.

    Args:
        name: the module's qualified name in the network (used in the reasons).
        m: the module.
        previous: the sibling registered just before it (a ``Flatten`` after global pooling is equivariant).

    Returns:
        ``(kind, problems)``: kind :data:`EQUIVARIANT`, :data:`WALK` or :data:`REFUSED`, and ``[(name, reason)]``
        naming each offending module or tensor.
    """
    for types, rule in _RULES:
        if isinstance(m, types):
            return rule(name, m, previous)
    own = [
        (key, tuple(t.shape))
        for key, t in itertools.chain(m.named_parameters(recurse=False), m.named_buffers(recurse=False))
        if sum(d > 1 for d in t.shape) > 1
    ]
    if own:  # the children are still converted and audited
        return WALK, [(f"{name}.{key}" if name else key, f"{type(m).__name__} is not known to commute with grid symmetries and "
                                           f"holds a {shape} tensor it may apply per position") for key, shape in own]
    return WALK, []
