"""The switch checks of the bundle configs: type, range, length per spatial dimension, device, network, folders."""

from __future__ import annotations

import os

import pytest
import torch

from monai_sre.workflows import (
    SETTING_RULES,
    SettingError,
    check_network,
    check_settings,
    check_writable,
    network_kind,
)

# (switch, bad value, expected text in the message)
BAD = [
    ("epochs", 0, "--epochs 0: expected an integer >= 1"),
    ("epochs", -1, "--epochs -1: expected an integer >= 1"),
    ("epochs", 2.5, "--epochs 2.5: expected an integer >= 1"),
    ("val_interval", 0, "--val_interval 0: expected an integer >= 1"),
    ("seed", "abc", "--seed 'abc': expected null or an integer >= 0"),
    ("seed", True, "--seed True: expected null or an integer"),
    ("intensity_range", 1, "--intensity_range 1: expected a list [low, high] of two numbers with low < high"),
    ("intensity_range", [1.0, 0.0], "--intensity_range [1.0, 0.0]: expected a list [low, high]"),
    ("pixdim", [1.5, 1.5], "--pixdim [1.5, 1.5]: expected null, a number > 0, or a list of 3 numbers > 0"),
    ("pixdim", -1.0, "--pixdim -1.0: expected null, a number > 0"),
    ("learning_rate", 0.0, "--learning_rate 0.0: expected a number > 0.0"),
    ("learning_rate", float("nan"), "--learning_rate nan: expected a number > 0.0"),
    ("momentum", 1.0, "--momentum 1.0: expected a number >= 0.0 and < 1.0"),
    ("lr_factor", 1.5, "--lr_factor 1.5: expected a number > 0.0 and < 1.0"),
    ("batch_size", "8", "--batch_size '8': expected an integer >= 1"),
    ("num_workers", -1, "--num_workers -1: expected an integer >= 0"),
    ("schedule", "step", "--schedule 'step': expected one of 'plateau', 'cosine'"),
    ("augment", "yes", "--augment 'yes': expected true or false (any case)"),
    ("widths", [16, 0], "--widths [16, 0]: expected a non-empty list of integers >= 1"),
    ("num_classes", 1, "--num_classes 1: expected null or an integer >= 2"),
    ("spatial_dims", 2, "--spatial_dims 2: expected 3 (this bundle's data is 3D)"),
    ("device", "gpu", "--device 'gpu': expected a torch device such as 'cpu' or 'cuda:0'"),
    ("patience", 0, "--patience 0: expected null or an integer >= 1"),
    ("overlap", 1.0, "--overlap 1.0: expected a number >= 0.0 and < 1.0"),
    ("blur", 8.0, "--blur 8.0: expected null or a number >= 0.0 and < 8.0"),
]
GOOD = {"epochs": 1, "val_interval": 2, "seed": 0, "intensity_range": [0, 1.0], "pixdim": [1.5, 1.5, 2.0],
        "learning_rate": 0.01, "momentum": 0.0, "batch_size": 1, "schedule": "cosine", "augment": "False",
        "widths": [4, 4, 4, 4], "num_classes": None, "spatial_dims": 3, "device": torch.device("cpu"),
        "field_of_view": None, "fold": 4, "num_folds": 5, "patience": None, "amp": False, "blur": None}


@pytest.mark.parametrize("name,value,message", BAD)
def test_a_bad_value_is_refused_naming_switch_value_and_expectation(name, value, message):
    with pytest.raises(SettingError) as err:
        check_settings({**GOOD, name: value}, spatial_dims=3)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_good_values_pass_and_every_problem_is_named_at_once():
    check_settings(GOOD, spatial_dims=3)
    with pytest.raises(SettingError, match=r"--epochs 0: .*; --seed 'abc': "):
        check_settings({**GOOD, "epochs": 0, "seed": "abc"}, spatial_dims=3)


def test_pixdim_length_follows_the_bundle_dimension():
    check_settings({"pixdim": [1.5, 1.5]}, spatial_dims=2)
    check_settings({"pixdim": 1.5}, spatial_dims=3)
    with pytest.raises(SettingError, match="list of 2 numbers"):
        check_settings({"pixdim": [1.0, 1.0, 1.0]}, spatial_dims=2)


def test_fold_must_be_below_num_folds():
    with pytest.raises(SettingError, match="--fold 5: expected null or an integer >= 0 and <= 4"):
        check_settings({"fold": 5, "num_folds": 5})


def test_a_cuda_device_must_exist():
    if torch.cuda.is_available():
        with pytest.raises(SettingError, match=r"--device 'cuda:99': expected 'cpu' or one of cuda:0"):
            check_settings({"device": "cuda:99"})
    else:
        with pytest.raises(SettingError, match="--device 'cuda': expected 'cpu': no CUDA GPU is available here"):
            check_settings({"device": "cuda"})


def test_a_switch_without_a_rule_is_a_programming_error():
    with pytest.raises(KeyError, match="no rule for \\['epoch'\\]"):
        check_settings({"epoch": 1})
    assert {"epochs", "device", "pixdim", "intensity_range", "network_name"} <= set(SETTING_RULES)


@pytest.mark.parametrize("name,dims,task,message", [
    ("sre_resnet18", 3, "classification", "'sre_resnet18' is a 2D classification network, but this bundle trains 3D "
                                          "classification networks: expected one of r3d_18, sre_r3d_18"),
    ("sre_resnet18", 3, "classification", "use bundles/sre_r18 for 'sre_resnet18'"),
    ("sre_r3d_18", 2, "classification", "use bundles/sre_r3d for 'sre_r3d_18'"),
    ("sre_unet", 3, "classification", "'sre_unet' is a segmentation network, but this bundle trains 3D "
                                      "classification networks"),
    ("sre_r3d_18", 3, "segmentation", "use bundles/sre_r3d"),
    ("sre_r3d_19", 3, "classification", "'sre_r3d_19' is not a registered network"),
])
def test_a_network_of_another_dimension_or_task_names_the_bundle_to_use(name, dims, task, message):
    with pytest.raises(SettingError) as err:
        check_network(name, dims, task)
    assert message in str(err.value) and str(err.value).startswith(f"--network_name {name!r}")


def test_networks_of_the_bundle_pass():
    check_network("sre_r3d_18", 3)
    check_network("sre_resnet18", 2)
    check_network("sre_unet", 3, "segmentation")
    assert network_kind("r3d_18") == ("classification", 3) and network_kind("plain_unet") == ("segmentation", None)


def test_a_read_only_folder_is_refused_naming_the_switch(read_only_folder, tmp_path):
    read_only = read_only_folder(tmp_path / "models")
    check_writable({"output_dir": tmp_path / "new" / "run"})  # created
    assert (tmp_path / "new" / "run").is_dir() and not os.listdir(tmp_path / "new" / "run")  # no probe left
    with pytest.raises(SettingError, match=f"--ckpt_dir {read_only} is not a writable folder"):
        check_writable({"output_dir": tmp_path, "ckpt_dir": read_only})
    with pytest.raises(SettingError, match="--log_dir .* is not a writable folder"):
        check_writable({"log_dir": read_only / "tensorboard"})
    with pytest.raises(SettingError) as err:
        check_writable({"output_dir": read_only})
    assert str(err.value).endswith("Make it writable, or choose another --output_dir.")
    with pytest.raises(SettingError) as err:
        check_writable({"ckpt_dir": read_only})
    assert str(err.value).endswith("Make it writable, or choose another --ckpt_dir (or --output_dir).")
