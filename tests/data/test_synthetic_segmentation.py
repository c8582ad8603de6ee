from __future__ import annotations

import json
import os

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
    import nibabel as nib

    for name in ("a.nii.gz", "b.nii.gz"):  # the files are checked: they must exist and match
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(tmp_path / name))
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


def _pairs(tmp_path, n=3, shape=(8, 8, 8)):
    """``n`` good 8^3 image/label pairs on one grid (labels 0..2, float32 on disk) and their datalist entries."""
    import nibabel as nib

    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        nib.save(nib.Nifti1Image(rng.random(shape).astype(np.float32), affine), str(tmp_path / f"img{i}.nii.gz"))
        label = (np.arange(np.prod(shape)).reshape(shape) % 3).astype(np.float32)
        nib.save(nib.Nifti1Image(label, affine), str(tmp_path / f"lab{i}.nii.gz"))
        entries.append({"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz"})
    return entries


def _spoil(tmp_path, problem):
    """Rewrite ``lab1.nii.gz`` with one problem; returns the pattern its error must match."""
    import nibabel as nib

    path = str(tmp_path / "lab1.nii.gz")
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    if problem == "shape":
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 6), np.uint8), affine), path)
        return r"entry 1: label .*lab1.nii.gz has shape \(8, 8, 6\) but its image .*img1.nii.gz has \(8, 8, 8\)"
    if problem == "affine":
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.diag([1.5, 1.5, 3.0, 1.0])), path)
        return r"entry 1: label .*lab1.nii.gz and its image .*img1.nii.gz have affines differing by up to 1 "
    if problem == "fractional":
        nib.save(nib.Nifti1Image(np.resize(np.float32([0, 0.5, 1]), (8, 8, 8)), affine), path)
        return r"entry 1: label .*lab1.nii.gz holds non-integer values \(0.5\)"
    if problem in ("too_large", "negative"):
        value = 5 if problem == "too_large" else -1
        nib.save(nib.Nifti1Image(np.resize(np.int16([0, 1, value]), (8, 8, 8)), affine), path)
        return rf"entry 1: label .*lab1.nii.gz holds values {value} outside the classes 0..2 \(num_classes=3\)"
    if problem == "missing":
        os.remove(path)
        return r"entry 1: label file not found: .*lab1.nii.gz"
    raw = open(path, "rb").read()  # truncated: the header reads, the voxels do not
    open(path, "wb").write(raw[: len(raw) // 2])
    return r"entry 1: label .*lab1.nii.gz cannot be read"


@pytest.mark.parametrize("problem", ["shape", "affine", "fractional", "too_large", "negative", "missing", "truncated"])
def test_segmentation_datalist_is_checked_entry_by_entry(tmp_path, problem):
    entries = _pairs(tmp_path)
    (tmp_path / "dl.json").write_text(json.dumps({"training": entries, "validation": entries[:1]}))
    assert len(segmentation_datalist(str(tmp_path / "dl.json"), "train", num_classes=3)) == 3  # all good
    error = _spoil(tmp_path, problem)
    for split in ("train", "val"):  # every split is checked, whichever one is asked for
        with pytest.raises(ValueError, match=r"datalist .*dl.json has 1 bad entries:\n  'training' " + error):
            segmentation_datalist(str(tmp_path / "dl.json"), split, num_classes=3)


def test_affines_within_the_tolerance_agree(tmp_path):
    import nibabel as nib

    entries = _pairs(tmp_path, n=1)
    lab = nib.load(str(tmp_path / "lab0.nii.gz"))
    shifted = lab.affine.copy()
    shifted[:3, 3] += 1e-4  # float rounding of a resampled header, not another grid
    nib.save(nib.Nifti1Image(np.asarray(lab.dataobj), shifted), str(tmp_path / "lab0.nii.gz"))
    (tmp_path / "dl.json").write_text(json.dumps({"training": entries}))
    assert len(segmentation_datalist(str(tmp_path / "dl.json"), "train", num_classes=3)) == 1


def test_augment_must_be_a_bool():
    for bad in ("false", 1, None):
        with pytest.raises(ValueError, match="augment must be True or False"):
            segmentation_transforms("synthetic_seg3d", augment=bad)


def _axis_angles(labels: np.ndarray, cls: int, principal: int, reference: int) -> np.ndarray:
    """Per volume, the angle (degrees) between world axis ``reference`` and the ``principal``-th principal axis of
    the voxels of class ``cls`` (0: the longest, 2: the shortest)."""
    angles = []
    for lab in labels:
        points = np.argwhere(lab == cls).astype(np.float64)
        _, vectors = np.linalg.eigh(np.cov((points - points.mean(0)).T))  # ascending eigenvalues
        axis = vectors[:, 2 - principal]
        angles.append(np.degrees(np.arccos(min(abs(axis[reference]), 1.0))))
    return np.array(angles)


@pytest.mark.parametrize("max_tilt", [0.0, 15.0])
def test_oriented_set_respects_its_angle_prior(tmp_path, max_tilt):
    from monai_sre.data import ORIENTED_SEGMENTATION

    path = make_synthetic_segmentation(str(tmp_path), size=48, n_train=12, n_val=0, n_test=0,
                                       name=ORIENTED_SEGMENTATION, max_tilt=max_tilt)
    assert path.endswith("synthetic_seg3d_oriented_48.npz")
    with np.load(path) as data:
        labels = data["train_labels"]
        assert json.loads(str(data["params"]))["max_tilt"] == max_tilt
    rod = _axis_angles(labels, 1, principal=0, reference=0)  # the rod's long axis near axis 0
    plate = _axis_angles(labels, 2, principal=2, reference=2)  # the plate's normal near axis 2
    tolerance = 2.0  # voxelisation moves the principal axes of these ellipsoids by about a degree
    assert rod.max() <= max_tilt + tolerance and plate.max() <= max_tilt + tolerance, (rod, plate)
    if max_tilt:
        assert rod.max() > 5.0 and plate.max() > 5.0  # tilted, not all aligned
    middle = (48 - 1) / 2.0
    radius = np.sqrt(((np.indices((48,) * 3) - middle) ** 2).sum(0))
    assert all(radius[lab > 0].max() <= middle for lab in labels)  # every rotation keeps the objects whole
    assert all({1, 2} <= set(np.unique(lab)) for lab in labels)


def test_random_set_has_no_orientation_prior(tmp_path):
    with np.load(make_synthetic_segmentation(str(tmp_path), size=32, n_train=12, n_val=0, n_test=0)) as data:
        rod = _axis_angles(data["train_labels"], 1, principal=0, reference=0)
    assert rod.max() > 30.0


def test_oriented_set_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="max_tilt must be a number of degrees in \\[0, 90\\], got 120"):
        make_synthetic_segmentation(str(tmp_path), size=16, name="synthetic_seg3d_oriented", max_tilt=120)
    with pytest.raises(ValueError, match="name must be one of"):
        make_synthetic_segmentation(str(tmp_path), size=16, name="synthetic_seg3d_upright")
    items = segmentation_datalist("synthetic_seg3d_oriented", "test", str(tmp_path), size=16)
    assert len(items) == 16 and (tmp_path / "synthetic_seg3d_oriented_16.npz").is_file()


@pytest.mark.slow
@pytest.mark.extended
def test_label_resampling_costs_the_default_set_under_half_a_dice_point(tmp_path):
    """The floor: over the protocol's 39 rotations of the 16 test volumes (48^3), the mean Dice between the resampled
    truth (one-hot, linear, argmax) and the nearest-neighbour truth is above 0.995."""
    import torch
    import torch.nn.functional as F

    from monai_sre.handlers import segmentation_sweep, summarize_segmentation_sweep

    items = segmentation_datalist("synthetic_seg3d_oriented", "test", str(tmp_path), size=48)
    label = torch.as_tensor(np.stack([item["label"] for item in items])).float()
    onehot = F.one_hot(label[:, 0].long(), 3).movedim(-1, 1).float()
    batches = [{"image": onehot[i:i + 8], "label": label[i:i + 8]} for i in range(0, len(items), 8)]
    summary = summarize_segmentation_sweep(segmentation_sweep(torch.nn.Identity(), batches, 3))
    assert summary["Rot."] == 1.0 and 0.0 < summary["floor_gap_rot"] < 0.005, summary


def _spoil_image(tmp_path, problem):
    """Rewrite ``img2.nii.gz`` with one problem only its voxels or frames show; returns the expected message."""
    import nibabel as nib

    path = str(tmp_path / "img2.nii.gz")
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    if problem == "truncated":
        raw = open(path, "rb").read()
        open(path, "wb").write(raw[: len(raw) // 2])
        return r"image .*img2.nii.gz cannot be read to the end"
    if problem == "frames":
        nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 2), np.float32), affine), path)
        return r"image .*img2.nii.gz has 2 frames/channels \(3D shape \(8, 8, 8\)\) but the model takes 1"
    arr = np.ones((8, 8, 8), np.float32)
    arr[0, 1, 2] = np.nan if problem == "nan" else -np.inf
    nib.save(nib.Nifti1Image(arr, affine), path)
    return r"image .*img2.nii.gz has 1 NaN/Inf voxels of 512"


@pytest.mark.parametrize("problem", ["nan", "inf", "frames", "truncated"])
@pytest.mark.parametrize("split", ["validation", "test"])
def test_images_of_every_split_are_read_before_training(tmp_path, problem, split):
    entries = _pairs(tmp_path)
    (tmp_path / "dl.json").write_text(json.dumps({"training": entries[:2], split: entries[2:]}))
    assert len(segmentation_datalist(str(tmp_path / "dl.json"), "train", num_classes=3)) == 2
    error = _spoil_image(tmp_path, problem)
    with pytest.raises(ValueError, match=rf"dl.json has 1 bad entries:\n  '{split}' entry 0: {error}"):
        segmentation_datalist(str(tmp_path / "dl.json"), "train", num_classes=3)


def test_pairs_are_read_once_per_version(tmp_path, monkeypatch):
    import nibabel as nib

    (tmp_path / "dl.json").write_text(json.dumps({"training": _pairs(tmp_path), "validation": _pairs(tmp_path)[:1]}))
    segmentation_datalist(str(tmp_path / "dl.json"), "train", num_classes=3)
    real_load, loads = nib.load, []
    monkeypatch.setattr(nib, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    for split in ("train", "val"):
        segmentation_datalist(str(tmp_path / "dl.json"), split, num_classes=3)
    assert loads == []
