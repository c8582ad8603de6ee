from __future__ import annotations

import itertools

import pytest
import torch

from monai_sre.layers import band_basis, band_index, default_num_bands, expand_kernel
from monai_sre.utils import grid_symmetries

SYMMETRIC_CASES = [
    # (kernel_size, num_bands, circular)
    ((3,), None, False),
    ((9,), None, False),
    ((3, 3), None, False),
    ((5, 5), None, True),
    ((9, 9), None, False),
    ((9, 9), 3, False),
    ((3, 3, 3), None, False),
    ((5, 5, 5), None, True),
    ((7, 7, 7), 4, False),
    ((9, 9, 9), None, False),
]


def _distances(kernel_size, spacing=None):
    spacing = spacing or (1.0,) * len(kernel_size)
    coords = [(torch.arange(k, dtype=torch.float64) - k // 2) * s for k, s in zip(kernel_size, spacing)]
    grids = torch.meshgrid(*coords, indexing="ij")
    return torch.sqrt(sum(g * g for g in grids))


@pytest.mark.parametrize("kernel_size, num_bands, circular", SYMMETRIC_CASES)
def test_band_index_has_every_grid_symmetry(kernel_size, num_bands, circular):
    index = band_index(kernel_size, num_bands, circular=circular)
    assert index.shape == kernel_size
    for g in grid_symmetries(len(kernel_size)):
        assert torch.equal(g(index), index), g


@pytest.mark.parametrize("kernel_size, num_bands, circular", SYMMETRIC_CASES)
def test_bands_are_monotone_in_distance(kernel_size, num_bands, circular):
    index = band_index(kernel_size, num_bands, circular=circular).flatten()
    dist = _distances(kernel_size).flatten()
    kept = index >= 0
    # a farther tap never sits in an inner band, equal distances share a band
    for i, j in itertools.combinations(torch.nonzero(kept).flatten().tolist(), 2):
        if abs(dist[i] - dist[j]) < 1e-12:
            assert index[i] == index[j]
        elif dist[i] < dist[j]:
            assert index[i] <= index[j]
        else:
            assert index[i] >= index[j]
    assert index[len(index) // 2] == 0  # centre tap


def test_default_bands_round_distance_in_voxels():
    index = band_index((9, 9, 9))
    dist = _distances((9, 9, 9))
    inside = dist <= 4.5
    assert torch.equal(index[inside], torch.round(dist[inside]).long())
    assert (index[~inside] == 4).all()
    assert default_num_bands((9, 9, 9)) == 5 and default_num_bands(3, spatial_dims=3) == 2


def test_paper_3x3x3_kernel_has_two_bands():
    index = band_index(3, spatial_dims=3)
    assert index.max() == 1 and index[1, 1, 1] == 0 and (index.flatten().bincount() == torch.tensor([1, 26])).all()


def test_circular_drops_corners():
    index = band_index((9, 9), circular=True)
    dist = _distances((9, 9))
    assert torch.equal(index < 0, dist > 4.5)


def test_spacing_follows_millimetres():
    spacing = (1.0, 1.0, 3.0)
    index = band_index((9, 9, 3), spacing=spacing)
    dist = _distances((9, 9, 3), spacing)
    # in-plane symmetries (swap the two 1 mm axes, flip any axis) are kept
    for g in grid_symmetries(3):
        if g.perm[2] == 2:
            assert torch.equal(g(index), index), g
    # a tap 3 mm away along the thick axis shares the band of taps 3 mm away in-plane
    assert index[4, 4, 0] == index[4, 1, 1] == index[1, 4, 1] == 3
    # the bands follow the millimetre distance
    order = torch.argsort(dist.flatten())
    assert (index.flatten()[order].diff() >= 0).all()


def test_isotropic_spacing_matches_voxel_bands():
    assert torch.equal(band_index((7, 7, 7), spacing=2.5), band_index((7, 7, 7)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel_size": (4, 4)}, "odd"),
        ({"kernel_size": (3, 0)}, "odd"),
        ({"kernel_size": (3, 3), "num_bands": 5}, "empty"),
        ({"kernel_size": (9, 9), "num_bands": 0}, "at least 1"),
        ({"kernel_size": (3, 3, 3), "spacing": (1.0, 1.0)}, "one value per kernel axis"),
        ({"kernel_size": (3, 3), "spacing": (1.0, -1.0)}, "positive"),
        ({"kernel_size": 3}, "spatial_dims"),
    ],
)
def test_bad_geometry_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        band_index(**kwargs)


def test_basis_is_one_hot_and_expands():
    basis = band_basis((5, 5), dtype=torch.float64)
    assert basis.shape == (3, 5, 5)
    assert torch.equal(basis.sum(0), torch.ones(5, 5, dtype=torch.float64))
    weight = torch.randn(4, 2, 3, dtype=torch.float64)
    kernel = expand_kernel(weight, basis)
    index = band_index((5, 5))
    assert torch.equal(kernel, weight[:, :, index])


@pytest.mark.parametrize("spatial_dims, kernel_size", [(2, 7), (3, 5)])
@pytest.mark.parametrize("profile", ["partial", "linear", "gaussian"])
@pytest.mark.parametrize("circular", [False, True])
def test_smooth_profiles_keep_every_grid_symmetry_and_split_taps(spatial_dims, kernel_size, profile, circular):
    basis = band_basis(kernel_size, spatial_dims=spatial_dims, profile=profile, circular=circular,
                       dtype=torch.float64)
    hard = band_basis(kernel_size, spatial_dims=spatial_dims, circular=circular, dtype=torch.float64)
    assert basis.shape == hard.shape
    for g in grid_symmetries(spatial_dims):
        assert torch.equal(g(basis.unsqueeze(0))[0], basis)
    assert not torch.equal(basis, hard)  # smoother than the hard masks ...
    total = basis.sum(0)
    if profile != "gaussian" and not circular:  # ... and a partition of every tap between bands
        torch.testing.assert_close(total, torch.ones_like(total))
    elif profile != "gaussian":  # circular: what lies beyond the outer band fades out
        assert total.max() <= 1 + 1e-12 and total[(slice(1, -1),) * spatial_dims].min() > 0
    unit = band_basis(kernel_size, spatial_dims=spatial_dims, profile=profile, circular=circular,
                      dtype=torch.float64, norm="orthonormal")
    torch.testing.assert_close(unit.flatten(1).norm(dim=1), torch.ones(len(unit), dtype=torch.float64))


def test_profile_and_soft_band_count_errors_name_the_argument():
    with pytest.raises(ValueError, match="profile"):
        band_basis(3, spatial_dims=2, profile="smooth")
    with pytest.raises(ValueError, match="empty"):
        band_basis(7, 7, spatial_dims=2, profile="linear")
