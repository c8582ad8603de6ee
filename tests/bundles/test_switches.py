"""Every on/off id of the three bundles reads ``true``/``false`` from the command line as Fire passes them (strings),
``True``/``False`` as bools, and refuses anything else naming the id."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bundle_utils import BUNDLES, REPO, workflow
from monai.transforms import RandAffined, Randomizable, RandRotated, RandScaleCropd

from monai_sre.data import load_error
from monai_sre.handlers import ResumeFromCheckpoint
from monai_sre.workflows import SettingError, refusal

# bundle -> overrides its training transforms need (the 2D recipe crops, so it needs input_size to augment)
BUNDLE_OVERRIDES = {"sre_r3d": {}, "sre_r18": {"input_size": 28}, "sre_unet3d": {}}
# bundle -> a transform that only its augmentation adds (the classification bundles blur by default, augment or not)
AUGMENTATION = {"sre_r3d": RandAffined, "sre_r18": RandScaleCropd, "sre_unet3d": RandRotated}
WORDS = [("false", False), ("False", False), (False, False), ("TRUE", True), (True, True)]  # more: test_overrides.py


def _train(bundle, **override):
    return workflow([BUNDLES / bundle / "configs" / "train.json"], run_id="training",
                    **BUNDLE_OVERRIDES[bundle], **override).parser


def _random(transforms) -> bool:
    return any(isinstance(t, Randomizable) for t in transforms.transforms)


@pytest.mark.parametrize("bundle", sorted(BUNDLE_OVERRIDES))
@pytest.mark.parametrize("given,on", WORDS)
def test_augment_switch(bundle, given, on):
    parser = _train(bundle, augment=given)
    transforms = parser.get_parsed_content("train_transforms").transforms
    assert any(isinstance(t, AUGMENTATION[bundle]) for t in transforms) is on
    assert not _random(parser.get_parsed_content("eval_transforms"))


@pytest.mark.parametrize("bundle", ["sre_r3d", "sre_r18"])
@pytest.mark.parametrize("given,on", WORDS)
def test_rotate_augment_switch(bundle, given, on):
    transforms = _train(bundle, rotate_augment=given).get_parsed_content("train_transforms").transforms
    assert any(isinstance(t, RandRotated) for t in transforms) is on


def _handler_arg(parser, handler: str, arg: str) -> str:
    """The id of argument ``arg`` of the training handler whose target ends with ``handler``."""
    index = next(i for i, h in enumerate(parser["train#handlers"])
                 if isinstance(h, dict) and h["_target_"].endswith(handler))
    return f"train#handlers#{index}#{arg}"


# id -> (config item it reaches, how that item reads the switch)
SWITCHES = {
    "resume": (("ResumeFromCheckpoint", "enabled"), lambda on: on),
    "progress_bar": (("ProgressBar", "disable"), lambda on: not on),
    "amp": ("train#trainer#amp", lambda on: on),
}


def _item(parser, where) -> str:
    return where if isinstance(where, str) else _handler_arg(parser, *where)


@pytest.mark.parametrize("bundle", sorted(BUNDLE_OVERRIDES))
@pytest.mark.parametrize("given,on", WORDS)
def test_resume_progress_bar_and_amp_switches(bundle, given, on):
    parser = _train(bundle, **{name: given for name in SWITCHES})
    for where, reads in SWITCHES.values():
        assert parser.get_parsed_content(_item(parser, where)) is reads(on)
    assert parser.get_parsed_content("validate#evaluator#amp") is on


def test_handlers_take_the_switches_as_bools(tmp_path):
    handler = ResumeFromCheckpoint(str(tmp_path / "last.pt"), {"x": object()}, enabled=False)
    assert handler.enabled is False
    with pytest.raises(TypeError, match="enabled must be True or False, got 'false'"):
        ResumeFromCheckpoint(str(tmp_path / "last.pt"), {"x": object()}, enabled="false")


@pytest.mark.parametrize("bundle", sorted(BUNDLE_OVERRIDES))
@pytest.mark.parametrize("name", ["augment", *sorted(SWITCHES)])
def test_other_values_are_refused_naming_the_id(bundle, name):
    with pytest.raises(Exception) as err:  # by the check of every switch, in initialize
        _train(bundle, **{name: "maybe"})
    assert str(refusal(err.value)) == f"--{name} 'maybe': expected true or false (any case)."
    assert isinstance(refusal(err.value), SettingError)


@pytest.mark.parametrize("name", ["augment", *sorted(SWITCHES)])
def test_the_config_items_refuse_other_values_naming_the_id(name):
    parser = workflow([BUNDLES / "sre_r3d" / "configs" / "train.json"], run_id="training").parser
    parser[name] = "maybe"  # past the check of initialize: the item reading it refuses it too
    parser.parse()
    with pytest.raises(Exception) as err:
        parser.get_parsed_content("train_transforms" if name == "augment" else _item(parser, SWITCHES[name][0]))
    assert load_error(err.value).startswith('ValueError: Got "maybe", expected a value from: yes, true')


@pytest.mark.parametrize("bundle", sorted(BUNDLE_OVERRIDES))
def test_inference_amp_switch(bundle):
    parser = workflow([BUNDLES / bundle / "configs" / name for name in ("train.json", "inference.json")],
                      run_id="inferring", amp="false").parser
    assert parser.get_parsed_content("infer#evaluator#amp") is False


@pytest.mark.slow
@pytest.mark.extended
def test_augment_on_the_command_line_turns_augmentation_on_and_off(tmp_path):
    """The real command line: Fire hands ``--augment false`` over as the string "false"."""
    config = BUNDLES / "sre_unet3d" / "configs" / "train.json"
    show = "$print('RANDOM', any(isinstance(t, monai.transforms.Randomizable) for t in @train_transforms.transforms))"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "show", "--config_file", str(config), "--logging_file",
           "False", "--output_dir", str(tmp_path), "--show", show]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for args, expected in ((["--augment", "true"], "RANDOM True"), (["--augment", "false"], "RANDOM False")):
        proc = subprocess.run(cmd + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert expected in proc.stdout, proc.stdout[-2000:]
