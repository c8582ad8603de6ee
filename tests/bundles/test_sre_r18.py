"""Smoke and property tests of the 2D bundle ``bundles/sre_r18`` (the shared cases of ``bundle_cases.py``)."""

from __future__ import annotations

import pytest
from bundle_cases import *  # noqa: F401,F403  (collects the shared tests here)
from bundle_cases import BundleSpec


@pytest.fixture(scope="module")
def spec():
    return BundleSpec(
        name="sre_r18", flag="breastmnist", dims=2, default_run="synthetic2d_sre_resnet18", baseline="plain_resnet18",
        rotation_views={("", f"{float(t)}") for t in range(0, 361, 10)},
        exact_rotations=[[None, 90], [None, 180]], prob_columns=("prob_malignant", "prob_normal, benign"),
    )
