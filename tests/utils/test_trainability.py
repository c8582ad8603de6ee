"""layer_statistics / ActivationRecorder: the numbers behind docs/experiments.md."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_sre import SREConv
from monai_sre.utils import ActivationRecorder, layer_statistics, tracked_layers


def _net(norm):
    torch.manual_seed(0)
    return nn.Sequential(
        SREConv(3, 1, 8, 7, padding=3, basis_norm=norm), nn.BatchNorm3d(8), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 2),
    )


def test_recorder_measures_gain_and_removes_its_hooks():
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        net[0].weight.fill_(3.0)
    with ActivationRecorder(net) as rec:
        net(torch.randn(4, 1, 4, 4))
    assert [n for n, _ in rec.layers] == ["0", "2"]
    assert rec.stats["0"]["gain"] == pytest.approx(3.0, rel=1e-5)
    assert all(not m._forward_hooks for _, m in tracked_layers(net))


def test_band_average_basis_tames_the_stem_gradient():
    """The original indicator basis gives the 7^3 stem a gradient far larger than its weight; the default does not."""
    x = torch.rand(4, 1, 12, 12, 12)
    y = torch.tensor([0, 1, 0, 1])
    old = {r["layer"]: r for r in layer_statistics(_net("none"), x, y)}["0"]
    new = {r["layer"]: r for r in layer_statistics(_net("mean"), x, y)}["0"]
    assert old["grad_to_weight"] > 10 * new["grad_to_weight"]
    assert old["gain"] > 3 * new["gain"]
    assert new["type"] == "SREConv" and new["gain"] < 2.0


def test_recorder_rejects_non_modules():
    with pytest.raises(TypeError, match="network"):
        ActivationRecorder("net")
