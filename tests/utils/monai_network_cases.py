"""Every network class of ``monai.networks.nets``, built small, with what ``convert_to_sre`` makes of it.

``CASES`` drives ``test_convert_monai_networks.py`` and the table of ``docs/conversion.md`` (``render_table``);
``python tests/utils/monai_network_cases.py`` rewrites that page from this data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from monai.networks import nets

TABLE_PATH = Path(__file__).resolve().parents[2] / "docs" / "conversion.md"


def _first(out):
    """The main output of networks that return several (a tuple, a list, a dict)."""
    if isinstance(out, dict):
        return next(iter(out.values()))
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


@dataclass(frozen=True)
class Case:
    """One network class, built small.

    Attributes:
        name: the class name in ``monai.networks.nets``.
        build: ``spatial_dims -> network``.
        dims: the spatial dims the class supports.
        side: the input's side length.
        refused_by: fragments of the reasons ``SREConversionError`` must give; empty when the converted network
            must be exactly equivariant.
        call: ``(network, x) -> main output`` (networks with more inputs or outputs).
        in_channels: input channels.
        covers: other classes of ``monai.networks.nets`` that are this one with other defaults (same modules).
        perturb: add noise to every parameter after conversion (layers initialised to zero would make the output
            trivially equivariant).
        slow: too large for the default test run (``pytest -m slow``).
    """

    name: str
    build: Callable[[int], nn.Module]
    dims: tuple[int, ...]
    side: int
    refused_by: tuple[str, ...] = ()
    call: Callable[[nn.Module, torch.Tensor], torch.Tensor] = lambda net, x: _first(net(x))
    in_channels: int = 1
    covers: tuple[str, ...] = ()
    perturb: bool = False
    slow: bool = False


_ATTENTION = "attention over a token sequence"
_PATCHES = "patch embedding"
_POSITIONS = "position embedding"
_ANISOTROPIC = "anisotropic geometry"
_FLATTEN = "spatial positions become features"
_FLATTENED = "Linear over the flattened feature map"
_SMALL_VIT = {"hidden_size": 16, "mlp_dim": 16, "num_layers": 1, "num_heads": 2}


def _densenet(d: int) -> nn.Module:
    return nets.DenseNet(d, 1, 2, init_features=4, growth_rate=4, block_config=(1, 1), bn_size=2)


def _dints(d: int) -> nn.Module:
    space = nets.TopologyInstance(channel_mul=0.25, num_blocks=2, num_depths=2, spatial_dims=d)
    return nets.DiNTS(space, in_channels=1, num_classes=2, spatial_dims=d)


def _highresnet(d: int) -> nn.Module:
    params = ({"name": "conv_0", "n_features": 4, "kernel_size": 3},
              {"name": "res_1", "n_features": 4, "kernels": (3, 3), "repeat": 1},
              {"name": "res_2", "n_features": 8, "kernels": (3, 3), "repeat": 1},
              {"name": "conv_1", "n_features": 8, "kernel_size": 1},
              {"name": "conv_2", "kernel_size": 1})
    return nets.HighResNet(d, 1, 2, layer_params=params)


def _efficientnet(d: int) -> nn.Module:
    blocks = ["r1_k3_s11_e1_i8_o8_se0.25", "r1_k3_s22_e2_i8_o8_se0.25", "r1_k5_s22_e2_i8_o8_se0.25"]
    return nets.EfficientNet(blocks, spatial_dims=d, in_channels=1, num_classes=2, width_coefficient=0.25,
                             depth_coefficient=1.0, image_size=16)


def _diffusion_call(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x, timesteps=torch.full((x.shape[0],), 3, dtype=torch.long))


_DIFFUSION = {"num_res_blocks": 1, "channels": (8, 8), "attention_levels": (False, True), "norm_num_groups": 4,
              "num_head_channels": 8}

CASES: list[Case] = [
    Case("AHNet", lambda d: nets.AHNet(layers=(1, 1, 1, 1), spatial_dims=d, in_channels=1, out_channels=2,
                                       psp_block_num=0), (2, 3), 32, refused_by=(_ANISOTROPIC,)),
    Case("AttentionUnet", lambda d: nets.AttentionUnet(d, 1, 2, channels=(4, 8, 16), strides=(2, 2)), (2, 3), 16),
    Case("AutoEncoder", lambda d: nets.AutoEncoder(d, 1, 1, channels=(4, 8), strides=(2, 2)), (2, 3), 16),
    Case("AutoencoderKL", lambda d: nets.AutoencoderKL(d, 1, 1, num_res_blocks=1, channels=(8, 8),
                                                       attention_levels=(False, True), norm_num_groups=4),
         (2, 3), 16, call=lambda net, x: net.decode(net.encode(x)[0]), refused_by=("pads one side",)),
    Case("BasicUNet", lambda d: nets.BasicUNet(d, 1, 2, features=(4, 4, 4, 8, 8, 4)), (2, 3), 32),
    Case("BasicUNetPlusPlus", lambda d: nets.BasicUNetPlusPlus(d, 1, 2, features=(4, 4, 4, 8, 8, 4)), (2, 3), 32),
    Case("Classifier", lambda d: nets.Classifier((1,) + (16,) * d, 2, channels=(4, 8), strides=(2, 2)), (2, 3), 16,
         refused_by=(_FLATTEN,)),
    Case("ControlNet", lambda d: nets.ControlNet(d, 1, conditioning_embedding_num_channels=(8,), **_DIFFUSION),
         (2, 3), 16, call=lambda net, x: net(x, torch.full((x.shape[0],), 3), controlnet_cond=x)[1], perturb=True),
    Case("Critic", lambda d: nets.Critic((1,) + (16,) * d, channels=(4, 8), strides=(2, 2)), (2, 3), 16,
         refused_by=(_FLATTEN,)),
    Case("DAF3D", lambda d: nets.DAF3D(1, 2), (3,), 32, refused_by=(_ANISOTROPIC,)),
    Case("DenseNet", _densenet, (2, 3), 16, covers=("DenseNet121", "DenseNet169", "DenseNet201", "DenseNet264")),
    Case("DiffusionModelUNet", lambda d: nets.DiffusionModelUNet(d, 1, 1, **_DIFFUSION), (2, 3), 16,
         call=_diffusion_call, perturb=True),
    Case("DiNTS", _dints, (2, 3), 16, refused_by=("shifts the input by one voxel",)),
    Case("Discriminator", lambda d: nets.Discriminator((1,) + (16,) * d, channels=(4, 8), strides=(2, 2)), (2, 3),
         16, refused_by=(_FLATTEN,)),
    Case("DynUNet", lambda d: nets.DynUNet(d, 1, 2, [3, 3, 3], [1, 2, 2], [2, 2], filters=[4, 8, 16]), (2, 3), 16),
    Case("EfficientNet", _efficientnet, (2, 3), 16,
         covers=("EfficientNetBN", "EfficientNetBNFeatures", "EfficientNetEncoder")),
    Case("FlexibleUNet", lambda d: nets.FlexibleUNet(1, 2, "efficientnet-b0", spatial_dims=d,
                                                     decoder_channels=(8, 8, 8, 8, 8)), (2,), 32),
    Case("GlobalNet", lambda d: nets.GlobalNet([16] * d, d, 1, num_channel_initial=4, depth=2), (2, 3), 16,
         refused_by=("affine head",)),
    Case("HighResNet", _highresnet, (2, 3), 16),
    Case("HoVerNet", lambda d: nets.HoVerNet(in_channels=1, np_out_channels=2), (2,), 256,
         refused_by=("crops one side",)),
    Case("LocalNet", lambda d: nets.LocalNet(d, 1, 4, extract_levels=(0, 1, 2)), (2, 3), 16),
    Case("MaskedAutoEncoderViT", lambda d: nets.MaskedAutoEncoderViT(1, 16, 8, spatial_dims=d, decoder_hidden_size=24,
                                                                     decoder_mlp_dim=16, decoder_num_layers=1,
                                                                     decoder_num_heads=2, hidden_size=24, mlp_dim=16,
                                                                     num_layers=1, num_heads=2),
         (2, 3), 16, refused_by=(_PATCHES, _POSITIONS, _ATTENTION)),
    Case("MedNeXt", lambda d: nets.MedNeXt(d, init_filters=4, in_channels=1, out_channels=2, kernel_size=3,
                                           blocks_down=(1, 1), blocks_bottleneck=1, blocks_up=(1, 1)), (2, 3), 16,
         refused_by=("pads one side",)),
    Case("MultiScalePatchDiscriminator", lambda d: nets.MultiScalePatchDiscriminator(
        2, 2, d, channels=4, in_channels=1, minimum_size_im=32), (2, 3), 32,
        call=lambda net, x: net(x)[0][-1]),
    Case("NaViT", lambda d: nets.NaViT(16, 8, 2, in_channels=1, spatial_dims=d, **_SMALL_VIT), (2, 3), 16,
         refused_by=("pos_embed_axes",)),
    Case("PatchDiscriminator", lambda d: nets.PatchDiscriminator(d, 4, 1, num_layers_d=2), (2, 3), 16,
         call=lambda net, x: net(x)[-1]),
    Case("Quicknat", lambda d: nets.Quicknat(num_classes=2, num_channels=1, num_filters=4, kernel_size=3), (2,), 16,
         refused_by=("return_indices",)),
    Case("RegUNet", lambda d: nets.RegUNet(d, 1, 4, depth=2), (2, 3), 16),
    Case("Regressor", lambda d: nets.Regressor((1,) + (16,) * d, (2,), channels=(4, 8), strides=(2, 2)), (2, 3), 16,
         refused_by=(_FLATTEN,)),
    Case("ResNet", lambda d: nets.ResNet("basic", [1, 1, 1, 1], [4, 8, 8, 8], spatial_dims=d, n_input_channels=1,
                                         num_classes=2), (2, 3), 16,
         covers=("ResNetFeatures", "ResNetEncoder")),
    Case("SENet", lambda d: nets.SENet(d, 1, "se_resnet_bottleneck", (1, 1, 1, 1), groups=1, reduction=2,
                                       inplanes=8, input_3x3=False, downsample_kernel_size=1, num_classes=2),
         (2, 3), 32, covers=("SENet154", "SEResNet50", "SEResNet101", "SEResNet152", "SEResNext50", "SEResNext101")),
    Case("SegResNet", lambda d: nets.SegResNet(d, init_filters=8, blocks_down=(1, 1, 2), blocks_up=(1, 1)), (2, 3), 16),
    Case("SegResNetDS", lambda d: nets.SegResNetDS(d, init_filters=4, blocks_down=(1, 1, 1)), (2, 3), 16),
    Case("SegResNetDS2", lambda d: nets.SegResNetDS2(d, init_filters=4, blocks_down=(1, 1, 1)), (2, 3), 16),
    Case("SegResNetVAE", lambda d: nets.SegResNetVAE((16,) * d, spatial_dims=d, init_filters=8, blocks_down=(1, 1, 2),
                                                     blocks_up=(1, 1), vae_nz=8), (2, 3), 16, refused_by=(_FLATTENED,)),
    Case("SwinUNETR", lambda d: nets.SwinUNETR(1, 2, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), feature_size=12,
                                               spatial_dims=d), (2, 3), 32,
         refused_by=(_PATCHES, "window attention", "patch merging")),
    Case("UNETR", lambda d: nets.UNETR(1, 2, img_size=32, feature_size=4, hidden_size=24, mlp_dim=16, num_heads=2,
                                       spatial_dims=d), (2, 3), 32,
         refused_by=(_PATCHES, _POSITIONS, _ATTENTION)),
    Case("UNet", lambda d: nets.UNet(d, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1), (2, 3), 16),
    Case("VarAutoEncoder", lambda d: nets.VarAutoEncoder(d, (1,) + (16,) * d, 1, 4, channels=(4, 8), strides=(2, 2)),
         (2, 3), 16, refused_by=(_FLATTENED,)),
    Case("ViT", lambda d: nets.ViT(1, 32, 16, spatial_dims=d, **_SMALL_VIT), (2, 3), 32,
         refused_by=(_PATCHES, _POSITIONS, _ATTENTION)),
    Case("ViTAutoEnc", lambda d: nets.ViTAutoEnc(1, 32, 16, spatial_dims=d, deconv_chns=4, **_SMALL_VIT), (2, 3), 32,
         refused_by=(_PATCHES, _POSITIONS, _ATTENTION)),
    Case("VNet", lambda d: nets.VNet(d, 1, 2), (2, 3), 16),
    Case("VoxelMorphUNet", lambda d: nets.VoxelMorphUNet(d, 2, 4, channels=(4, 8, 8, 8), final_conv_channels=(4, 4)),
         (2, 3), 16, in_channels=2),
    Case("VQVAE", lambda d: nets.VQVAE(d, 1, 1, channels=(4, 8), num_res_layers=1, num_res_channels=(4, 8),
                                       downsample_parameters=((2, 4, 1, 1),) * 2,
                                       upsample_parameters=((2, 4, 1, 1, 0),) * 2, num_embeddings=8, embedding_dim=4),
         (2, 3), 16),
]

#: classes of ``monai.networks.nets`` not walked, and why
NOT_BUILT: dict[str, str] = {
    "BertAttention": "a text (BERT) layer, not an image network",
    "BertMixedLayer": "a text (BERT) layer, not an image network",
    "BertOutput": "a text (BERT) layer, not an image network",
    "BertPreTrainedModel": "a text (BERT) base class, not an image network",
    "DecoderOnlyTransformer": "a token-sequence model, not an image network",
    "FullyConnectedNet": "takes vectors, not images",
    "VarFullyConnectedNet": "takes vectors, not images",
    "Generator": "takes a latent vector, not an image",
    "MultiModal": "text and image (Transchex's fusion module)",
    "Pooler": "a text (BERT) layer, not an image network",
    "Transchex": "needs text tokens with the image",
    "HighResBlock": "a block of HighResNet (covered there)",
    "ResNetBlock": "a block of ResNet (covered there)",
    "ResNetBottleneck": "a block of ResNet (covered there)",
    "PatchMerging": "a layer of SwinUNETR (covered there)",
    "PatchMergingV2": "a layer of SwinUNETR (covered there)",
    "TopologyConstruction": "a DiNTS search-space base class (DiNTS is covered)",
    "TopologyInstance": "a DiNTS search space, not a network (DiNTS is covered)",
    "TopologySearch": "a DiNTS search space, not a network (DiNTS is covered)",
    "HyenaNDUNETR": "needs the optional Hyena operator dependencies",
    "MILModel": "takes bags of 2D images through a torchvision backbone, (B, N, C, H, W)",
    "NetAdapter": "wraps a given network (its outcome is that network's)",
    "TorchVisionFCModel": "wraps a torchvision network (2D ImageNet models)",
    "SPADEAutoencoderKL": "needs a segmentation map as a second input (SPADE)",
    "SPADEDiffusionModelUNet": "needs a segmentation map as a second input (SPADE)",
    "SPADENet": "needs a segmentation map as a second input (SPADE)",
    "VISTA3D": "assembled from an encoder and prompt heads given by the caller",
    "VoxelMorph": "integrates a displacement field on a fixed coordinate grid (its UNet is covered)",
}


def network_classes() -> dict[str, type]:
    """The distinct ``nn.Module`` classes of ``monai.networks.nets`` by their own name (aliases dropped)."""
    out: dict[str, type] = {}
    for value in vars(nets).values():
        if inspect.isclass(value) and issubclass(value, nn.Module):
            out.setdefault(value.__name__, value)
    return out


def render_table() -> str:
    """``docs/conversion.md``: one row per network class, from ``CASES`` and ``NOT_BUILT``."""
    rows = []
    for case in sorted(CASES, key=lambda c: c.name.lower()):
        dims = " / ".join(f"{d}D" for d in case.dims)
        if case.refused_by:
            outcome = "refused; the error gives, among its reasons: " + "; ".join(f"*{r}*" for r in case.refused_by)
        else:
            outcome = "exactly equivariant after conversion"
        also = f" (also {', '.join(case.covers)})" if case.covers else ""
        rows.append(f"| {case.name}{also} | {dims} | {outcome} |")
    skipped = [f"| {name} | {reason} |" for name, reason in sorted(NOT_BUILT.items(), key=lambda kv: kv[0].lower())]
    return "\n".join([
        "# `convert_to_sre` on MONAI's networks",
        "",
        "<!-- Generated by `python tests/utils/monai_network_cases.py` from the cases that",
        "     tests/utils/test_convert_monai_networks.py checks; do not edit by hand. -->",
        "",
        "Every network class of `monai.networks.nets`, built with small arguments, in each spatial dimensionality it",
        "supports. *Exactly equivariant*: after `convert_to_sre(net)`, `equivariance_error` over all grid symmetries",
        "(8 in 2D, 48 in 3D) is at float32 rounding level (relative error at most 1e-5) in eval mode; logits are",
        "invariant. *Refused*: `convert_to_sre(net)` raises `SREConversionError`, which names every module that no",
        "SRE layer can make equivariant and the reason (the column gives the reasons the test requires);",
        "`convert_to_sre(net, strict=False, return_report=True)` converts the rest and returns them in the report.",
        "",
        "| network | dims | outcome |",
        "|---|---|---|",
        *rows,
        "",
        "Classes of `monai.networks.nets` not walked:",
        "",
        "| class | why |",
        "|---|---|",
        *skipped,
        "",
    ])


if __name__ == "__main__":
    TABLE_PATH.write_text(render_table())
