"""The embedded synthetic set: format, determinism, atomic reuse, and orientation-free classes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from monai_sre.data import dataset_info, get_dataset, make_synthetic, synthetic_name


def _principal_extents(img: np.ndarray) -> np.ndarray:
    """Sorted standard deviations of the bright voxels along their principal axes (rotation invariant)."""
    pts = np.argwhere(img > 128).astype(float)
    return np.sort(np.sqrt(np.linalg.eigvalsh(np.cov(pts.T))))


@pytest.mark.parametrize("dims", [2, 3])
def test_format_and_determinism(tmp_path, dims):
    kw = {"n_train": 6, "n_val": 4, "n_test": 4, "seed": 1}
    path = make_synthetic(tmp_path / "a", spatial_dims=dims, **kw)
    assert path.endswith(synthetic_name(dims))
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    assert arrays["train_images"].shape == (6,) + (28,) * dims and arrays["train_images"].dtype == np.uint8
    assert arrays["test_labels"].shape == (4, 1) and set(arrays["train_labels"].ravel()) == {0, 1}
    with np.load(make_synthetic(tmp_path / "b", spatial_dims=dims, **kw)) as g:
        for k, v in arrays.items():
            assert np.array_equal(v, g[k])
    with np.load(make_synthetic(tmp_path / "c", spatial_dims=dims, **{**kw, "seed": 2})) as g:
        assert not np.array_equal(arrays["train_images"], g["train_images"])


def test_reuse_and_regenerate(tmp_path):
    path = make_synthetic(tmp_path, 3, n_train=2, n_val=2, n_test=2)
    mtime = (tmp_path / "synthetic3d.npz").stat().st_mtime_ns
    assert make_synthetic(tmp_path, 3, n_train=2, n_val=2, n_test=2) == path
    assert (tmp_path / "synthetic3d.npz").stat().st_mtime_ns == mtime
    make_synthetic(tmp_path, 3, n_train=4, n_val=2, n_test=2)
    with np.load(path) as f:
        assert len(f["train_labels"]) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic3d.npz"]  # no temp files left
    assert make_synthetic(tmp_path, 2, size=32, n_train=2, n_val=2, n_test=2).endswith("synthetic2d_32.npz")
    with pytest.raises(ValueError, match="spatial_dims"):
        make_synthetic(tmp_path, 4)


def test_classes_are_shapes_not_orientations(tmp_path):
    """Rods have one long principal axis, plates two: a rotation-invariant criterion separates the classes,
    and every object fits in the central sphere (so the paper's rotations do not clip it)."""
    path = make_synthetic(tmp_path, 3, n_train=40, n_val=0, n_test=0)
    with np.load(path) as f:
        images, labels = f["train_images"], f["train_labels"][:, 0]
    ratio = np.array([(lambda e: e[1] / e[2])(_principal_extents(im)) for im in images])  # middle / largest
    assert ratio[labels == 0].max() < ratio[labels == 1].min()
    coords = np.stack(np.meshgrid(*[np.arange(28)] * 3, indexing="ij"))
    outside = ((coords - 13.5) ** 2).sum(0) > 13.5**2
    assert images[:, outside].max() < 128


def test_get_dataset_synthetic(tmp_path):
    ds = get_dataset("synthetic2d", "val", root=tmp_path)
    item = ds[0]
    assert item["image"].shape == (1, 28, 28) and item["image"].dtype == torch.float32
    assert isinstance(item["label"], int) and 0.0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1.0
    info = dataset_info("synthetic3d")
    assert info == {"spatial_dims": 3, "in_channels": 1, "num_classes": 2, "task": "binary-class",
                    "label_names": ["rod", "plate"]}
    with pytest.raises(ValueError, match="split"):
        get_dataset("synthetic3d", "dev", root=tmp_path)
    with pytest.raises(ValueError, match="name"):
        get_dataset("imagenet", "train", root=tmp_path)


def test_truncated_cache_is_regenerated(tmp_path, caplog):
    path = make_synthetic(tmp_path, spatial_dims=2, size=16, n_train=4, n_val=2, n_test=2)
    good = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(good[: len(good) // 2])  # a run killed while copying the cache
    with caplog.at_level("WARNING"):
        assert make_synthetic(tmp_path, spatial_dims=2, size=16, n_train=4, n_val=2, n_test=2) == path
    assert "regenerating unreadable synthetic file" in caplog.text and open(path, "rb").read() == good


def test_get_dataset_rejects_an_empty_split(tmp_path):
    path = make_synthetic(tmp_path, spatial_dims=2, size=28, n_train=4, n_val=0, n_test=2)
    os.replace(path, tmp_path / "breastmnist.npz")  # MedMNIST format, read through the MedMNIST code path
    assert len(get_dataset("breastmnist", "train", root=tmp_path)) == 4
    with pytest.raises(ValueError, match="'val' split of dataset 'breastmnist' is empty"):
        get_dataset("breastmnist", "val", root=tmp_path)
