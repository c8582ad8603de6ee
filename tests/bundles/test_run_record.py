"""One record defines a run: each way a re-run could hand back another run's model gives a new run folder or a
one-line refusal before anything is trained (the 3D bundle, tiny data, one epoch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from bundle_utils import BUNDLES, REPO, TINY, make_tiny_medmnist, run_workflow, workflow

from monai_sre.data import load_error

CONFIGS = BUNDLES / "sre_r3d" / "configs"


def _common(tiny_data, out):
    return {**TINY, "dataset": "adrenalmnist3d", "data_root": tiny_data["adrenalmnist3d"], "output_dir": str(out)}


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("r3d_record")
    run_workflow([CONFIGS / "train.json"], run_id="training", **_common(tiny_data, out))
    return out


def _refusal(tiny_data, out, **changed):
    """The one-line error of re-running the training in ``out`` with ``changed`` settings; nothing may be written."""
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (".pt", ".json")}
    with pytest.raises(Exception) as err:
        run_workflow([CONFIGS / "train.json"], run_id="training", **{**_common(tiny_data, out), **changed})
    assert files == {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (".pt", ".json")}
    message = load_error(err.value)
    assert "\n" not in message, message
    return message


@pytest.mark.slow
def test_rerun_with_other_augmentation_and_seed_is_refused_not_reported_as_the_old_model(trained, tiny_data):
    message = _refusal(tiny_data, trained, rotate_augment=True, seed=3)
    assert "rotate_augment: False in the run, True now" in message and "seed: 0 in the run, 3 now" in message
    assert "--output_dir" in message and f"delete {trained}" in message


@pytest.mark.slow
def test_resume_with_another_learning_rate_is_refused(trained, tiny_data):
    message = _refusal(tiny_data, trained, epochs=2, learning_rate=0.5)
    assert "learning_rate: 0.02 in the run, 0.5 now" in message and "epochs" not in message


@pytest.mark.slow
def test_more_epochs_resume_the_same_run(trained, tiny_data, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    more = {**_common(tiny_data, tmp_path / "run"), "epochs": 2}
    wf = run_workflow([CONFIGS / "train.json"], run_id="training", **more)
    assert wf.parser.get_parsed_content("train#handlers#0").resumed_epoch == 1
    assert json.loads((tmp_path / "run" / "record.json").read_text())["training"]["epochs"] == 2


def test_datalists_of_one_name_in_two_folders_get_two_run_folders(tmp_path):
    folders = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        datalist = tmp_path / name / "datalist.json"
        datalist.write_text(json.dumps({"training": [{"image": "img.nii.gz", "label": 0}], "validation": []}))
        wf = workflow([CONFIGS / "train.json"], run_id="training", dataset=str(datalist), default_output=True)
        folders.append(wf.parser.get_parsed_content("output_dir"))
    assert folders[0] != folders[1]
    assert all(os.path.basename(f).startswith("datalist_sre_r3d_18_") for f in folders)


def test_npz_files_are_told_apart_by_content_not_by_folder(tiny_data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data["adrenalmnist3d"], copy)  # the same file in another folder: the same data
    other = make_tiny_medmnist(tmp_path / "other", "adrenalmnist3d", 3)
    with np.load(os.path.join(other, "adrenalmnist3d.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["train_labels"] = 1 - arrays["train_labels"]  # other labels under the same name: other data
    np.savez(os.path.join(other, "adrenalmnist3d.npz"), **arrays)
    folders = [workflow([CONFIGS / "train.json"], run_id="training", dataset="adrenalmnist3d", data_root=str(root),
                        default_output=True).parser.get_parsed_content("output_dir")
               for root in (tiny_data["adrenalmnist3d"], copy, other)]
    assert folders[0] == folders[1] != folders[2]


@pytest.mark.slow
def test_a_second_training_into_a_folder_in_use_is_refused_naming_the_other_process(other_process, write_lock,
                                                                                     tiny_data, tmp_path):
    write_lock(tmp_path, other_process.pid)  # the lock the other training holds
    with pytest.raises(Exception) as err:
        run_workflow([CONFIGS / "train.json"], run_id="training", **_common(tiny_data, tmp_path))
    assert f"in use by process {other_process.pid}" in load_error(err.value)
    assert not list(tmp_path.rglob("*.pt"))  # nothing trained, nothing saved


@pytest.mark.slow
def test_mistyped_switches_fail_before_anything_runs(tiny_data, tmp_path):
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(CONFIGS / "train.json"),
           "--logging_file", "False", "--dataset", "adrenalmnist3d", "--data_root", tiny_data["adrenalmnist3d"],
           "--output_dir", str(tmp_path / "run"), "--epoch", "1", "--intensity_rang", "[-1,1]",
           "--train#dataloader#pin_memory", "False", "--widths", "[4,4,4,4]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    # the refusal is the last line, without MONAI's chained traceback ("Failed to evaluate ConfigExpression ...")
    assert proc.stderr.strip().splitlines()[-1].startswith("ValueError: unknown switch --epoch (nearest: --epochs")
    assert "Traceback" not in proc.stderr and "Failed to evaluate" not in proc.stderr, proc.stderr[-2000:]
    assert "--intensity_rang (nearest: --intensity_range" in proc.stderr and "pin_memory" not in proc.stderr.split(
        "unknown switch")[-1]
    assert not (tmp_path / "run" / "models").exists()
