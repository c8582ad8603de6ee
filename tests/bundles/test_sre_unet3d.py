"""Smoke and property tests of the 3D segmentation bundle ``bundles/sre_unet3d`` on a tiny NIfTI datalist."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from bundle_utils import BUNDLES, run_workflow

CONFIGS = BUNDLES / "sre_unet3d" / "configs"
TINY = {"epochs": 1, "features": [4, 4, 8, 4], "size": 16, "batch_size": 2, "num_workers": 0, "progress_bar": False}


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    """Four 16^3 image/label NIfTI pairs from the synthetic set: 2 training, 1 validation, 1 test."""
    import nibabel as nib

    from monai_sre.data import make_synthetic_segmentation

    root = tmp_path_factory.mktemp("seg_nifti")
    with np.load(make_synthetic_segmentation(str(root), size=16, n_train=4, n_val=0, n_test=0)) as data:
        images, labels = data["train_images"], data["train_labels"]
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    entries = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), str(root / f"img{i}.nii.gz"))
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), affine), str(root / f"lab{i}.nii.gz"))
        entries.append({"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz"})
    path = root / "datalist.json"
    path.write_text(json.dumps({"training": entries[:2], "validation": entries[2:3], "test": entries[3:]}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("network_name", ["sre_unet", "unet"])
def test_train_resume_rotated_evaluation_and_inference(network_name, datalist, tmp_path):
    out = tmp_path / "run"
    common = {**TINY, "dataset": str(datalist), "output_dir": str(out), "network_name": network_name}
    run_workflow([CONFIGS / "train.json"], run_id="training", **common)
    assert (out / "models" / "last.pt").is_file() and (out / "models" / "model.pt").is_file()
    # resume: a longer run continues after the saved epoch
    run_workflow([CONFIGS / "train.json"], run_id="training", **{**common, "epochs": 2})
    history = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]

    rotated = [CONFIGS / "train.json", CONFIGS / "evaluate.json", CONFIGS / "evaluate_rotated.json"]
    run_workflow(rotated, run_id="evaluating", rotations=[[0, 90], [2, 180], [1, 45]], reflections=[0], **common)
    with open(out / "rotated" / "rotated.csv") as f:
        rows = {r["name"]: float(r["dice"]) for r in csv.DictReader(f)}
    assert set(rows) == {"original", "rot_axis0_90", "rot_axis2_180", "rot_axis1_45", "flip_axis0"}
    assert (out / "rotated" / "rotated.png").is_file() and (out / "rotated" / "rotated_summary.csv").is_file()
    exact = [rows[k] - rows["original"] for k in ("rot_axis0_90", "rot_axis2_180", "flip_axis0")]
    if network_name == "sre_unet":  # grid symmetries: the same Dice, up to float rounding
        assert max(abs(d) for d in exact) < 1e-6, rows

    import nibabel as nib

    image = datalist.parent / "img3.nii.gz"
    run_workflow([CONFIGS / "inference.json"], run_id="inferring", input=str(image), output_dir=str(out),
                 features=TINY["features"], size=16, network_name=network_name)
    seg = nib.load(str(out / "inference" / "img3_seg.nii.gz"))
    src = nib.load(str(image))
    assert seg.shape == src.shape and np.allclose(seg.affine, src.affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
