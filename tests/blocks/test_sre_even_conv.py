from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_sre.blocks.sre_even_conv import SREEvenConv, distance_bands
from monai_sre.utils import equivariance_error, grid_symmetries

# (spatial_dims, kernel_size, expected number of bands)
BAND_CASES = [(1, 2, 1), (2, 2, 1), (3, 2, 1), (2, 4, 3), (3, 4, 4), (2, 3, 3), (3, 3, 4)]
# (kwargs, input_shape, expected_shape)
SHAPE_CASES = [
    ({"spatial_dims": 2, "kernel_size": 2, "stride": 2, "transposed": True}, (1, 4, 5, 6), (1, 3, 10, 12)),
    ({"spatial_dims": 3, "kernel_size": 4, "stride": 2, "padding": 1, "transposed": True}, (1, 4, 5, 5, 5), (1, 3, 10, 10, 10)),
    ({"spatial_dims": 2, "kernel_size": 2}, (1, 4, 7, 7), (1, 3, 6, 6)),
    ({"spatial_dims": 3, "kernel_size": 4, "padding": 1}, (1, 4, 6, 6, 6), (1, 3, 5, 5, 5)),
]


@pytest.mark.parametrize("spatial_dims, k, bands", BAND_CASES)
def test_bands_are_symmetric(spatial_dims, k, bands):
    basis = distance_bands((k,) * spatial_dims, dtype=torch.float64)
    assert basis.shape == (bands, *([k] * spatial_dims))
    assert torch.equal((basis > 0).sum(0), torch.ones((k,) * spatial_dims, dtype=torch.long))  # a partition
    for g in grid_symmetries(spatial_dims):
        assert torch.equal(g(basis), basis)


@pytest.mark.parametrize("kwargs, input_shape, expected_shape", SHAPE_CASES)
def test_shape_and_exact_equivariance(kwargs, input_shape, expected_shape):
    torch.manual_seed(0)
    layer = SREEvenConv(in_channels=4, out_channels=3, dtype=torch.float64, **kwargs)
    x = torch.randn(*input_shape, dtype=torch.float64)
    assert layer(x).shape == expected_shape
    assert equivariance_error(layer, x) < 1e-12


def test_two_tap_transposed_is_pointwise_then_nearest():
    torch.manual_seed(0)
    up = SREEvenConv(3, 4, 2, kernel_size=2, stride=2, transposed=True, dtype=torch.float64)
    x = torch.randn(1, 4, 3, 4, 5, dtype=torch.float64)
    w = up.expanded_kernel()[..., 0, 0, 0].t().reshape(2, 4, 1, 1, 1)  # every tap equal
    expected = F.interpolate(F.conv3d(x, w, up.bias), scale_factor=2, mode="nearest")
    assert torch.allclose(up(x), expected)


def test_plain_even_transposed_conv_is_not_equivariant():
    torch.manual_seed(0)
    plain = torch.nn.ConvTranspose2d(2, 2, 2, stride=2).double()
    assert equivariance_error(plain, torch.randn(1, 2, 6, 6, dtype=torch.float64)) > 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        SREEvenConv(4, 1, 1, 2)
    with pytest.raises(ValueError, match="in_channels"):
        SREEvenConv(2, 0, 1, 2)
    with pytest.raises(ValueError, match="divisible"):
        SREEvenConv(2, 3, 4, 2, groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        SREEvenConv(2, 1, 1, (2, 2, 2))
    with pytest.raises(ValueError, match="expects input"):
        SREEvenConv(2, 1, 1, 2)(torch.zeros(1, 1, 4))
