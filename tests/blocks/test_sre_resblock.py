from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from monai.networks import eval_mode

from monai_sre.blocks import SREBasicBlock, SREBottleneck, SREConv
from monai_sre.blocks.sre_resblock import make_conv
from monai_sre.utils import equivariance_error

# (block, kwargs, input_shape, expected_shape)
TEST_CASES = [
    (SREBasicBlock, {"spatial_dims": 2, "in_channels": 4, "width": 4}, (2, 4, 9, 9), (2, 4, 9, 9)),
    (SREBasicBlock, {"spatial_dims": 2, "in_channels": 4, "width": 8, "stride": 2, "kernel_size": 5}, (2, 4, 9, 9), (2, 8, 5, 5)),
    (SREBasicBlock, {"spatial_dims": 3, "in_channels": 4, "width": 8, "stride": 2}, (2, 4, 7, 7, 7), (2, 8, 4, 4, 4)),
    (SREBottleneck, {"spatial_dims": 2, "in_channels": 8, "width": 2, "kernel_size": 5}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (SREBottleneck, {"spatial_dims": 3, "in_channels": 4, "width": 4, "stride": 2}, (2, 4, 9, 9, 9), (2, 16, 5, 5, 5)),
]


@pytest.mark.parametrize("block, kwargs, input_shape, expected_shape", TEST_CASES)
@pytest.mark.parametrize("conv_type", ["sre", "standard"])
def test_shape(block, kwargs, input_shape, expected_shape, conv_type):
    net = block(conv_type=conv_type, **kwargs)
    with eval_mode(net):
        assert net(torch.randn(input_shape)).shape == expected_shape


@pytest.mark.parametrize("block, kwargs, input_shape, expected_shape", TEST_CASES)
def test_sre_block_is_equivariant_and_standard_is_not(block, kwargs, input_shape, expected_shape):
    torch.manual_seed(0)
    x = torch.randn(input_shape)
    sre, std = block(conv_type="sre", **kwargs), block(conv_type="standard", **kwargs)
    with eval_mode(sre, std):
        err = equivariance_error(sre, x, chunk_size=48)
        std_err = equivariance_error(std, x, chunk_size=48)
    assert err < 1e-5
    assert std_err > max(1e-3, 100 * err)


@pytest.mark.parametrize("block", [SREBasicBlock, SREBottleneck])
def test_sre_block_downsamples_by_pooling_only(block):
    net = block(3, 4, 8, kernel_size=3, stride=2)
    convs = [m for m in net.modules() if isinstance(m, (SREConv, nn.Conv3d))]
    assert convs and all(all(s == 1 for s in m.stride) for m in convs)
    assert any(isinstance(m, SREConv) for m in convs)
    std = block(3, 4, 8, kernel_size=3, stride=2, conv_type="standard")
    assert not any(isinstance(m, SREConv) for m in std.modules())
    assert any(isinstance(m, nn.Conv3d) and m.stride == (2, 2, 2) for m in std.modules())


def test_make_conv():
    assert isinstance(make_conv(2, 3, 4, 5, num_bands=2), SREConv)
    assert make_conv(2, 3, 4, 5, num_bands=2).num_bands == 2
    assert type(make_conv(2, 3, 4, 1)) is nn.Conv2d
    assert make_conv(3, 3, 4, 3, stride=2, conv_type="standard").stride == (2, 2, 2)
    with pytest.raises(ValueError, match="stride must be 1"):
        make_conv(2, 3, 4, 3, stride=2)
    with pytest.raises(ValueError, match="conv_type"):
        make_conv(2, 3, 4, 3, conv_type="dense")
    with pytest.raises(ValueError, match="odd"):
        make_conv(2, 3, 4, 4)
    with pytest.raises(TypeError):
        make_conv(2, 3, 4, 3, sre_kwargs={"no_such_option": 1})


def test_block_bad_arguments():
    with pytest.raises(ValueError, match="stride"):
        SREBasicBlock(2, 4, 4, stride=0)
    with pytest.raises(ValueError, match="in_channels"):
        SREBottleneck(2, 0, 4)
