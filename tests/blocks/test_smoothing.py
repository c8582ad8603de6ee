from __future__ import annotations

import pytest
import torch
from monai.networks.layers import GaussianFilter

from monai_sre.blocks import GaussianSmoothing
from monai_sre.utils import grid_symmetries


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("sigma", [0.5, 1.3])
def test_matches_monai_gaussian_filter(spatial_dims, sigma):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *([11] * spatial_dims))
    ref = GaussianFilter(spatial_dims, sigma)(x)
    out = GaussianSmoothing(spatial_dims, sigma)(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_commutes_exactly_with_grid_symmetries(spatial_dims):
    torch.manual_seed(0)
    smooth = GaussianSmoothing(spatial_dims, 0.8)
    x = torch.randn(1, 2, *([9] * spatial_dims))
    for g in grid_symmetries(spatial_dims):
        assert torch.allclose(smooth(g(x)), g(smooth(x)), atol=1e-6)


def test_keeps_a_constant_away_from_the_border_and_lowers_noise():
    x = torch.ones(1, 1, 21, 21)
    out = GaussianSmoothing(2, 1.0)(x)
    torch.testing.assert_close(out[..., 8:13, 8:13], x[..., 8:13, 8:13], atol=1e-4, rtol=0)  # mass within 4.5 sigma
    assert out[0, 0, 0, 0] < 1.0  # zero padding at the border
    torch.manual_seed(0)
    noise = torch.randn(1, 1, 64, 64)
    assert GaussianSmoothing(2, 1.0)(noise).std() < 0.5 * noise.std()


def test_no_state_and_scriptable():
    smooth = GaussianSmoothing(3, 0.7)
    assert smooth.state_dict() == {} and list(smooth.parameters()) == []
    x = torch.randn(2, 1, 7, 7, 7)
    assert torch.equal(torch.jit.script(smooth)(x), smooth(x))
    assert smooth(x.double()).dtype == torch.float64


@pytest.mark.parametrize("args, match", [((4, 1.0), "spatial_dims"), ((2, 0.0), "sigma"), ((2, -1.0), "sigma"),
                                          ((2, float("inf")), "sigma"), ((2, True), "sigma"), ((2, "1"), "sigma")])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        GaussianSmoothing(*args)


def test_bad_input_rank():
    with pytest.raises(ValueError, match="5 dims"):
        GaussianSmoothing(3, 1.0)(torch.randn(1, 1, 8, 8))
