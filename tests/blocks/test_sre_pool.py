from __future__ import annotations

import pytest
import torch

from monai_sre.blocks.sre_pool import SREAvgPool, symmetric_pool_geometry
from monai_sre.utils import equivariance_error

# (spatial_dims, factor, side)
TEST_CASES = [(d, f, n) for d in (1, 2, 3) for f in (2, 3) for n in (1, 2, 3, 5, 7, 8, 10)]


@pytest.mark.parametrize("spatial_dims, factor, side", TEST_CASES)
def test_shape_and_exact_equivariance(spatial_dims, factor, side):
    torch.manual_seed(0)
    pool = SREAvgPool(spatial_dims, factor)
    x = torch.randn(2, 3, *([side] * spatial_dims), dtype=torch.float64)
    y = pool(x)
    assert y.shape == (2, 3, *([-(-side // factor)] * spatial_dims))
    assert equivariance_error(pool, x) < 1e-12


@pytest.mark.parametrize("side", [5, 7, 28 // 4])
def test_plain_avg_pool_breaks_on_odd_sizes(side):
    # the failure SREAvgPool exists for: torch's floor-mode pooling drops the last sample
    x = torch.randn(1, 1, side, side, dtype=torch.float64)
    assert equivariance_error(torch.nn.AvgPool2d(2), x) > 1e-3
    assert equivariance_error(SREAvgPool(2, 2), x) < 1e-12


@pytest.mark.parametrize("size, factor", [(n, f) for n in range(1, 20) for f in (1, 2, 3, 4)])
def test_geometry_is_a_mirror_symmetric_tiling(size, factor):
    kernel, pad = symmetric_pool_geometry(size, factor)
    out = -(-size // factor)
    starts = [-pad + j * factor for j in range(out)]
    windows = [(s, s + kernel - 1) for s in starts]
    mirrored = sorted((size - 1 - b, size - 1 - a) for a, b in windows)
    assert windows == mirrored
    covered = {i for a, b in windows for i in range(max(a, 0), min(b, size - 1) + 1)}
    assert covered == set(range(size))
    assert 2 * pad <= kernel


def test_average_value_and_script():
    pool = SREAvgPool(2, 2)
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    # 3x3 windows centred on even samples, padding not counted: corners average their 2x2 block
    expected = torch.tensor([[[[2.0, 3.0], [5.0, 6.0]]]])
    torch.testing.assert_close(pool(x), expected)
    scripted = torch.jit.script(pool)
    torch.testing.assert_close(scripted(x), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        SREAvgPool(4, 2)
    with pytest.raises(ValueError, match="factor"):
        SREAvgPool(2, 0)
    with pytest.raises(ValueError, match="expects input"):
        SREAvgPool(3, 2)(torch.randn(1, 1, 4, 4))
