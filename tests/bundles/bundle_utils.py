"""Helpers for the bundle smoke tests: tiny offline data and ConfigWorkflow runs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
SCHEMA = REPO.parent / "shared" / "schemas" / "meta_schema_20240725.json"

# tiny-run overrides shared by every smoke test (1 epoch, tiny widths, no workers, no progress bar)
TINY = {"epochs": 1, "widths": [4, 4, 4, 4], "batch_size": 8, "num_workers": 0, "progress_bar": False}


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module (the scripts are not a package), for tests of their ``main``."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tiny_medmnist(root: Path, flag: str, spatial_dims: int) -> str:
    """A MedMNIST-format npz named like ``flag`` with 16/8/8 synthetic samples (offline, fast).

    The file is built by ``monai_sre.data.make_synthetic`` and saved under the MedMNIST file name, so the bundle
    goes through its real MedMNIST code path (``--dataset <flag> --data_root <root>``) in a few seconds.
    """
    from monai_sre.data import make_synthetic

    root.mkdir(parents=True, exist_ok=True)
    path = make_synthetic(str(root), spatial_dims=spatial_dims, size=28, n_train=16, n_val=8, n_test=8)
    target = root / f"{flag}.npz"
    os.replace(path, target)
    return str(root)


#: the run folder a test's workflows use when it names none: set per test by the ``run_folder`` fixture
#: (tests/bundles/conftest.py) to a folder in the test's ``tmp_path``
DEFAULT_OUTPUT: dict[str, str | None] = {"output_dir": None}


def workflow(configs, run_id: str = "run", default_output: bool = False, **override):
    """Build, initialize and return a ConfigWorkflow (logging untouched).

    A workflow always works in a temporary folder: without an ``output_dir`` or ``bundle_root`` override it gets
    the test's own run folder, never the bundle's default ``runs/`` folder where a user's trainings live.
    ``default_output=True`` keeps the bundle's default for tests that only read the path it resolves to; such a
    workflow must not be run.
    """
    from monai.bundle import ConfigWorkflow

    if not default_output and "output_dir" not in override and "bundle_root" not in override:
        if DEFAULT_OUTPUT["output_dir"] is None:
            raise ValueError("output_dir: a workflow built outside a test needs an output_dir in a temporary folder.")
        override["output_dir"] = DEFAULT_OUTPUT["output_dir"]
    files = [str(c) for c in configs]
    wf = ConfigWorkflow(config_file=files if len(files) > 1 else files[0], run_id=run_id, logging_file=False,
                        workflow_type=None, **override)
    wf.initialize()
    return wf


def run_workflow(configs, run_id: str = "run", **override):
    if override.get("default_output"):
        raise ValueError("default_output: a workflow that runs must write into a temporary folder.")
    wf = workflow(configs, run_id=run_id, **override)
    wf.run()
    wf.finalize()
    return wf


