from __future__ import annotations

import pytest
import torch

from monai_sre.utils import GridSymmetry, equivariance_error, grid_symmetries


@pytest.mark.parametrize("spatial_dims, n, n_rot", [(1, 2, 1), (2, 8, 4), (3, 48, 24)])
def test_group_sizes_and_distinct_actions(spatial_dims, n, n_rot):
    syms = grid_symmetries(spatial_dims)
    assert len(syms) == n and len(grid_symmetries(spatial_dims, rotations_only=True)) == n_rot
    probe = torch.arange(3**spatial_dims).reshape(1, 1, *([3] * spatial_dims))
    images = {tuple(g(probe).flatten().tolist()) for g in syms}
    assert len(images) == n
    assert syms[0] == GridSymmetry(tuple(range(spatial_dims)), ())


def test_rotations_match_rot90():
    x = torch.randn(1, 1, 5, 5)
    rot = {tuple(g(x).flatten().tolist()) for g in grid_symmetries(2, rotations_only=True)}
    assert rot == {tuple(torch.rot90(x, k, (2, 3)).flatten().tolist()) for k in range(4)}


def test_invariance_and_error_detection():
    x = torch.randn(2, 1, 6, 6, 6)
    assert equivariance_error(lambda t: t.mean(dim=(2, 3, 4)), x) < 1e-6
    assert equivariance_error(lambda t: t * 2, x) == 0.0
    assert equivariance_error(lambda t: t[:, :, :3].mean(dim=(2, 3, 4)), x) > 1e-3


def test_bad_dims():
    with pytest.raises(ValueError, match="spatial_dims"):
        grid_symmetries(4)
