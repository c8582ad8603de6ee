from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn
from monai.networks import nets
from monai.networks.nets import resnet18

from monai_sre import SREConv, SREConvTranspose, convert_to_sre, equivariance_error
from monai_sre.blocks.sre_conv import set_algorithm
from monai_sre.utils import GridSymmetry, grid_symmetries
from monai_sre.utils.convert import SREConversionError, SREConversionWarning
from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_resample import SREPool


def _plain_convs(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def test_monai_resnet18_3d(caplog):
    net = resnet18(spatial_dims=3, n_input_channels=1, num_classes=2)
    with caplog.at_level(logging.INFO, logger="monai_sre.utils.convert"):
        sre = convert_to_sre(net)
    assert any("replaced" in r.message for r in caplog.records)
    for m in _plain_convs(sre):
        assert max(m.kernel_size) == 1 and max(m.stride) == 1, m
    assert all(max(m.stride) == 1 for m in sre.modules() if isinstance(m, SREConv))
    assert sum(isinstance(m, SREConv) for m in sre.modules()) == 17  # stem + 16 block convs
    assert isinstance(_plain_convs(net)[0], nn.Conv3d)  # the original is untouched
    x = torch.randn(2, 1, 16, 16, 16)
    out = sre(x)
    assert out.shape == (2, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in sre.parameters() if p.requires_grad)
    assert sum(p.numel() for p in sre.parameters()) < 0.15 * sum(p.numel() for p in net.parameters())


def test_strided_conv_becomes_pool_then_stride1():
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    new = convert_to_sre(conv)
    assert isinstance(new, nn.Sequential)
    assert isinstance(new[0], SREPool) and isinstance(new[1], SREConv) and new[1].stride == (1, 1)
    for side in (16, 15):
        x = torch.randn(1, 3, side, side)
        assert new(x).shape == conv(x).shape
        with torch.no_grad():
            assert equivariance_error(new, x) < 1e-5
    new_max = convert_to_sre(nn.Conv1d(2, 2, 1, stride=2), pool="max")
    assert isinstance(new_max[0], SREPool) and new_max[0].mode == "max" and isinstance(new_max[1], nn.Conv1d)


def test_converted_conv_is_equivariant_and_keeps_options():
    model = nn.Sequential(nn.Conv2d(2, 4, 5, padding=2, bias=False, padding_mode="reflect"), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=2))
    sre = convert_to_sre(model, num_bands=2, circular=True)
    first, second = sre[0], sre[2]
    assert first.bias is None and first.padding_mode == "reflect" and first.num_bands == 2 and first.circular
    assert second.groups == 2
    with torch.no_grad():
        assert equivariance_error(sre, torch.randn(1, 2, 12, 12)) < 1e-5


def test_transposed_and_even_kernels():
    model = nn.Sequential(
        nn.ConvTranspose3d(4, 2, 3, stride=2, padding=1, output_padding=1), nn.Conv3d(2, 2, 2),
        nn.ConvTranspose3d(2, 2, 3, stride=2, padding=1),
    )
    sre = convert_to_sre(model)
    # output_padding 1 is absorbed by a 4-tap kernel; the plain even convolution gets a symmetric kernel
    assert isinstance(sre[0], SREEvenConv) and sre[0].kernel_size == (4,) * 3 and sre[0].padding == (1,) * 3
    assert isinstance(sre[1], SREEvenConv) and isinstance(sre[2], SREConvTranspose)
    x = torch.randn(1, 4, 5, 5, 5)
    assert sre(x).shape == model(x).shape
    with torch.no_grad():
        assert equivariance_error(sre, x) < 1e-5
        assert equivariance_error(model, x) > 1e-3


def test_bad_pool():
    with pytest.raises(ValueError, match="pool"):
        convert_to_sre(nn.Conv2d(1, 1, 3), pool="median")


# MONAI's networks, small; (name, builder, input sides the original accepts: odd ones where it accepts any)
def _monai_nets(dims):
    return [
        ("UNet", lambda: nets.UNet(dims, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1), (16,)),
        ("BasicUNet", lambda: nets.BasicUNet(dims, 1, 2, features=(4, 4, 4, 8, 8, 4)), (32, 33) if dims == 2 else (32,)),
        ("DynUNet", lambda: nets.DynUNet(dims, 1, 2, [3, 3, 3], [1, 2, 2], [2, 2], filters=[4, 8, 16]), (16,)),
        ("SegResNet", lambda: nets.SegResNet(dims, init_filters=8, blocks_down=(1, 1, 2), blocks_up=(1, 1)), (16,)),
        ("AttentionUnet", lambda: nets.AttentionUnet(dims, 1, 2, channels=(4, 8, 16), strides=(2, 2)), (16,)),
        ("DenseNet121", lambda: nets.DenseNet121(dims, 1, 2, init_features=4, growth_rate=4, block_config=(1, 1, 1, 1)),
         (32, 33)),
        ("EfficientNetBN", lambda: nets.EfficientNetBN("efficientnet-b0", spatial_dims=dims, in_channels=1, num_classes=2,
                                                          pretrained=False),
         (33,) if dims == 2 else (32,)),
    ]


MONAI_CASES = [
    pytest.param(name, builder, 2, sides, id=f"{name}-2d", marks=[pytest.mark.slow] if name == "EfficientNetBN" else [])
    for name, builder, sides in _monai_nets(2)
] + [
    pytest.param(name, builder, 3, sides, id=f"{name}-3d", marks=pytest.mark.slow) for name, builder, sides in _monai_nets(3)
]


def _norm_shapes(net, x):
    shapes, hooks = {}, []

    def record(name):
        def hook(module, inputs, output):
            shapes.setdefault(name, tuple(output.shape))

        return hook

    for name, m in net.named_modules():
        if "Norm" in type(m).__name__:
            hooks.append(m.register_forward_hook(record(name)))
    net(x)
    for h in hooks:
        h.remove()
    return shapes


# generators of the 48 symmetries of the cube: a transposition, a 3-cycle of the axes and one flip; a
# function that commutes with these commutes with all their products (test_all_48_symmetries checks one net)
GENERATORS_3D = [GridSymmetry((1, 0, 2), ()), GridSymmetry((1, 2, 0), ()), GridSymmetry((0, 1, 2), (0,))]


@pytest.mark.parametrize("name, builder, spatial_dims, sides", MONAI_CASES)
def test_monai_network_becomes_exactly_equivariant(name, builder, spatial_dims, sides):
    """Segmentation outputs equivariant, logits invariant, to the grid symmetries (all 8 in 2D,
    generators of the 48 in 3D), at even and odd spans, with every intermediate size unchanged."""
    torch.manual_seed(0)
    net = builder().eval()
    sre = convert_to_sre(net, algorithm="dense").eval()
    with torch.no_grad():
        for i, side in enumerate(sides):
            x = torch.randn(1, 1, *([side] * spatial_dims))
            assert _norm_shapes(sre, x) == _norm_shapes(net, x), "an intermediate size changed"
            assert sre(x).shape == net(x).shape
            assert equivariance_error(sre, x, None if spatial_dims == 2 else GENERATORS_3D) <= 1e-4, (name, side)
            if i == 0:
                assert equivariance_error(net, x, grid_symmetries(spatial_dims)[:4]) > 1e-3


def test_all_48_symmetries_3d():
    torch.manual_seed(0)
    net = nets.DynUNet(3, 1, 2, [3, 3, 3], [1, 2, 2], [2, 2], filters=[4, 8, 16]).eval()
    sre = convert_to_sre(net).eval()
    set_algorithm(sre, "dense")
    with torch.no_grad():
        assert equivariance_error(sre, torch.randn(1, 1, 12, 12, 12)) <= 1e-4


class _Shuffler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.head = nn.Conv2d(1, 1, 3, stride=2, padding=(1, 2))

    def forward(self, x):
        return self.head(self.pad(self.shuffle(self.conv(x))))


def test_strict_names_every_module_that_cannot_be_exact():
    with pytest.raises(SREConversionError, match="shuffle: PixelShuffle") as info:
        convert_to_sre(_Shuffler())
    names = [n for n, _ in info.value.problems]
    assert sorted(names) == ["head", "pad", "shuffle"]
    assert "asymmetric padding" in str(info.value) and "anisotropic" in str(info.value)
    with pytest.warns(SREConversionWarning, match="3 module") as caught:
        sre, report = convert_to_sre(_Shuffler(), strict=False, return_report=True)
    assert len(caught) == 1  # one warning for the call, naming all three
    assert report.non_equivariant == info.value.problems and not report.equivariant
    assert any("conv: Conv2d" in line for line in report.replaced)
    assert isinstance(sre.conv, SREConv) and isinstance(sre.head, nn.Conv2d) and isinstance(sre.pad, nn.ConstantPad2d)
    with pytest.raises(TypeError, match="strict"):
        convert_to_sre(_Shuffler(), strict="no")
    with pytest.raises(TypeError, match="return_report"):
        convert_to_sre(_Shuffler(), strict=False, return_report=1)


class _PositionWeighted(nn.Module):
    """A custom layer with a weight per position, which no conversion can see through."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.per_position = nn.Parameter(torch.randn(1, 2, 8, 8))

    def forward(self, x):
        return self.conv(x) * self.per_position


def test_unknown_module_with_its_own_spatial_weights_is_refused_and_its_children_still_converted():
    with pytest.raises(SREConversionError, match=r"per_position: _PositionWeighted is not known"):
        convert_to_sre(nn.Sequential(_PositionWeighted()))
    with pytest.warns(SREConversionWarning):
        sre, report = convert_to_sre(nn.Sequential(_PositionWeighted()), strict=False, return_report=True)
    assert [name for name, _ in report.non_equivariant] == ["0.per_position"]
    assert isinstance(sre[0].conv, SREConv)
    # a per-channel tensor is fine
    layer = _PositionWeighted()
    layer.per_position = nn.Parameter(torch.randn(1, 2, 1, 1))
    _, report = convert_to_sre(layer, return_report=True)
    assert report.equivariant


def test_readme_unetr_is_refused_naming_its_patch_and_position_embeddings_and_attention():
    from monai.networks.nets import UNETR

    net = UNETR(1, 2, img_size=32, feature_size=8, hidden_size=96, mlp_dim=192, num_heads=4)
    with pytest.raises(SREConversionError) as info:
        convert_to_sre(net)
    names = [name for name, _ in info.value.problems]
    assert names[:2] == ["vit.patch_embedding.patch_embeddings", "vit.patch_embedding.position_embeddings"]
    assert names[2:] == [f"vit.blocks.{i}.attn" for i in range(12)]
    with pytest.warns(SREConversionWarning):
        sre, report = convert_to_sre(net, strict=False, return_report=True)
    assert [name for name, _ in report.non_equivariant] == names
    assert isinstance(sre.encoder1.layer.conv1.conv, SREConv)  # the convolutional decoder and encoders are converted


def test_asymmetric_padding_merged_into_the_next_convolution():
    model = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(2, 3, 3, stride=2))
    sre = convert_to_sre(model)
    assert isinstance(sre[0], nn.Identity)
    for side in (8, 9, 12):
        x = torch.randn(1, 2, side, side)
        assert sre(x).shape == model(x).shape
        with torch.no_grad():
            assert equivariance_error(sre, x) < 1e-5
    with pytest.raises(SREConversionError, match="0: asymmetric padding"):
        convert_to_sre(nn.Sequential(nn.ReflectionPad2d((0, 1, 0, 1)), nn.Conv2d(2, 3, 3, stride=2)))
