"""The run record: plain data in groups, compared key by key, and the one-line refusal to resume another run."""

from __future__ import annotations

import json

import pytest
import torch

from monai_sre.checkpoint import RunRecord, differing, flat_record, resume_refusal

RECORD = dict(
    data={"data_fingerprint": "1a2b3c4d"},
    network={"network_name": "sre_r3d_18", "widths": (4, 4)},
    preprocessing={"intensity_range": [0, 1]},
    training={"learning_rate": 0.02, "seed": 0, "rotate_augment": False, "epochs": 2},
    resumable=["epochs"],
)


def test_record_is_plain_data_in_groups_and_written_to_the_run_folder(tmp_path):
    record = RunRecord(**RECORD)
    assert record.state_dict()["network"] == {"network_name": "sre_r3d_18", "widths": [4, 4]}  # tuples as lists
    assert record.flat["learning_rate"] == 0.02 and set(record.flat) == {
        "data_fingerprint", "network_name", "widths", "intensity_range", "learning_rate", "seed", "rotate_augment",
        "epochs"}
    path = record.write(tmp_path / "run")
    assert json.loads(open(path).read()) == record.state_dict()
    torch.save({"record": record.state_dict()}, tmp_path / "ck.pt")
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["record"] == record.state_dict()


@pytest.mark.parametrize("kwargs,error", [
    ({"training": {"device": torch.device("cpu")}}, "setting 'device' must be plain data"),
    ({"network": {"seed": 1}, "training": {"seed": 0}}, "'seed' is in both group 'network' and group 'training'"),
    ({"training": {"seed": 0}, "resumable": ["epochs"]}, r"resumable names \['epochs'\], which are not keys"),
])
def test_bad_records_are_named(kwargs, error):
    with pytest.raises((TypeError, ValueError), match=error):
        RunRecord(**kwargs)


def test_values_compare_by_value():
    assert differing({"a": [0, 1], "b": 1}, {"a": (0.0, 1.0), "b": 1.0}) == {}
    assert differing({"a": 1}, {"a": 2, "b": 3}) == {"a": (1, 2)}  # only the keys both have
    assert flat_record({"widths": [4]}) == {"widths": [4]}  # a legacy flat record as it is


def test_the_same_run_with_more_epochs_resumes():
    saved = RunRecord(**RECORD).state_dict()
    more = RunRecord(**{**RECORD, "training": {**RECORD["training"], "epochs": 10}})
    assert resume_refusal("/r/models/last.pt", saved, more, "/r") is None


def test_another_run_is_refused_in_one_line_naming_each_key_both_values_and_the_ways_out():
    saved = RunRecord(**RECORD).state_dict()
    other = RunRecord(**{**RECORD, "training": {**RECORD["training"], "rotate_augment": True, "seed": 3}})
    message = resume_refusal("/r/models/last.pt", saved, other, "/r")
    assert "\n" not in message and "refusing to resume /r/models/last.pt" in message
    assert "seed: 0 in the run, 3 now" in message and "rotate_augment: False in the run, True now" in message
    assert "learning_rate" not in message
    assert "--output_dir" in message and "delete /r" in message


def test_a_key_the_saved_record_lacks_or_only_it_has_differs():
    saved = RunRecord(**RECORD).state_dict()
    more = RunRecord(**{**RECORD, "training": {**RECORD["training"], "blur": 1.0}})
    assert "blur: None in the run, 1.0 now" in resume_refusal("last.pt", saved, more)
    legacy = {"network_name": "sre_r3d_18", "widths": [4, 4]}  # older checkpoints: network and preprocessing only
    assert resume_refusal("last.pt", legacy, RunRecord(**RECORD)) is None
    assert "widths: [8, 8] in the run" in resume_refusal("last.pt", {**legacy, "widths": [8, 8]}, RunRecord(**RECORD))


def test_a_key_added_since_a_run_was_written_reads_as_what_that_run_did():
    saved = RunRecord(**RECORD).state_dict()  # written before the record held sre_kwargs
    same = RunRecord(**{**RECORD, "network": {**RECORD["network"], "sre_kwargs": None}})
    assert resume_refusal("last.pt", saved, same) is None
    other = RunRecord(**{**RECORD, "network": {**RECORD["network"], "sre_kwargs": {"circular": True}}})
    assert "sre_kwargs: None in the run, {'circular': True} now" in resume_refusal("last.pt", saved, other)
    assert "sre_kwargs" not in RunRecord(**RECORD).flat  # only records written by a run are filled in
