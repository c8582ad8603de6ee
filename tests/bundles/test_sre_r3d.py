"""Smoke and property tests of the 3D bundle ``bundles/sre_r3d`` (the shared cases of ``bundle_cases.py``)."""

from __future__ import annotations

import json
import os
import re

import nibabel as nib
import numpy as np
import pytest
from bundle_cases import *  # noqa: F401,F403  (collects the shared tests here)
from bundle_cases import BundleSpec
from bundle_utils import BUNDLES, TINY, run_workflow

from monai_sre.data import load_error


@pytest.fixture(scope="module")
def spec():
    return BundleSpec(
        name="sre_r3d", flag="adrenalmnist3d", dims=3, default_run="synthetic3d_sre_r3d_18", baseline="r3d_18",
        rotation_views={(str(a), f"{float(t)}") for a in range(3) for t in range(0, 361, 30)},
        exact_rotations=[[0, 90], [2, 180]], prob_columns=("prob_normal", "prob_hyperplasia"),
    )



# (problem, pattern of the error): each is found by the whole-datalist check, before the first epoch
BAD_DATALISTS = [
    ("2d_image", r"'training' entry 1 \(.*slice.nii.gz\) is 2D \(shape \(20, 20\)\)"),
    ("empty_validation", r"empty or missing 'validation' list"),
    ("fractional_label", r"'validation' entry 0, .*anatomical.nii\): label must be a non-negative integer .*got 0.5"),
]


@pytest.mark.parametrize("problem,error", BAD_DATALISTS)
def test_bad_datalist_stops_training_before_it_starts(problem, error, tmp_path):
    anatomical = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")
    nib.save(nib.Nifti1Image(np.ones((20, 20), np.float32), np.eye(4)), str(tmp_path / "slice.nii.gz"))
    training = [{"image": anatomical, "label": 0}, {"image": anatomical, "label": 1}]
    validation = [{"image": anatomical, "label": 1}]
    if problem == "2d_image":
        training[1]["image"] = "slice.nii.gz"
    elif problem == "empty_validation":
        validation = []
    else:
        validation[0]["label"] = 0.5
    (tmp_path / "dl.json").write_text(json.dumps({"training": training, "validation": validation}))
    with pytest.raises(Exception) as err:
        run_workflow([BUNDLES / "sre_r3d" / "configs" / "train.json"], run_id="training",
                     dataset=str(tmp_path / "dl.json"), output_dir=str(tmp_path / "run"), **TINY)
    assert re.search(error, load_error(err.value)), load_error(err.value)
    assert not list(tmp_path.rglob("*.pt"))  # nothing trained, nothing saved
