from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from monai_sre.experiments.model_summary import count_flops, count_parameters, format_summary_table, model_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "bundles"))
from bundle_utils import load_script  # noqa: E402


def test_count_flops_of_a_plain_conv_and_linear():
    net = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 5 * 5 * 5, 3))
    x = torch.randn(1, 2, 5, 5, 5)
    expected = 2 * (4 * 2 * 27 * 125) + 2 * (500 * 3)
    assert count_flops(net, x) == expected
    assert count_parameters(net) == 4 * 2 * 27 + 4 + 500 * 3 + 3


def test_sre_conv_counts_as_its_dense_convolution():
    from monai_sre.blocks import SREConv

    conv = SREConv(3, 2, 4, 5, padding=2, bias=False)
    assert count_flops(conv, torch.randn(1, 2, 6, 6, 6)) == 2 * 4 * 2 * 125 * 216


def test_sre_net_flops_versus_strided_baseline():
    sre = model_summary(["sre_r3d_18"], size_3d=10, invariance=False, widths=(4, 4, 8, 8), seed=1)[0]
    std = model_summary(["sre_r3d_18"], size_3d=10, invariance=False, widths=(4, 4, 8, 8), conv_type="standard")[0]
    assert sre["params"] < std["params"]
    # SRE downsamples by pooling after stride-1 convs, so it costs more than the strided baseline
    assert sre["flops"] > std["flops"] > 0
    assert sre["input_shape"] == [1, 10, 10, 10]


def test_script_table_and_json(tmp_path, capsys):
    module = load_script("model_summary")
    out = tmp_path / "sub" / "summary.json"
    rows = module.main(
        ["--models", "sre_resnet18", "plain_resnet18", "--size-2d", "13", "--widths", "4", "4", "8", "8",
         "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert "sre_resnet18" in printed and "plain_resnet18" in printed and "GFLOPs" in printed
    saved = json.loads(out.read_text())
    assert saved == rows and [r["name"] for r in saved] == ["sre_resnet18", "plain_resnet18"]
    by_name = {r["name"]: r for r in saved}
    assert by_name["sre_resnet18"]["invariance_error"] < 1e-4
    assert by_name["plain_resnet18"]["invariance_error"] > 1e-3
    assert by_name["sre_resnet18"]["input_shape"] == [1, 13, 13]
    assert format_summary_table(saved).count("\n") == 3
    assert not list(out.parent.glob("*.tmp"))


def test_summary_rejects_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        model_summary(["no_such_net"])
