"""The strided SRE stem: exact grid invariance on sizes it accepts, the input window of convolution plus pooling."""

from __future__ import annotations

import pytest
import torch
from monai.networks import eval_mode

from monai_sre.nets import SREResNet, get_model
from monai_sre.utils import export_to_conv, grid_symmetries, invariance_error

TINY = {"widths": (4, 8, 8, 8)}


@pytest.mark.parametrize("side", [12, 16])  # 12 -> 6 -> 3 -> 2 -> 1 also meets odd sizes after the stem
def test_strided_stem_keeps_invariance_to_all_48_grid_symmetries(side):
    torch.manual_seed(0)
    net = get_model("sre_r3d_18_strided", **TINY)
    with eval_mode(net):
        assert invariance_error(net, torch.randn(2, 1, side, side, side), grid_symmetries(3), chunk_size=16) <= 1e-5


def test_strided_stem_reads_the_window_of_convolution_then_pooling():
    def support(stem_mode: str) -> torch.Tensor:
        torch.manual_seed(0)
        net = SREResNet(3, 1, 2, widths=(4,), layers=(1,), stem_stride=2, stem_mode=stem_mode).eval()
        x = torch.randn(1, 1, 16, 16, 16, requires_grad=True)
        net.stem(x)[0, :, 3, 4, 5].sum().backward()
        return x.grad[0, 0] != 0

    strided, pooled = support("strided"), support("pool")
    assert strided.sum() > 0 and torch.equal(strided, pooled)


def test_strided_stem_costs_a_fraction_of_the_full_resolution_stem():
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 1, 32, 32, 32)
    flops = {}
    for name in ("sre_r3d_18", "sre_r3d_18_strided"):
        stem = get_model(name, **TINY).stem[0].eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            stem(x)
        flops[name] = counter.get_total_flops()
    # 8^3 taps on an eighth of the voxels against 7^3 taps on all of them
    assert flops["sre_r3d_18_strided"] / flops["sre_r3d_18"] == pytest.approx(8**3 / 8 / 7**3, rel=0.05)


def test_odd_sizes_are_refused_by_the_strided_stem_naming_the_shape():
    net = get_model("sre_r3d_18_strided", **TINY)
    with pytest.raises(ValueError, match=r"multiples of 2 .* \[1, 1, 15, 16, 16\].*stem_mode='pool'"):
        net(torch.randn(1, 1, 15, 16, 16))
    with pytest.raises(ValueError, match="stem_mode must be one of"):
        SREResNet(3, 1, 2, stem_mode="fold")


def test_export_of_the_strided_stem_gives_the_same_logits():
    torch.manual_seed(0)
    net = get_model("sre_r3d_18_strided", **TINY).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(export_to_conv(net)(x), net(x), rtol=1e-5, atol=1e-5)
