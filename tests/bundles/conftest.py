"""Fixtures of the bundle smoke tests."""

from __future__ import annotations

import pytest
import bundle_utils
from bundle_utils import make_tiny_medmnist


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Data roots: ``{"adrenalmnist3d": root3d, "breastmnist": root2d}`` with tiny fake MedMNIST files."""
    base = tmp_path_factory.mktemp("tiny_medmnist")
    return {
        "adrenalmnist3d": make_tiny_medmnist(base / "3d", "adrenalmnist3d", 3),
        "breastmnist": make_tiny_medmnist(base / "2d", "breastmnist", 2),
    }


@pytest.fixture(autouse=True)
def run_folder(tmp_path):
    """Every workflow a test builds without ``output_dir`` trains, evaluates and infers in ``tmp_path/run``."""
    bundle_utils.DEFAULT_OUTPUT["output_dir"] = str(tmp_path / "run")
    yield tmp_path / "run"
    bundle_utils.DEFAULT_OUTPUT["output_dir"] = None
