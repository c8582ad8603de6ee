"""Rotation convention, paper protocol, and agreement of the batched (MONAI affine) and TorchIO paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_sre.transforms import (
    reflection_protocol,
    rotate,
    rotate_batch,
    rotate_matrix_batch,
    rotation_matrix,
    rotation_protocol,
    torchio_rotate,
)

AXES_3D = [0, 1, 2]


def _blobs(spatial_dims: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random volume (sum of Gaussians), one channel, intensity range about [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * spatial_dims, indexing="ij"))
    img = torch.zeros((size,) * spatial_dims)
    for _ in range(6):
        c = (torch.rand(spatial_dims, generator=g) * 0.6 + 0.2) * (size - 1)
        s = 1.5 + 2.5 * torch.rand(1, generator=g)
        d2 = ((coords - c.view(-1, *[1] * spatial_dims)) ** 2).sum(0)
        img += torch.rand(1, generator=g) * torch.exp(-d2 / (2 * s**2))
    return (img / img.max())[None]


def _central_sphere(size: int, spatial_dims: int, frac: float = 0.8) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * spatial_dims, indexing="ij"))
    r = ((coords - (size - 1) / 2) ** 2).sum(0).sqrt()
    return r <= frac * size / 2


def test_protocols():
    p3 = rotation_protocol(3)
    assert len(p3) == 39 and {a for a, _ in p3} == {0, 1, 2}
    assert sorted({ang for _, ang in p3}) == list(range(0, 361, 30))
    p2 = rotation_protocol(2)
    assert len(p2) == 37 and all(a is None for a, _ in p2) and p2[1][1] == 10
    assert reflection_protocol(3) == [0, 1, 2] and reflection_protocol(2) == [0, 1]
    with pytest.raises(ValueError, match="spatial_dims"):
        rotation_protocol(4)


@pytest.mark.parametrize("axis", AXES_3D)
def test_rotation_matrix_is_rotation(axis):
    r = rotation_matrix(30, axis, 3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    assert r[axis, axis] == 1.0  # fixed axis
    np.testing.assert_array_equal(rotation_matrix(90, axis) @ rotation_matrix(-90, axis), np.eye(3))


@pytest.mark.parametrize("axis", AXES_3D)
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_torchio_rot90_exact(axis, mode):
    x = torch.rand(2, 10, 10, 10)
    p, q = [i for i in range(3) if i != axis]
    for k in (1, 2, 3):
        y = torchio_rotate(x, 90 * k, axis, mode=mode)
        ref = torch.rot90(x, k, dims=(1 + p, 1 + q))
        if mode == "nearest":
            assert torch.equal(y, ref)
        else:
            assert (y - ref)[:, 1:-1, 1:-1, 1:-1].abs().max() <= 1e-5


def test_torchio_2d_and_identity():
    x = torch.rand(1, 12, 12)
    assert torch.equal(torchio_rotate(x, 90, None, mode="nearest"), torch.rot90(x, 1, dims=(1, 2)))
    assert torch.equal(torchio_rotate(x, 360, None), x)
    with pytest.raises(ValueError, match="axis must be None"):
        torchio_rotate(x, 30, 0)
    with pytest.raises(ValueError, match="axis must be"):
        torchio_rotate(torch.rand(1, 8, 8, 8), 30, None)


@pytest.mark.parametrize("axis", AXES_3D)
def test_rotate_batch_matches_rot90_and_general_path(axis):
    x = torch.rand(2, 1, 12, 12, 12)
    p, q = [i for i in range(3) if i != axis]
    assert torch.equal(rotate_batch(x, 90, axis), torch.rot90(x, 1, dims=(2 + p, 2 + q)))
    # the interpolating affine path itself (no rot90 shortcut) gives the same turn
    y = rotate_matrix_batch(x, rotation_matrix(90, axis))
    assert (y - torch.rot90(x, 1, dims=(2 + p, 2 + q))).abs().max() <= 1e-5
    assert torch.allclose(rotate_batch(x, 360, axis), x)


@pytest.mark.parametrize("axis", AXES_3D)
def test_rotate_batch_vs_torchio(axis):
    """Mean |batched - TorchIO| inside the central sphere <= 1% of the intensity range, every 30 degrees."""
    size = 20
    x = _blobs(3, size)
    mask = _central_sphere(size, 3)
    rng = float(x.max() - x.min())
    for angle in range(0, 361, 30):
        a = rotate_batch(x[None], angle, axis)[0]
        b = torchio_rotate(x, angle, axis)
        err = float((a - b)[:, mask].abs().mean()) / rng
        assert err <= 0.01, (axis, angle, err)
        if angle % 90:  # the rotation does move the image
            assert float((a - x)[:, mask].abs().mean()) / rng > 0.01


def test_rotate_batch_vs_torchio_2d():
    size = 32
    x = _blobs(2, size, seed=1)
    mask = _central_sphere(size, 2)
    for angle in range(0, 361, 30):
        a = rotate_batch(x[None], angle)[0]
        b = torchio_rotate(x, angle)
        assert float((a - b)[:, mask].abs().mean()) <= 0.01


def test_rotate_backends_agree():
    x = _blobs(3, 16)[None].repeat(2, 1, 1, 1, 1)
    mask = _central_sphere(16, 3)
    a = rotate(x, 60, 1)  # CPU -> TorchIO
    b = rotate(x, 60, 1, backend="monai")
    assert a.shape == x.shape and float((a - b)[..., mask].abs().mean()) <= 0.01
    with pytest.raises(ValueError, match="backend"):
        rotate(x, 30, 0, backend="scipy")


def test_rotate_matrix_batch_composition():
    x = _blobs(3, 16)[None]
    r = rotation_matrix(90, 0) @ rotation_matrix(90, 2)
    y = rotate_matrix_batch(x, r, mode="nearest")
    ref = rotate_batch(rotate_batch(x, 90, 2), 90, 0)
    assert torch.equal(y, ref)
    with pytest.raises(ValueError, match="matrix must have shape"):
        rotate_matrix_batch(x, np.eye(2))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_rotate_batch_cuda_matches_cpu():
    x = _blobs(3, 16)[None]
    a = rotate_batch(x.cuda(), 30, 1).cpu()
    b = rotate_batch(x, 30, 1)
    assert (a - b).abs().max() <= 1e-4
    assert rotate(x.cuda(), 30, 1).is_cuda
