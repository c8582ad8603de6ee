from __future__ import annotations

import pytest
import torch
from monai.networks import eval_mode

from monai_sre.blocks.sre_conv import SREConv
from monai_sre.nets import SREUNet, get_segmentation_model, list_models, list_segmentation_models
from monai_sre.nets.segmentation_registry import register_segmentation_model
from monai_sre.utils import GridSymmetry, equivariance_error

FEATURES = (4, 4, 8, 16, 4)
DENSE = {"algorithm": "dense"}  # skip the timing of "auto": same function, faster tests
# generators of the 48 cube symmetries (a transposition, a 3-cycle, one flip): commuting with them
# means commuting with all 48; the 2D cases check all 8 directly
GENERATORS_3D = [GridSymmetry((1, 0, 2), ()), GridSymmetry((1, 2, 0), ()), GridSymmetry((0, 1, 2), (0,))]
# (kwargs, input_shape, expected_shape)
SHAPE_CASES = [
    ({"spatial_dims": 2, "in_channels": 1, "out_channels": 3}, (2, 1, 32, 32), (2, 3, 32, 32)),
    ({"spatial_dims": 2, "in_channels": 2, "out_channels": 2}, (1, 2, 33, 21), (1, 2, 33, 21)),
    ({"spatial_dims": 3, "in_channels": 1, "out_channels": 2}, (1, 1, 16, 17, 9), (1, 2, 16, 17, 9)),
    ({"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "conv_type": "standard"}, (1, 1, 16, 17, 9), (1, 2, 16, 17, 9)),
]
# (spatial_dims, side): even and odd sizes at every level
EQUIVARIANCE_CASES = [(2, 32), (2, 27), (3, 16), (3, 20)]


@pytest.mark.parametrize("kwargs, input_shape, expected_shape", SHAPE_CASES)
def test_shape(kwargs, input_shape, expected_shape):
    net = SREUNet(features=FEATURES, sre_kwargs=DENSE, **kwargs)
    with eval_mode(net):
        assert net(torch.randn(*input_shape)).shape == expected_shape


@pytest.mark.parametrize("spatial_dims, side", EQUIVARIANCE_CASES)
def test_segmentation_is_exactly_equivariant(spatial_dims, side):
    torch.manual_seed(0)
    x = torch.randn(1, 1, *([side] * spatial_dims))
    syms = None if spatial_dims == 2 else GENERATORS_3D
    sre = get_segmentation_model("sre_unet", spatial_dims=spatial_dims, features=FEATURES, sre_kwargs=DENSE)
    base = get_segmentation_model("plain_unet", spatial_dims=spatial_dims, features=FEATURES)
    with eval_mode(sre, base):
        assert equivariance_error(sre, x, syms) < 1e-4
        assert equivariance_error(base, x, syms) > 1e-3


def test_registered_and_trains():
    assert {"sre_unet", "plain_unet"} <= set(list_segmentation_models())
    assert not {"sre_unet", "plain_unet"} & set(list_models())  # the classifier registry stays classifiers only
    with pytest.raises(ValueError, match="already registered"):
        register_segmentation_model("plain_unet")(lambda **kw: None)
    with pytest.raises(ValueError, match="unknown model 'vnet'"):
        get_segmentation_model("vnet")
    torch.manual_seed(0)
    sre = get_segmentation_model("sre_unet", spatial_dims=2, in_channels=1, out_channels=2, features=FEATURES, sre_kwargs=DENSE)
    base = get_segmentation_model("plain_unet", spatial_dims=2, in_channels=1, out_channels=2, features=FEATURES)
    assert any(isinstance(m, SREConv) for m in sre.modules()) and not any(isinstance(m, SREConv) for m in base.modules())
    assert sum(p.numel() for p in sre.parameters()) < 0.5 * sum(p.numel() for p in base.parameters())
    out = sre(torch.randn(2, 1, 16, 16))
    out.sum().backward()
    assert all(p.grad is not None for p in sre.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        SREUNet(4)
    with pytest.raises(ValueError, match="conv_type"):
        SREUNet(2, conv_type="gmr")
    with pytest.raises(ValueError, match="features"):
        SREUNet(2, features=(8, 8))
    with pytest.raises(ValueError, match="out_channels"):
        SREUNet(2, out_channels=0)
    with pytest.raises(ValueError, match="kernel_size"):
        SREUNet(2, kernel_size=2)
    with pytest.raises(ValueError, match="expects input"):
        SREUNet(2, features=FEATURES)(torch.randn(1, 1, 8))
