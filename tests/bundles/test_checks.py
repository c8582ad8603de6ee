"""What the three bundles check before the first epoch, and how a run that cannot go on stops: one message naming the
switch or file, no epoch trained for nothing, no diverged weights saved, no temporary file left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_utils import BUNDLES, REPO, TINY, run_workflow, workflow

from monai_sre.checkpoint import RunRecord
from monai_sre.workflows import SettingError, refusal

TRAIN = {name: BUNDLES / name / "configs" / "train.json" for name in ("sre_r3d", "sre_r18", "sre_unet3d")}
NO_GPU = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"

# (bundle, overrides, the message's start); every classification case holds for both classification bundles
CASES = [
    ("sre_r3d", {"epochs": 0}, "--epochs 0: expected an integer >= 1."),
    ("sre_r18", {"epochs": -1}, "--epochs -1: expected an integer >= 1."),
    ("sre_unet3d", {"epochs": 0}, "--epochs 0: expected an integer >= 1."),
    ("sre_r3d", {"val_interval": 0}, "--val_interval 0: expected an integer >= 1."),
    ("sre_unet3d", {"val_interval": 0}, "--val_interval 0: expected an integer >= 1."),
    ("sre_r18", {"seed": "abc"}, "--seed 'abc': expected null or an integer >= 0 and <= 4294967295."),
    ("sre_unet3d", {"seed": "abc"}, "--seed 'abc': expected null or an integer >= 0 and <= 4294967295."),
    ("sre_r3d", {"intensity_range": 1}, "--intensity_range 1: expected a list [low, high] of two numbers with low < "
                                        "high."),
    ("sre_r3d", {"pixdim": [1.5, 1.5]}, "--pixdim [1.5, 1.5]: expected null, a number > 0, or a list of 3 numbers > 0"),
    ("sre_r3d", {"device": NO_GPU}, f"--device {NO_GPU!r}: expected 'cpu'"),
    ("sre_unet3d", {"device": NO_GPU}, f"--device {NO_GPU!r}: expected 'cpu'"),
    ("sre_r3d", {"network_name": "sre_resnet18"}, "--network_name 'sre_resnet18' is a 2D classification network, but "
                                                  "this bundle trains 3D classification networks"),
    ("sre_r18", {"network_name": "sre_r3d_18"}, "--network_name 'sre_r3d_18' is a 3D classification network"),
    ("sre_r3d", {"network_name": "sre_unet"}, "--network_name 'sre_unet' is a segmentation network"),
    ("sre_unet3d", {"network_name": "sre_r3d_18"}, "--network_name 'sre_r3d_18' is a 3D classification network"),
    ("sre_unet3d", {"spatial_dims": 2}, "--spatial_dims 2: expected 3 (this bundle's data is 3D)."),
]


@pytest.mark.parametrize("bundle,override,message", CASES)
def test_a_bad_switch_stops_the_bundle_in_initialize(bundle, override, message):
    with pytest.raises(Exception) as err:
        workflow([TRAIN[bundle]], run_id="training", **override)
    found = refusal(err.value)
    assert isinstance(found, SettingError) and str(found).startswith(message), str(found)


def test_multi_gpu_and_inference_configs_check_the_switches_too():
    for bundle in ("sre_r3d", "sre_unet3d"):
        for overlay in ("multi_gpu_train.json", "inference.json"):
            with pytest.raises(Exception) as err:
                workflow([TRAIN[bundle], TRAIN[bundle].parent / overlay], run_id="training", epochs=0)
            assert str(refusal(err.value)) == "--epochs 0: expected an integer >= 1."


def _volume(path, value=None, shape=(8, 8, 8)):
    data = np.random.default_rng(0).random(shape).astype(np.float32)
    if value is not None:
        data[1, 2, 3] = value
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path.name


@pytest.mark.parametrize("bad", [np.inf, "truncated"])
def test_a_bad_validation_file_stops_training_before_the_first_epoch(bad, tmp_path):
    entries = [{"image": _volume(tmp_path / f"t{i}.nii.gz"), "label": i % 2} for i in range(4)]
    val = tmp_path / "v0.nii.gz"
    _volume(val, value=bad if bad != "truncated" else None)
    if bad == "truncated":
        val.write_bytes(val.read_bytes()[: len(val.read_bytes()) // 2])
    (tmp_path / "dl.json").write_text(json.dumps({"training": entries, "validation": [{"image": val.name, "label": 0}]}))
    out = tmp_path / "run"
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_r3d"]], run_id="training", dataset=str(tmp_path / "dl.json"), output_dir=str(out),
                     size=8, **TINY)
    message = str(refusal(err.value))
    assert "'validation' entry 0" in message and str(val) in message, message
    assert not list(out.rglob("*.pt")) and not (out / "history.json").exists() and not (out / "record.json").exists()


def test_a_read_only_models_folder_stops_training_before_the_first_epoch(read_only_folder, tiny_data, tmp_path):
    out = tmp_path / "run"
    read_only_models = read_only_folder(out / "models")
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_r3d"]], run_id="training", dataset="adrenalmnist3d",
                     data_root=tiny_data["adrenalmnist3d"], output_dir=str(out), **TINY)
    found = refusal(err.value)
    assert isinstance(found, SettingError) and str(found).startswith(f"--ckpt_dir {read_only_models} is not a writable")
    assert sorted(os.listdir(out)) == ["models"]  # no lock, no record, no history: nothing started


def test_a_nan_loss_stops_at_once_and_the_next_start_removes_stale_temporary_files(tiny_data, tmp_path):
    out = tmp_path / "run"
    (out / "models").mkdir(parents=True)
    (out / "models" / "tmpk1ll3d_9").write_bytes(b"PK\x03\x04 a write killed by kill -9")
    nan_loss = "$lambda pred, label: (pred * float('nan')).mean()"
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_r3d"]], run_id="training", dataset="adrenalmnist3d",
                     data_root=tiny_data["adrenalmnist3d"], output_dir=str(out), **TINY,
                     **{"train#trainer#loss_function": nan_loss})
    assert str(refusal(err.value)).startswith("training loss is nan at epoch 1, iteration 1 (batch 1 of 2): training "
                                              "stopped before the optimiser step")
    assert os.listdir(out / "models") == []  # the stale file is gone, and nothing was saved


def test_a_segmentation_checkpoint_given_to_a_classification_bundle_names_the_bundle_to_use(tiny_data, tmp_path):
    record = RunRecord(network={"network_name": "sre_unet", "features": [4, 4, 8, 4], "spatial_dims": 3,
                                "in_channels": 1, "num_classes": 3}, preprocessing={"size": 48})
    torch.save({"model": {}, "record": record.state_dict()}, tmp_path / "seg.pt")
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_r3d"], TRAIN["sre_r3d"].parent / "evaluate.json"], run_id="evaluating",
                     dataset="adrenalmnist3d", data_root=tiny_data["adrenalmnist3d"], output_dir=str(tmp_path),
                     ckpt_path=str(tmp_path / "seg.pt"), **TINY)
    assert str(refusal(err.value)) == (
        f"checkpoint {tmp_path / 'seg.pt'} holds a 3D segmentation network ('sre_unet'), but this bundle takes 3D "
        f"classification networks: use bundles/sre_unet3d with this checkpoint.")


@pytest.mark.slow
@pytest.mark.extended
def test_every_rank_of_a_two_process_training_exits_cleanly(tmp_path):
    """torchrun, two CPU processes (gloo), data loader workers: both ranks exit 0 (torchrun's status), with the
    process group destroyed and nothing aborting at interpreter exit."""
    configs = [str(TRAIN["sre_unet3d"]), str(TRAIN["sre_unet3d"].parent / "multi_gpu_train.json")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--log-dir", str(tmp_path / "logs"), "--redirects", "3", "-m", "monai.bundle", "run", "training",
           "--config_file", str(configs), "--logging_file", "False", "--data_root", str(tmp_path / "data"),
           "--output_dir", str(tmp_path / "run"), "--epochs", "1", "--size", "16", "--features", "[4,4,4,4,4]",
           "--batch_size", "2", "--num_workers", "1", "--progress_bar", "False"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "logs").rglob("*.log")))
    assert proc.returncode == 0, (proc.stderr + logs)[-4000:]
    assert "terminate called" not in logs + proc.stderr and "exitcode" not in proc.stderr, logs[-4000:]
    assert sorted(os.listdir(tmp_path / "run" / "models")) == ["last.pt", "model.pt"]


def test_a_nan_validation_image_stops_the_segmentation_training_before_the_first_epoch(tmp_path):
    entries = []
    for i, value in enumerate([None, None, np.nan]):
        image = _volume(tmp_path / f"i{i}.nii.gz", value=value, shape=(16, 16, 16))
        nib.save(nib.Nifti1Image(np.zeros((16, 16, 16), np.uint8), np.eye(4)), str(tmp_path / f"l{i}.nii.gz"))
        entries.append({"image": image, "label": f"l{i}.nii.gz"})
    (tmp_path / "dl.json").write_text(json.dumps({"training": entries[:2], "validation": entries[2:]}))
    out = tmp_path / "run"
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_unet3d"]], run_id="training", dataset=str(tmp_path / "dl.json"), output_dir=str(out),
                     epochs=1, size=16, features=[4, 4, 8, 4], batch_size=2, num_workers=0, progress_bar=False)
    message = str(refusal(err.value))
    assert "'validation' entry 0" in message and str(tmp_path / "i2.nii.gz") in message, message
    assert not list(out.rglob("*.pt")) and not (out / "history.json").exists()


def test_evaluation_checks_its_output_folder(read_only_folder, tiny_data, tmp_path):
    eval_dir = read_only_folder(tmp_path / "eval")
    with pytest.raises(Exception) as err:
        run_workflow([TRAIN["sre_r3d"], TRAIN["sre_r3d"].parent / "evaluate.json"], run_id="evaluating",
                     dataset="adrenalmnist3d", data_root=tiny_data["adrenalmnist3d"], output_dir=str(tmp_path),
                     eval_dir=str(eval_dir), **TINY)
    assert str(refusal(err.value)).startswith(f"--eval_dir {eval_dir} is not a writable folder")
