"""NIfTI datalists (JSON and CSV): loading, orientation, resizing, batching, and named errors."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import DataLoader

from monai_sre.data import dataset_info, get_dataset, load_datalist, nifti_dataset, nifti_transforms

ANATOMICAL = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


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
    (tmp_path / "list.csv").write_text("image,label,split\n" + f"{names[0]},0,training\n{names[1]},1,test\n")
    assert [it["label"] for it in load_datalist(tmp_path / "list.csv", "training")] == [0]
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
    ds = nifti_dataset(tmp_path / "dl2.json")
    with pytest.raises(RuntimeError, match="bad.nii.gz"):
        ds[0]
    with pytest.raises(ValueError, match="split"):
        load_datalist(tmp_path / "dl.json", "holdout")
