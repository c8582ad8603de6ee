"""``configs/evaluate_tta.json`` of both classification bundles: the evaluator's network becomes GridTTA around the
bundle's network, composed with the test and rotated overlays, writing to folders of its own."""

from __future__ import annotations

import pytest
from bundle_utils import BUNDLES
from monai.bundle import ConfigParser

from monai_sre.utils import GridTTA

# bundle, dataset, group size of the TTA, post-processing of the task
CASES = [("sre_r3d", "synthetic3d", 24, "softmax"), ("sre_r18", "synthetic2d", 8, "softmax"),
         ("sre_r18", "chestmnist", 8, "sigmoid")]


def _parser(bundle, dataset, overlays):
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / bundle / "configs" / name) for name in ["train.json", *overlays]])
    parser["dataset"], parser["output_dir"], parser["widths"] = dataset, "/tmp/run", [4, 4, 4, 4]
    return parser


@pytest.mark.parametrize("bundle, dataset, size, activation", CASES)
def test_tta_overlay_wraps_the_evaluated_network_and_writes_apart(bundle, dataset, size, activation):
    plain = _parser(bundle, dataset, ["evaluate.json", "evaluate_rotated.json"])
    tta = _parser(bundle, dataset, ["evaluate.json", "evaluate_rotated.json", "evaluate_tta.json"])
    wrapped = tta.get_parsed_content("validate#evaluator#network")
    assert isinstance(wrapped, GridTTA) and wrapped.network is tta.get_parsed_content("network")
    assert len(wrapped.symmetries) == size and wrapped.activation == activation
    assert not isinstance(plain.get_parsed_content("validate#evaluator#network"), GridTTA)
    # the checkpoint is loaded into the wrapped network, which the TTA shares
    loader = tta.get_parsed_content("validate#handlers")[0]
    assert loader.load_dict["model"] is wrapped.network
    for key, folder in (("eval_dir", "eval_tta"), ("rotated_dir", "rotated_tta")):
        assert tta.get_parsed_content(key) == f"/tmp/run/{folder}" != plain.get_parsed_content(key)
    sweep = tta.get_parsed_content("rotation_sweep")
    assert sweep.output_dir == "/tmp/run/rotated_tta"
