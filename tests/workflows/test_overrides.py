"""Switches given on the bundle command line: ``--augment false`` is the string "false", and must mean False; a
mistyped ``--epoch`` is refused, naming ``--epochs``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monai_sre.workflows import check_switches

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "sre_r3d"


@pytest.mark.parametrize("argv", [
    ["--epochs", "1", "--learning_rate=0.5"],
    ["--train#dataloader#pin_memory", "True"],  # a new argument of an existing component
    ["--validate#evaluator#amp", "False", "--config_file", "x.json", "--logging_file", "False"],
    ["--ckpt_path", "m.pt", "--rotation_backend", "torchio"],  # ids of the evaluation overlays
])
def test_known_switches_pass(argv):
    check_switches(BUNDLE, ["run", "training", *argv])


def test_the_id_the_command_runs_may_be_defined_on_the_command_line():
    check_switches(BUNDLE, ["run", "show", "--show", "$print(@epochs)"])
    check_switches(BUNDLE, ["run", "--run_id", "show", "--show", "$print(@epochs)", "--init_id=setup", "--setup", "1"])
    with pytest.raises(ValueError, match="unknown switch --show"):
        check_switches(BUNDLE, ["run", "training", "--show", "$print(@epochs)"])


@pytest.mark.parametrize("argv,named", [
    (["--epoch", "1"], "--epoch (nearest: --epochs"),
    (["--intensity_rang", "[-1,1]"], "--intensity_rang (nearest: --intensity_range"),
    (["--train#dataloaderr#num_workers", "2"], "--train#dataloaderr#num_workers"),
])
def test_unknown_switches_are_named_with_the_nearest_ids(argv, named):
    with pytest.raises(ValueError) as err:
        check_switches(BUNDLE, ["run", "training", "--epochs", "2", *argv])
    assert str(err.value).startswith(f"unknown switch {named}") and "bundle sre_r3d" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("argv", [["--network_def#sre_kwargs", "{'circular': True}"], ["--run_record#resumable=[]"]])
def test_a_switch_into_a_recorded_component_names_the_switches_to_use(argv):
    with pytest.raises(ValueError, match=r"is built from switches that the run record holds \(.*--sre_kwargs") as err:
        check_switches(BUNDLE, ["run", "training", *argv])
    assert str(err.value).startswith(f"--{argv[0][2:].split('=')[0]}: ")


def test_only_a_monai_bundle_command_line_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest", "--epoch", "1"])
    check_switches(BUNDLE)  # not started as python -m monai.bundle: nothing to check
    monkeypatch.setattr(sys, "argv", [str(Path("site-packages", "monai", "bundle", "__main__.py")), "--epoch", "1"])
    with pytest.raises(ValueError, match="unknown switch --epoch"):
        check_switches(BUNDLE)
    check_switches(tmp_path, ["--epoch", "1"])  # a bundle_root without configs: nothing to check against
