from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn
from monai.networks.nets import resnet18

from monai_sre import SREConv, SREConvTranspose, convert_to_sre, equivariance_error


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
    assert isinstance(new[0], nn.AvgPool2d) and isinstance(new[1], SREConv) and new[1].stride == (1, 1)
    x = torch.randn(1, 3, 16, 16)
    assert new(x).shape == conv(x).shape
    new_max = convert_to_sre(nn.Conv1d(2, 2, 1, stride=2), pool="max")
    assert isinstance(new_max[0], nn.MaxPool1d) and isinstance(new_max[1], nn.Conv1d)


def test_converted_conv_is_equivariant_and_keeps_options():
    model = nn.Sequential(nn.Conv2d(2, 4, 5, padding=2, bias=False, padding_mode="reflect"), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=2))
    sre = convert_to_sre(model, num_bands=2, circular=True)
    first, second = sre[0], sre[2]
    assert first.bias is None and first.padding_mode == "reflect" and first.num_bands == 2 and first.circular
    assert second.groups == 2
    with torch.no_grad():
        assert equivariance_error(sre, torch.randn(1, 2, 12, 12)) < 1e-5


def test_transposed_and_even_kernels(caplog):
    model = nn.Sequential(nn.ConvTranspose3d(4, 2, 3, stride=2, padding=1, output_padding=1), nn.Conv3d(2, 2, 2))
    with caplog.at_level(logging.WARNING, logger="monai_sre.utils.convert"):
        sre = convert_to_sre(model)
    assert isinstance(sre[0], SREConvTranspose) and isinstance(sre[1], nn.Conv3d)
    assert any("even kernel" in r.message for r in caplog.records)
    assert sre(torch.randn(1, 4, 4, 4, 4)).shape == model(torch.randn(1, 4, 4, 4, 4)).shape


def test_bad_pool():
    with pytest.raises(ValueError, match="pool"):
        convert_to_sre(nn.Conv2d(1, 1, 3), pool="median")
