"""Dictionary wrappers: keys, shallow copy and aliases."""

from __future__ import annotations

import torch

from monai_sre.transforms import (
    RotateAxis,
    RotateAxisd,
    RotateAxisD,
    RotateAxisDict,
)


def test_rotate_axisd_keys_and_copy():
    img, seg = torch.rand(1, 10, 10, 10), (torch.rand(1, 10, 10, 10) > 0.5).float()
    data = {"image": img, "seg": seg, "label": 1}
    out = RotateAxisd(["image", "seg"], 90, axis=0, mode=["linear", "nearest"])(data)
    assert out is not data and data["image"] is img  # input untouched
    assert torch.equal(out["seg"], torch.rot90(seg, 1, dims=(2, 3)))
    assert torch.allclose(out["image"], RotateAxis(90, 0)(img))
    assert out["label"] == 1
    assert RotateAxisD is RotateAxisd and RotateAxisDict is RotateAxisd
    assert RotateAxisd("missing", 30, 0, allow_missing_keys=True)({"image": img})["image"] is img

