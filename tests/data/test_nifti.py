"""NIfTI datalists (JSON and CSV): loading, orientation, resizing, batching, and named errors."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader

from monai_sre.data import check_datalist, dataset_info, get_dataset, load_datalist, nifti_dataset, nifti_transforms

NIB_DATA = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
ANATOMICAL = os.path.join(NIB_DATA, "anatomical.nii")
EXAMPLE_4D = os.path.join(NIB_DATA, "example4d.nii.gz")  # 128x96x24, 2 frames
ANISOTROPIC = os.path.join(NIB_DATA, "standard.nii.gz")  # 4x5x7 voxels of 1x3x2 mm


def _write_volumes(tmp_path, n: int = 3) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        shape = (20 + 2 * i, 18, 16 + i)
        affine = np.diag([1.0 + 0.5 * i, 1.0, 2.0, 1.0])
        name = f"vol{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.random(shape).astype(np.float32) * 100, affine), str(tmp_path / name))
        names.append(name)
    return names


@pytest.fixture
def datalist(tmp_path):
    names = _write_volumes(tmp_path)
    content = {
        "training": [{"image": ANATOMICAL, "label": 1}] + [{"image": n, "label": i % 2} for i, n in enumerate(names)],
        "validation": [{"image": names[0], "label": 0}],
    }
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(content))
    return path


def test_json_datalist_loads_and_batches(datalist):
    ds = nifti_dataset(datalist, "training", spatial_size=(16, 16, 16))
    assert len(ds) == 4
    item = ds[0]
    assert item["image"].shape == (1, 16, 16, 16) and item["image"].dtype == torch.float32
    assert float(item["image"].min()) >= 0.0 and float(item["image"].max()) == pytest.approx(1.0)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch["image"].shape == (4, 1, 16, 16, 16)
    assert batch["label"].tolist() == [1, 0, 1, 0]
    assert len(get_dataset(str(datalist), "val", size=16)) == 1
    info = dataset_info(str(datalist))
    assert info["num_classes"] == 2 and info["spatial_dims"] == 3


def test_orientation_to_ras(tmp_path):
    """A volume stored LAS (x flipped in the affine) is flipped back to RAS on load."""
    arr = np.zeros((8, 8, 8), np.float32)
    arr[:2] = 1.0  # low i = high world x for a negative x spacing
    nib.save(nib.Nifti1Image(arr, np.diag([-1.0, 1.0, 1.0, 1.0])), str(tmp_path / "las.nii.gz"))
    out = nifti_transforms(spatial_size=(8, 8, 8), resize="pad_crop")({"image": str(tmp_path / "las.nii.gz")})
    assert float(out["image"][0, -2:].mean()) == 1.0 and float(out["image"][0, :2].mean()) == 0.0


def test_spacing_and_pad_crop(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((10, 10, 5), np.float32), np.diag([1.0, 1.0, 2.0, 1.0])), str(tmp_path / "a.nii"))
    out = nifti_transforms(spatial_size=(12, 12, 12), pixdim=1.0, resize="pad_crop")({"image": str(tmp_path / "a.nii")})
    assert out["image"].shape == (1, 12, 12, 12)


def test_csv_datalist(tmp_path):
    names = _write_volumes(tmp_path, 2)
    rows = f"{names[0]},0,training\n{names[1]},1,training\n{names[1]},1,test\n"
    (tmp_path / "list.csv").write_text("image,label,split\n" + rows)
    assert [it["label"] for it in load_datalist(tmp_path / "list.csv", "training")] == [0, 1]
    ds = get_dataset(str(tmp_path / "list.csv"), "test", size=8)
    assert ds[0]["image"].shape == (1, 8, 8, 8) and ds[0]["label"] == 1


def test_missing_and_corrupt_files_are_named(tmp_path):
    (tmp_path / "dl.json").write_text(json.dumps({"training": [{"image": "nope.nii.gz", "label": 0}]}))
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        nifti_dataset(tmp_path / "dl.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        nifti_dataset(tmp_path / "missing.json")
    (tmp_path / "bad.nii.gz").write_bytes(b"this is not a nifti file")
    (tmp_path / "dl2.json").write_text(json.dumps({"training": [{"image": "bad.nii.gz", "label": 0}]}))
    with pytest.raises(ValueError, match="'training' entry 0 .*bad.nii.gz.* cannot be read as NIfTI"):
        nifti_dataset(tmp_path / "dl2.json")  # found before training starts
    good = _write_volumes(tmp_path, 1)[0]
    (tmp_path / "dl3.json").write_text(json.dumps({"training": [{"image": good, "label": 0}]}))
    ds = nifti_dataset(tmp_path / "dl3.json")
    data = (tmp_path / good).read_bytes()
    (tmp_path / good).write_bytes(data[: len(data) // 2])  # header intact, voxels cut off after the check
    with pytest.raises(RuntimeError, match=f"failed to load or transform .*{good}"):
        ds[0]
    with pytest.raises(ValueError, match="split"):
        load_datalist(tmp_path / "dl.json", "holdout")


def _datalist(tmp_path, training, validation=None) -> str:
    content = {"training": training, **({} if validation is None else {"validation": validation})}
    (tmp_path / "dl.json").write_text(json.dumps(content))
    return str(tmp_path / "dl.json")


def _slice_2d(tmp_path) -> str:
    nib.save(nib.Nifti1Image(np.ones((20, 20), np.float32), np.eye(4)), str(tmp_path / "slice.nii.gz"))
    return str(tmp_path / "slice.nii.gz")


# (training entries, validation entries, error pattern): every problem is found before any voxel is read
BAD_DATALISTS = [
    ([{"image": "SLICE", "label": 0}, {"image": ANATOMICAL, "label": 1}], None,
     r"'training' entry 0 \(.*slice.nii.gz\) is 2D \(shape \(20, 20\)\) but a 3D volume is expected"),
    ([{"image": ANATOMICAL, "label": 0}], [{"image": EXAMPLE_4D, "label": 0}],
     r"'validation' entry 0 \(.*example4d.nii.gz\) has 2 frames/channels .*split the series"),
    ([{"image": ANATOMICAL, "label": 1.7}], None, r"'training' entry 0, .*anatomical.nii\): label must be a "
     r"non-negative integer class index, got 1.7"),
    ([{"image": ANATOMICAL, "label": -1}], None, r"label must be a non-negative integer class index, got -1"),
    ([{"image": ANATOMICAL, "label": 0}, {"image": ANATOMICAL, "label": 1}], [{"image": ANATOMICAL, "label": 2}],
     r"'validation' entry 0 \(.*anatomical.nii\): label 2 is not one of the 2 classes of the training list"),
    ([{"image": ANATOMICAL, "label": 0}], [], r"empty or missing 'validation' list"),
]


@pytest.mark.parametrize("training,validation,error", BAD_DATALISTS)
def test_bad_datalists_are_refused_up_front(tmp_path, training, validation, error):
    slice_2d = _slice_2d(tmp_path)
    training = [{**it, "image": slice_2d if it["image"] == "SLICE" else it["image"]} for it in training]
    path = _datalist(tmp_path, training, validation)
    with pytest.raises(ValueError, match=error):
        for split in ("train", "val"):
            get_dataset(path, split, size=8)


def test_labels_accept_integral_numbers_and_csv_strings(tmp_path):
    path = _datalist(tmp_path, [{"image": ANATOMICAL, "label": 1.0}, {"image": ANATOMICAL, "label": "0"}])
    assert [it["label"] for it in check_datalist(path)["training"]] == [1, 0]
    (tmp_path / "dl.csv").write_text(f"image,label\n{ANATOMICAL},1.7\n")
    with pytest.raises(ValueError, match="got '1.7'"):
        dataset_info(str(tmp_path / "dl.csv"))


@pytest.mark.parametrize("case", ["2d", "4d", "nan"])
def test_bad_volumes_are_named_when_read(tmp_path, case):
    """Inference reads files that no datalist check saw: the pipeline names the file and the problem."""
    if case == "2d":
        path, error = _slice_2d(tmp_path), "is 2D"
    elif case == "4d":
        path, error = EXAMPLE_4D, "has 2 frames/channels"
    else:
        arr = np.ones((8, 8, 8), np.float32)
        arr[3, 4, 5] = np.nan
        path, error = str(tmp_path / "nan.nii.gz"), "has 1 NaN/Inf voxels of 512"
        nib.save(nib.Nifti1Image(arr, np.eye(4)), path)
    with pytest.raises(RuntimeError) as err:
        nifti_transforms(spatial_size=8)({"image": path})
    from monai_sre.data import load_error

    assert os.path.basename(path) in load_error(err.value) and error in load_error(err.value)


@pytest.mark.parametrize("pixdim", [None, (2.0, 2.0, 2.0)])
def test_anisotropic_volume_is_logged_once(pixdim, caplog):
    tf = nifti_transforms(spatial_size=8, pixdim=pixdim)
    with caplog.at_level("INFO", logger="monai_sre.data.nifti"):
        out = [tf({"image": ANISOTROPIC})["image"] for _ in range(2)]
    lines = [r.getMessage() for r in caplog.records if "anisotropic spacing 1x3x2 mm" in r.getMessage()]
    assert len(lines) == 1 and ("set pixdim" in lines[0] if pixdim is None else "resampling to pixdim" in lines[0])
    assert out[0].shape == (1, 8, 8, 8)


def test_get_dataset_resamples_to_pixdim(tmp_path, caplog):
    path = _datalist(tmp_path, [{"image": ANISOTROPIC, "label": 0}])
    with caplog.at_level("INFO", logger="monai_sre.data.nifti"):
        item = get_dataset(path, "train", size=8, pixdim=(1.0, 1.0, 1.0))[0]
    assert item["image"].shape == (1, 8, 8, 8) and "resampling to pixdim (1.0, 1.0, 1.0)" in caplog.text


# (training labels, pattern): a gap in the training labels is a typo or a class without images, refused up front
LABEL_GAPS = [
    ([0, 1, 7, 0, 1], r"the 'training' labels \[0, 1, 7\] are not the class indices 0..2 of 3 classes: label 7 in "
                      r"entry 2 \(.*vol2.nii.gz\)\. .*--num_classes 8"),
    ([0, 3, 3, 0, 3], r"the 'training' labels \[0, 3\] are not the class indices 0..1 of 2 classes: label 3 in "
                      r"entries 1 \(.*vol1.nii.gz\), 2 \(.*vol2.nii.gz\), 4 \(.*vol4.nii.gz\)\."),
    ([1, 2, 1, 2, 1], r"labels \[1, 2\] are not the class indices 0..1 of 2 classes: label 2 in entries 1 "),
]


@pytest.mark.parametrize("labels,error", LABEL_GAPS)
def test_training_labels_must_be_0_to_k_minus_1(tmp_path, labels, error):
    names = _write_volumes(tmp_path, len(labels))
    path = _datalist(tmp_path, [{"image": n, "label": k} for n, k in zip(names, labels)])
    for check in (lambda: check_datalist(path), lambda: dataset_info(path), lambda: get_dataset(path, "train", size=8)):
        with pytest.raises(ValueError, match=error):
            check()


def test_num_classes_given_allows_classes_without_training_images(tmp_path):
    names = _write_volumes(tmp_path, 4)
    path = _datalist(tmp_path, [{"image": n, "label": k} for n, k in zip(names[:3], [0, 1, 7])],
                     [{"image": names[3], "label": 5}])
    info = dataset_info(path, num_classes=8)
    assert info["num_classes"] == 8 and info["label_names"] == [str(i) for i in range(8)]
    assert [it["label"] for it in get_dataset(path, "train", size=8, num_classes=8).data] == [0, 1, 7]
    with pytest.raises(ValueError, match=r"'training' entry 2 \(.*vol2.nii.gz\): label 7 is not one of the 6 classes "
                                         r"given by num_classes \(0..5\)"):
        check_datalist(path, num_classes=6)
    with pytest.raises(ValueError, match="num_classes must be None .* got 0"):
        check_datalist(path, num_classes=0)
    with pytest.raises(ValueError, match="num_classes=3 but dataset 'synthetic3d' has 2 classes"):
        dataset_info("synthetic3d", num_classes=3)


def test_repeated_and_shared_images_give_one_warning_each(tmp_path, caplog):
    names = _write_volumes(tmp_path, 4)
    training = [{"image": names[0], "label": 0}, {"image": names[1], "label": 1}, {"image": names[0], "label": 0},
                {"image": names[1], "label": 1}, {"image": names[1], "label": 1}, {"image": names[2], "label": 0}]
    validation = [{"image": names[2], "label": 0}, {"image": names[3], "label": 1}]
    path = _datalist(tmp_path, training, validation)
    with caplog.at_level("WARNING", logger="monai_sre.data.nifti"):
        dataset_info(path)  # a bundle reads the datalist three times
        get_dataset(path, "train", size=8)
        get_dataset(path, "val", size=8)
    messages = [r.getMessage() for r in caplog.records if r.name == "monai_sre.data.nifti"]
    assert len(messages) == 2, messages
    assert "2 images are listed more than once in 'training' (3 extra entries, e.g. " in messages[0]
    assert "1 image of 'validation' is also in 'training' (e.g. " in messages[1] and "vol2.nii.gz" in messages[1]


def _spoil_voxels(path: str, how: str) -> str:
    """Rewrite a volume with one voxel-level problem the header does not show; returns the expected message."""
    if how == "truncated":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        return "cannot be read to the end .* truncated or corrupt"
    img = nib.load(path)
    arr = np.asarray(img.dataobj).astype(np.float32)
    arr[1, 2, 3] = np.nan if how == "nan" else np.inf
    nib.save(nib.Nifti1Image(arr, img.affine), path)
    return f"has 1 NaN/Inf voxels of {arr.size}"


@pytest.mark.parametrize("how", ["nan", "inf", "truncated"])
@pytest.mark.parametrize("split", ["validation", "test"])
def test_every_file_of_every_split_is_read_before_training(tmp_path, how, split):
    names = _write_volumes(tmp_path, 3)
    content = {"training": [{"image": names[0], "label": 0}, {"image": names[1], "label": 1}],
               split: [{"image": names[2], "label": 0}]}
    (tmp_path / "dl.json").write_text(json.dumps(content))
    assert len(get_dataset(str(tmp_path / "dl.json"), "train", size=8)) == 2
    error = _spoil_voxels(str(tmp_path / names[2]), how)
    with pytest.raises(ValueError, match=rf"1 bad entries:\n  '{split}' entry 0 \(.*{names[2]}\) {error}"):
        get_dataset(str(tmp_path / "dl.json"), "train", size=8)  # the training split, not the spoiled one


def test_files_are_read_once_per_version(tmp_path, monkeypatch):
    names = _write_volumes(tmp_path, 2)
    path = _datalist(tmp_path, [{"image": names[0], "label": 0}, {"image": names[1], "label": 1}])
    check_datalist(path)
    loads = []
    real_load = nib.load
    monkeypatch.setattr(nib, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    check_datalist(path)
    assert loads == []  # remembered: not opened again
    _spoil_voxels(str(tmp_path / names[1]), "nan")
    loads.clear()
    with pytest.raises(ValueError, match="NaN/Inf"):
        check_datalist(path)
    assert [os.path.basename(p) for p in loads] == [names[1]]  # only the changed file is read again
