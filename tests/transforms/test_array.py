"""RotateAxis on single channel-first samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sre.transforms import RotateAxis
from monai_sre.transforms.rotation import rotate_batch, torchio_rotate

AXES_3D = [0, 1, 2]


@pytest.mark.parametrize("axis", AXES_3D)
@pytest.mark.parametrize("backend", ["torchio", "monai"])
def test_rotate_axis_90_equals_rot90(axis, backend):
    x = torch.rand(2, 12, 12, 12)
    p, q = [i for i in range(3) if i != axis]
    ref = torch.rot90(x, 1, dims=(1 + p, 1 + q))
    assert torch.equal(RotateAxis(90, axis, mode="nearest", backend=backend)(x), ref)
    lin = RotateAxis(90, axis, mode="linear", backend=backend)(x)
    assert (lin - ref)[:, 1:-1, 1:-1, 1:-1].abs().max() <= 1e-5


@pytest.mark.parametrize("axis", AXES_3D)
def test_rotate_axis_360_and_fixed_axis(axis):
    x = torch.rand(1, 12, 12, 12)
    assert torch.allclose(RotateAxis(360, axis)(x), x)
    # a structure constant along the fixed axis stays constant along it, and the projection onto that axis is kept
    line = torch.zeros(1, 12, 12, 12)
    idx = [slice(None)] * 4
    idx[1 + axis] = slice(None)
    others = [i for i in range(3) if i != axis]
    idx[1 + others[0]], idx[1 + others[1]] = slice(4, 8), slice(5, 7)
    line[tuple(idx)] = 1.0
    y = RotateAxis(30, axis)(line)
    assert not torch.allclose(y, line)
    slices = y.movedim(1 + axis, 1)[0]
    assert torch.allclose(slices, slices[:1].expand_as(slices), atol=1e-6)


def test_rotate_axis_2d_types_and_errors():
    x = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    y = RotateAxis(90, mode="nearest")(x)
    assert isinstance(y, np.ndarray) and np.array_equal(y, np.rot90(x, 1, axes=(1, 2)))
    m = MetaTensor(torch.as_tensor(x), meta={"filename_or_obj": "a.nii"})
    ym = RotateAxis(45)(m)
    assert isinstance(ym, MetaTensor) and ym.meta["filename_or_obj"] == "a.nii"
    with pytest.raises(ValueError, match="axis must be None"):
        RotateAxis(30, axis=0)(x)
    with pytest.raises(ValueError, match="axis must be the fixed spatial axis"):
        RotateAxis(30, axis=3)
    with pytest.raises(ValueError, match="mode"):
        RotateAxis(30, axis=0, mode="cubic")
    with pytest.raises(TypeError, match="angle"):
        RotateAxis("30", axis=0)


@pytest.mark.parametrize("angle", [float("nan"), float("inf"), -float("inf")])
def test_rotate_axis_refuses_non_finite_angles(angle):
    x = torch.rand(1, 8, 8, 8)
    with pytest.raises(ValueError, match="angle must be a finite number of degrees"):
        RotateAxis(angle, axis=0)  # TorchIO would return an all-zero volume
    with pytest.raises(ValueError, match="finite"):
        torchio_rotate(x, angle, axis=0)
    with pytest.raises(ValueError, match="finite"):
        rotate_batch(x[None], angle, axis=0)
