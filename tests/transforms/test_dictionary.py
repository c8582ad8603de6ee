"""Dictionary wrappers: keys, shallow copy, aliases and shared random draws."""

from __future__ import annotations

import numpy as np
import torch

from monai_sre.transforms import (
    RandRotateAxisd,
    RandRotateMatrixd,
    RotateAxis,
    RotateAxisd,
    RotateAxisD,
    RotateAxisDict,
    RotateMatrixd,
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


def test_rotate_matrixd():
    img = torch.rand(1, 8, 8)
    out = RotateMatrixd("image", np.array([[0.0, -1.0], [1.0, 0.0]]), mode="nearest")({"image": img})
    assert torch.equal(out["image"], torch.rot90(img, 1, dims=(1, 2)))


def test_random_dict_same_draw_for_all_keys():
    img = torch.rand(1, 10, 10, 10)
    for t in (RandRotateAxisd(["a", "b"], prob=1.0), RandRotateMatrixd(["a", "b"], prob=1.0)):
        t.set_random_state(1)
        out = t({"a": img, "b": img.clone()})
        assert torch.equal(out["a"], out["b"]) and not torch.allclose(out["a"], img)
    t0 = RandRotateAxisd(["a"], prob=0.0)
    assert t0({"a": img})["a"] is img
