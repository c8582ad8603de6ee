from __future__ import annotations

import json

import numpy as np
import pytest

from monai_sre.data import make_synthetic_segmentation, segmentation_datalist, segmentation_transforms


def test_deterministic_labelled_and_cached(tmp_path):
    path = make_synthetic_segmentation(str(tmp_path), size=16, n_train=3, n_val=1, n_test=1)
    with np.load(path) as data:
        images, labels = data["train_images"], data["train_labels"]
        assert images.shape == labels.shape == (3, 16, 16, 16)
        assert set(np.unique(labels)) == {0, 1, 2}  # a rod and a plate in every volume
        assert all({1, 2} <= set(np.unique(lab)) for lab in labels)
        assert images[labels == 0].mean() < images[labels > 0].mean()
        assert json.loads(str(data["params"]))["counts"] == [3, 1, 1]
    again = make_synthetic_segmentation(str(tmp_path / "b"), size=16, n_train=3, n_val=1, n_test=1)
    with np.load(path) as a, np.load(again) as b:
        assert np.array_equal(a["train_labels"], b["train_labels"])
    mtime = (tmp_path / "synthetic_seg3d_16.npz").stat().st_mtime_ns
    make_synthetic_segmentation(str(tmp_path), size=16, n_train=3, n_val=1, n_test=1)
    assert (tmp_path / "synthetic_seg3d_16.npz").stat().st_mtime_ns == mtime  # reused, not rewritten


def test_datalists(tmp_path):
    make_synthetic_segmentation(str(tmp_path), size=16, n_train=64, n_val=16, n_test=16)
    items = segmentation_datalist("synthetic_seg3d", "val", str(tmp_path), size=16)
    assert len(items) == 16 and items[0]["image"].shape == (1, 16, 16, 16) and items[0]["image"].max() <= 1.0
    out = segmentation_transforms("synthetic_seg3d")(items[0])
    assert tuple(out["label"].shape) == (1, 16, 16, 16)
    (tmp_path / "dl.json").write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}))
    files = segmentation_datalist(str(tmp_path / "dl.json"), "train")
    assert files == [{"image": str(tmp_path / "a.nii.gz"), "label": str(tmp_path / "b.nii.gz")}]
    with pytest.raises(ValueError, match="'validation' list"):
        segmentation_datalist(str(tmp_path / "dl.json"), "val")
    with pytest.raises(ValueError, match="split"):
        segmentation_datalist("synthetic_seg3d", "holdout")
    with pytest.raises(ValueError, match="dataset"):
        segmentation_datalist(str(tmp_path / "missing.json"), "train")
    with pytest.raises(ValueError, match="size"):
        make_synthetic_segmentation(str(tmp_path), size=8)
