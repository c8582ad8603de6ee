"""Run folders are named by the data's content; evaluation and inference take the network and preprocessing from
the checkpoint's record unless a value is given otherwise."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from monai_sre.checkpoint import RunRecord
from monai_sre.workflows import SettingError, data_fingerprint, trained_record


def _datalist(folder, text='{"training": [{"image": "a.nii.gz", "label": 0}]}'):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "datalist.json").write_text(text)
    return str(folder / "datalist.json")


def test_fingerprint_follows_content_and_the_folder_relative_paths_resolve_in(tmp_path):
    a, b = _datalist(tmp_path / "a"), _datalist(tmp_path / "b")
    assert data_fingerprint(a) != data_fingerprint(b)  # one name, two folders: relative paths point elsewhere
    assert data_fingerprint(a, root=tmp_path / "b") == data_fingerprint(b)  # same bytes, same base folder
    before = data_fingerprint(a)
    _datalist(tmp_path / "a", '{"training": [{"image": "a.nii.gz", "label": 1}]}')
    assert data_fingerprint(a) != before and len(before) == 8


def test_fingerprint_of_an_npz_is_of_its_bytes(tmp_path):
    import numpy as np

    for name, labels in (("x", [0]), ("y", [0]), ("z", [1])):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "adrenalmnist3d.npz", train_labels=np.array(labels))
    prints = [data_fingerprint("adrenalmnist3d", tmp_path / name) for name in ("x", "y", "z")]
    assert prints[0] == prints[1] != prints[2]


@pytest.mark.parametrize("dataset,error", [
    ("missing.json", "datalist .*missing.json does not exist"),
    ("adrenalmnist3d", "MedMNIST file .*adrenalmnist3d.npz not found"),
    ("not a dataset", "dataset must be a synthetic set"),
])
def test_missing_or_unknown_data_is_named(dataset, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((FileNotFoundError, ValueError), match=error):
        data_fingerprint(dataset, root=tmp_path)


NETWORK = {"network_name": "sre_r3d_18", "widths": [4, 4]}
PREPROCESSING = {"intensity_range": [0.0, 1.0], "size": 28}


@pytest.fixture
def bundle(tmp_path):
    """A bundle whose train.json defaults are NETWORK's name, widths [16, 16] and PREPROCESSING, and a checkpoint
    trained with widths [4, 4] and intensities [-1, 1]."""
    (tmp_path / "configs").mkdir()
    defaults = {"network_name": "sre_r3d_18", "widths": [16, 16], **PREPROCESSING, "dataset": "$@x"}
    (tmp_path / "configs" / "train.json").write_text(json.dumps(defaults))
    record = RunRecord(network=NETWORK, preprocessing={**PREPROCESSING, "intensity_range": [-1, 1]})
    torch.save({"model": {}, "record": record.state_dict()}, tmp_path / "model.pt")
    return tmp_path


def test_values_left_at_the_defaults_come_from_the_checkpoint(bundle):
    chosen = trained_record(bundle / "model.pt", {**NETWORK, "widths": [16, 16]}, PREPROCESSING, bundle)
    assert chosen == {**NETWORK, **PREPROCESSING, "intensity_range": [-1, 1]}


def test_a_given_value_that_disagrees_is_refused_or_used_when_meant(bundle, caplog):
    given = {**PREPROCESSING, "intensity_range": [-0.5, 0.5]}
    with pytest.raises(ValueError) as err:
        trained_record(bundle / "model.pt", NETWORK, given, bundle)
    message = str(err.value)
    assert "--intensity_range [-0.5, 0.5] disagrees with checkpoint" in message and "intensity_range=[-1, 1]" in message
    assert "--override_preprocessing true" in message and "\n" not in message
    with caplog.at_level(logging.WARNING):
        meant = trained_record(bundle / "model.pt", NETWORK, given, bundle, override=True)
    assert meant["intensity_range"] == [-0.5, 0.5]
    assert any("override_preprocessing true" in r.getMessage() for r in caplog.records)


def test_a_checkpoint_without_a_record_keeps_the_configured_values_with_one_warning(bundle, caplog):
    torch.save({"model": {}}, bundle / "old.pt")
    with caplog.at_level(logging.WARNING):
        assert trained_record(bundle / "old.pt", NETWORK, PREPROCESSING, bundle) == {**NETWORK, **PREPROCESSING}
    assert len([r for r in caplog.records if "no record of the run" in r.getMessage()]) == 1
    assert trained_record(bundle / "absent.pt", NETWORK, PREPROCESSING, bundle) == {**NETWORK, **PREPROCESSING}


@pytest.mark.parametrize("held,what,use", [
    ({"network_name": "sre_unet", "features": [8, 16], "spatial_dims": 3}, "a 3D segmentation network ('sre_unet')",
     "bundles/sre_unet3d"),
    ({"network_name": "sre_resnet18", "widths": [4, 4]}, "a 2D classification network ('sre_resnet18')",
     "bundles/sre_r18"),
])
def test_a_checkpoint_of_another_task_or_dimension_names_the_bundle_to_use(bundle, held, what, use):
    record = RunRecord(network=held, preprocessing={"size": 48})
    torch.save({"model": {}, "record": record.state_dict()}, bundle / "other.pt")
    with pytest.raises(SettingError) as err:
        trained_record(bundle / "other.pt", NETWORK, PREPROCESSING, bundle)
    assert str(err.value) == (f"checkpoint {bundle / 'other.pt'} holds {what}, but this bundle takes 3D "
                              f"classification networks: use {use} with this checkpoint.")
    segmentation = {"network_name": "sre_unet", "features": [8, 16], "spatial_dims": 3}
    with pytest.raises(SettingError, match="holds a 3D classification network \\('sre_r3d_18'\\), but this bundle "
                                           "takes 3D segmentation networks: use bundles/sre_r3d"):
        trained_record(bundle / "model.pt", segmentation, {"size": 48}, bundle)
