"""Smoke and property tests of the 3D bundle ``bundles/sre_r3d`` (the shared cases of ``bundle_cases.py``)."""

from __future__ import annotations

import pytest
from bundle_cases import *  # noqa: F401,F403  (collects the shared tests here)
from bundle_cases import BundleSpec


@pytest.fixture(scope="module")
def spec():
    return BundleSpec(
        name="sre_r3d", flag="adrenalmnist3d", dims=3, default_run="synthetic3d_sre_r3d_18", baseline="r3d_18",
        rotation_views={(str(a), f"{float(t)}") for a in range(3) for t in range(0, 361, 30)},
        exact_rotations=[[0, 90], [2, 180]], prob_columns=("prob_normal", "prob_hyperplasia"),
    )
