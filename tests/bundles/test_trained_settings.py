"""Checkpoints carry the record of their run; evaluation and inference take the network and preprocessing from it by
default, refuse a disagreeing value unless told it is meant, still load older checkpoints, and a checkpoint that does
not fit the network is reported in one line naming the file and the setting."""

from __future__ import annotations

import csv
import logging
import shutil

import pytest
import torch
from bundle_utils import BUNDLES, TINY, run_workflow, workflow

from monai_sre import SREConv
from monai_sre.data import get_dataset, load_error
from monai_sre.transforms import classification_transforms
from monai_sre.workflows import export_images

CONFIGS = BUNDLES / "sre_r18" / "configs"
# inference.json is an overlay on train.json, whose run record it reads
INFERENCE = [CONFIGS / "train.json", CONFIGS / "inference.json"]
# non-default preprocessing: the paper's [-1, 1] intensities and the whole grid (no field-of-view mask); kernels
# without the box corners
SWITCHES = {"intensity_range": [-1.0, 1.0], "field_of_view": None, "sre_kwargs": {"circular": True}}


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """A one-epoch 2D run (16 tiny images) trained with :data:`SWITCHES`."""
    out = tmp_path_factory.mktemp("r18_settings")
    run_workflow([CONFIGS / "train.json"], run_id="training", dataset="breastmnist",
                 data_root=tiny_data["breastmnist"], output_dir=str(out), **TINY, **SWITCHES)
    return out


def _evaluate(out, tiny_data, **settings):
    wf = run_workflow([CONFIGS / "train.json", CONFIGS / "evaluate.json"], run_id="evaluating", dataset="breastmnist",
                      data_root=tiny_data["breastmnist"], output_dir=str(out), num_workers=0, **settings)
    images = torch.stack([item["image"] for item in wf.parser.get_parsed_content("validate#dataset")])
    return wf.parser.get_parsed_content("validate#evaluator").state.metrics, images


def _infer(out, images, pred_file, **settings):
    run_workflow(INFERENCE, run_id="inferring", dataset="breastmnist", output_dir=str(out),
                 input=str(images), prediction_file=str(pred_file), **settings)
    with open(pred_file) as f:
        return list(csv.DictReader(f))


def test_checkpoints_record_the_run_as_plain_data(trained):
    for name in ("model.pt", "last.pt"):
        record = torch.load(trained / "models" / name, weights_only=True)["record"]
        preprocessing = record["preprocessing"]
        assert preprocessing["intensity_range"] == [-1.0, 1.0] and preprocessing["field_of_view"] is None
        assert record["network"]["widths"] == TINY["widths"] and record["network"]["network_name"] == "sre_resnet18"
        assert record["network"]["num_classes"] == 2 and record["network"]["in_channels"] == 1
        assert record["training"]["learning_rate"] == 0.02 and record["training"]["batch_size"] == TINY["batch_size"]
        assert len(record["data"]["data_fingerprint"]) == 8 and record["network"]["sre_kwargs"] == {"circular": True}
    assert set(torch.load(trained / "models" / "model.pt", weights_only=True)) == {"model", "record"}


def test_evaluation_builds_the_network_of_the_record(trained, tiny_data):
    wf = workflow([CONFIGS / "train.json", CONFIGS / "evaluate.json"], run_id="evaluating", dataset="breastmnist",
                  data_root=tiny_data["breastmnist"], output_dir=str(trained))
    convs = [m for m in wf.parser.get_parsed_content("network").modules() if isinstance(m, SREConv)]
    assert convs and all(m.circular for m in convs)


@pytest.mark.slow
def test_evaluation_and_inference_preprocess_like_training_without_the_switches(trained, tiny_data, tmp_path):
    bare, bare_images = _evaluate(trained, tiny_data)
    repeated, repeated_images = _evaluate(trained, tiny_data, widths=TINY["widths"], **SWITCHES)
    assert bare == repeated and torch.equal(bare_images, repeated_images)
    # the training preprocessing: mapped to [-1, 1], no field-of-view mask
    recipe = classification_transforms(2, None, SWITCHES["intensity_range"], field_of_view=SWITCHES["field_of_view"])
    expected = get_dataset("breastmnist", "test", root=tiny_data["breastmnist"], transform=recipe)
    assert torch.equal(bare_images, torch.stack([item["image"] for item in expected]))

    images = tmp_path / "images"
    export_images("breastmnist", images, split="test", n=4, root=tiny_data["breastmnist"])
    rows = _infer(trained, images, tmp_path / "bare.csv")
    assert rows == _infer(trained, images, tmp_path / "repeated.csv", widths=TINY["widths"], **SWITCHES)
    assert len(rows) == 4 and not any(r["error"] for r in rows)


def test_a_disagreeing_value_is_refused_naming_both_values_and_the_switch(trained, tiny_data, tmp_path):
    for configs, run_id in (([CONFIGS / "train.json", CONFIGS / "evaluate.json"], "evaluating"),
                            (INFERENCE, "inferring")):
        wf = workflow(configs, run_id=run_id, dataset="breastmnist", data_root=tiny_data["breastmnist"],
                      output_dir=str(trained), intensity_range=[-0.5, 0.5])
        with pytest.raises(Exception) as err:
            wf.parser.get_parsed_content("trained")
        message = load_error(err.value)
        assert "--intensity_range [-0.5, 0.5] disagrees with checkpoint" in message and "model.pt" in message
        assert "trained with intensity_range=[-1.0, 1.0]" in message and "--override_preprocessing true" in message
        assert "\n" not in message
        meant = workflow(configs, run_id=run_id, dataset="breastmnist", data_root=tiny_data["breastmnist"],
                         output_dir=str(trained), intensity_range=[-0.5, 0.5], override_preprocessing="true")
        assert meant.parser.get_parsed_content("trained")["intensity_range"] == [-0.5, 0.5]
        assert meant.parser.get_parsed_content("trained")["widths"] == TINY["widths"]  # the rest from the checkpoint


def test_old_checkpoint_without_a_record_loads_with_one_warning(trained, tmp_path, tiny_data, caplog):
    shutil.copytree(trained, tmp_path / "run")
    model = tmp_path / "run" / "models" / "model.pt"
    torch.save(torch.load(model, weights_only=True)["model"], model)  # a plain state dict, as older versions wrote
    images = tmp_path / "images"
    export_images("breastmnist", images, split="test", n=2, root=tiny_data["breastmnist"])
    with caplog.at_level(logging.WARNING):
        rows = _infer(tmp_path / "run", images, tmp_path / "pred.csv", widths=TINY["widths"], **SWITCHES)
    assert len(rows) == 2 and not any(r["error"] for r in rows)
    warnings = [r for r in caplog.records if "no record of the run" in r.getMessage()]
    assert len(warnings) == 1 and str(model) in warnings[0].getMessage()


def test_other_widths_are_one_line_naming_the_checkpoint_and_the_setting(trained, tmp_path, tiny_data):
    common = {"dataset": "breastmnist", "data_root": tiny_data["breastmnist"], "widths": [8, 8, 8, 8], **SWITCHES}
    evaluate = [CONFIGS / "train.json", CONFIGS / "evaluate.json"]
    with pytest.raises(Exception) as err:  # meant, so it gets as far as loading the weights
        run_workflow(evaluate, run_id="evaluating", output_dir=str(trained), override_preprocessing=True, **common)
    message = load_error(err.value)
    assert "\n" not in message and len(message) < 400, message
    assert "model.pt does not fit this run's network: it was trained with widths=[4, 4, 4, 4]" in message
    assert "this run has widths=[8, 8, 8, 8]" in message

    shutil.copytree(trained, tmp_path / "run")
    model = tmp_path / "run" / "models" / "model.pt"
    torch.save(torch.load(model, weights_only=True)["model"], model)  # no record: the tensors are summarised
    with pytest.raises(Exception) as err:
        run_workflow(evaluate, run_id="evaluating", output_dir=str(tmp_path / "run"), **common)
    message = load_error(err.value)
    assert "\n" not in message and len(message) < 400, message
    assert "tensors differ in shape (first" in message and "network_name, widths" in message

    with pytest.raises(Exception) as err:  # resuming with other widths is refused before any tensor is loaded
        run_workflow([CONFIGS / "train.json"], run_id="training", output_dir=str(trained),
                     **{**TINY, **common, "epochs": 2})
    message = load_error(err.value)
    assert "\n" not in message and "refusing to resume" in message and "last.pt" in message
    assert "widths: [4, 4, 4, 4] in the run, [8, 8, 8, 8] now" in message and "--output_dir" in message
