from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from monai.networks import eval_mode

from monai_sre.blocks import SREAvgPool, SREConv, SREConvBase
from monai_sre.nets import SRE_RESNET_DEPTHS, SREResNet, get_model
from monai_sre.experiments.model_summary import count_parameters
from monai_sre.utils import equivariance_error, export_to_conv, grid_symmetries, invariance_error

TINY = (4, 8, 8, 16)  # widths for tests whose property does not depend on width

# (kwargs, input_shape, expected_logits, expected_features)
TEST_CASES = [
    ({"spatial_dims": 2, "widths": TINY}, (2, 1, 32, 32), (2, 3), (2, 16, 2, 2)),
    ({"spatial_dims": 2, "widths": TINY, "in_channels": 3, "stem_stride": 1}, (2, 3, 28, 28), (2, 3), (2, 16, 4, 4)),
    ({"spatial_dims": 2, "widths": TINY, "block": "bottleneck", "layers": (1, 1, 1, 1)}, (2, 1, 33, 33), (2, 3), (2, 64, 3, 3)),
    ({"spatial_dims": 3, "widths": TINY, "stem_pool": True}, (2, 1, 27, 27, 27), (2, 3), (2, 16, 1, 1, 1)),
    ({"spatial_dims": 3, "widths": (4, 8), "layers": (1, 2), "kernel_sizes": (5, 3)}, (1, 1, 12, 12, 12), (1, 3), (1, 8, 3, 3, 3)),
    ({"spatial_dims": 1, "widths": TINY, "stem_stride": 1}, (2, 1, 20), (2, 3), (2, 16, 3)),
]


def _net(spatial_dims, in_channels=1, num_classes=3, **kwargs):
    return SREResNet(spatial_dims, in_channels, num_classes, **kwargs)


@pytest.mark.parametrize("kwargs, input_shape, expected_logits, expected_features", TEST_CASES)
@pytest.mark.parametrize("conv_type", ["sre", "standard"])
def test_shapes_and_head_split(kwargs, input_shape, expected_logits, expected_features, conv_type):
    torch.manual_seed(0)
    net = _net(conv_type=conv_type, **kwargs)
    x = torch.randn(input_shape)
    with eval_mode(net), torch.no_grad():
        logits = net(x)
        feats = net.forward_features(x)
        assert logits.shape == expected_logits
        if conv_type == "sre":
            assert feats.shape == expected_features
        assert torch.equal(net.forward_head(feats), logits)
        assert net.forward_head(feats, pre_logits=True).shape == (input_shape[0], net.num_features)


@pytest.mark.parametrize("kwargs, input_shape, expected_logits, expected_features", TEST_CASES)
def test_features_equivariant_logits_invariant(kwargs, input_shape, expected_logits, expected_features):
    torch.manual_seed(0)
    net = _net(**kwargs)
    x = torch.randn(input_shape)
    features = _Features(net)
    with eval_mode(features):
        assert equivariance_error(features, x, chunk_size=48) < 1e-5
    assert invariance_error(net, x, chunk_size=48) < 1e-5


class _Features(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_features(x)


# --- parameter counts -----------------------------------------------------------------------

PARAM_RANGES = [
    ("sre_resnet18", 3.9e6, 4.0e6),
    ("sre_r3d_18", 2.5e6, 2.7e6),
    ("plain_resnet18", 11.1e6, 11.3e6),
    ("r3d_18", 33.1e6, 33.3e6),
]


@pytest.mark.parametrize("name, low, high", PARAM_RANGES)
def test_paper_parameter_counts(name, low, high):
    assert low <= count_parameters(get_model(name, in_channels=1, num_classes=2)) <= high


def _stage_sre_weights(widths, layers, bands):
    """Band weights of the stage convolutions of a basic-block net, from its layout alone."""
    total, cin = 0, widths[0]
    for w, n, b in zip(widths, layers, bands):
        total += (cin * w + (2 * n - 1) * w * w) * b
        cin = w
    return total


@pytest.mark.parametrize(
    "name, bands", [("sre_resnet18", (5, 5, 3, 3)), ("sre_r3d_18", (2, 2, 2, 2)), ("sre_r3d_18_k5", (3, 3, 3, 3))]
)
def test_sre_weights_match_band_layout(name, bands):
    net = get_model(name)
    stage_weights = sum(m.weight.numel() for m in net.stages.modules() if isinstance(m, SREConv))
    assert stage_weights == _stage_sre_weights(net.widths, (2, 2, 2, 2), bands)


def test_baseline_counts_match_monai_resnet():
    from monai.networks.nets import resnet18 as monai_resnet18

    ours_3d = get_model("r3d_18", in_channels=1, num_classes=2)
    ref_3d = monai_resnet18(spatial_dims=3, n_input_channels=1, num_classes=2, bias_downsample=False)
    assert count_parameters(ours_3d) == count_parameters(ref_3d)
    ours_2d = get_model("plain_resnet18", in_channels=3, num_classes=5)
    ref_2d = monai_resnet18(spatial_dims=2, n_input_channels=3, num_classes=5, conv1_t_size=3, bias_downsample=False)
    assert count_parameters(ours_2d) == count_parameters(ref_2d)


@pytest.mark.parametrize("depth", sorted(SRE_RESNET_DEPTHS))
def test_depths(depth):
    block, layers = SRE_RESNET_DEPTHS[depth]
    net = get_model(f"sre_resnet{depth}", widths=TINY)
    blocks = [len(stage) for stage in net.stages]
    assert tuple(blocks) == layers
    convs_per_block = 2 if block == "basic" else 3
    weighted = [m for m in net.modules() if isinstance(m, (SREConv, nn.Conv2d, nn.Linear))]
    shortcuts = sum(1 for stage in net.stages for b in stage if isinstance(b.shortcut, nn.Sequential))
    assert len(weighted) - shortcuts == depth == 1 + convs_per_block * sum(layers) + 1


# --- exact invariance at MedMNIST sizes ------------------------------------------------------


@pytest.mark.parametrize("side", [28, 32])
@pytest.mark.parametrize("name", ["sre_resnet18", "sre_r3d_18"])
def test_invariance_at_medmnist_sizes(name, side):
    torch.manual_seed(0)
    sre = get_model(name, widths=TINY)
    x = torch.randn(1, 1, *([side] * sre.spatial_dims))
    syms = grid_symmetries(sre.spatial_dims)
    assert len(syms) == (8 if sre.spatial_dims == 2 else 48)
    err = invariance_error(sre, x, syms, chunk_size=48)
    assert err <= 1e-4
    torch.manual_seed(0)
    base = get_model(name, widths=TINY, conv_type="standard")
    base_err = invariance_error(base, x, syms, chunk_size=48)
    assert base_err > max(1e-3, 100 * err)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_batched_errors_match_equivariance_error(spatial_dims):
    torch.manual_seed(0)
    net = SREResNet(spatial_dims, 1, 2, widths=(4, 4, 4, 4), conv_type="standard", stem_stride=1)
    x = torch.randn(2, 1, *([9] * spatial_dims))
    syms = grid_symmetries(spatial_dims)[::5]
    features = _Features(net)
    with eval_mode(net), torch.no_grad():
        ref = equivariance_error(net, x, syms)
        ref_features = equivariance_error(features, x, syms)
    assert ref > 1e-6 and ref_features > 1e-6  # a non-invariant net, so the comparison means something
    assert invariance_error(net, x, syms, chunk_size=3) == pytest.approx(ref, rel=1e-4)
    with eval_mode(features):
        assert equivariance_error(features, x, syms, chunk_size=3) == pytest.approx(ref_features, rel=1e-4)
    with pytest.raises(ValueError, match="without spatial axes"):
        invariance_error(features, x, syms)


@pytest.mark.parametrize(
    "name, side", [("sre_resnet18", 14), ("sre_r3d_18", 10), ("sre_r3d_18_k5", 10), ("sre_r3d_18_fullres", 10)]
)
def test_real_presets_invariant_at_small_odd_size(name, side):
    # full-width presets; 14 -> 7 -> 4 and 10 -> 5 -> 3 -> 2 exercise odd-size pooling
    torch.manual_seed(0)
    net = get_model(name)
    x = torch.randn(1, 1, *([side] * net.spatial_dims))
    syms = grid_symmetries(net.spatial_dims)
    if net.spatial_dims == 3:
        syms = syms[::8]  # 6 of the 48 (all 48 are checked at full width in the slow tests)
    assert invariance_error(net, x, syms, chunk_size=8) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name, side", [("sre_resnet18", 28), ("sre_resnet18", 32), ("sre_r3d_18", 28)])
def test_real_presets_invariant_full_group(name, side):
    torch.manual_seed(0)
    net = get_model(name)
    x = torch.randn(1, 1, *([side] * net.spatial_dims))
    assert invariance_error(net, x, chunk_size=8) <= 1e-4


@pytest.mark.slow
def test_invariance_64_cubed():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 64, 64, 64)
    err = invariance_error(get_model("sre_r3d_18", widths=TINY), x, chunk_size=16)
    assert err <= 1e-4
    torch.manual_seed(0)
    base_err = invariance_error(get_model("r3d_18", widths=TINY), x, grid_symmetries(3)[:8], chunk_size=8)
    assert base_err > max(1e-3, 100 * err)


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sre_resnet18", "sre_r3d_18", "sre_r3d_18_k5", "sre_resnet50"])
def test_sre_nets_have_no_strided_conv_and_no_max_pool(name):
    net = get_model(name, widths=TINY, stem_pool=True, stem_stride=2)
    convs = [m for m in net.modules() if isinstance(m, (SREConv, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    assert all(all(s == 1 for s in m.stride) for m in convs)
    assert not any(isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)) for m in net.modules())
    assert all(isinstance(m, SREConv) for m in convs if max(m.kernel_size) > 1)


def test_standard_switch_changes_only_the_convolutions():
    sre = SREResNet(2, 1, 2, widths=TINY, kernel_sizes=(5, 5, 3, 3), stem_pool=True)
    std = SREResNet(2, 1, 2, widths=TINY, kernel_sizes=(5, 5, 3, 3), stem_pool=True, conv_type="standard")
    assert not any(isinstance(m, SREConvBase) for m in std.modules())
    assert any(isinstance(m, nn.MaxPool2d) for m in std.modules())
    strided = [m for m in std.modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    assert len(strided) == 1 + 2 * 3  # stem + (main, shortcut) of stages 2-4
    kernels = lambda net: [tuple(m.kernel_size) for m in net.modules() if isinstance(m, (SREConv, nn.Conv2d))]
    assert kernels(sre) == kernels(std)
    sre_pools = [m for m in sre.modules() if isinstance(m, SREAvgPool)]
    assert len(sre_pools) == 2 + 3  # stem_stride, stem_pool, one per downsampling block


def test_norm_act_dropout_and_options():
    torch.manual_seed(0)
    net = SREResNet(
        2, 2, 3, widths=TINY, norm=("group", {"num_groups": 2}), act="leakyrelu", dropout=0.5,
        zero_init_residual=True, sre_kwargs={"circular": True}, stem_channels=6,
    )
    assert any(isinstance(m, nn.GroupNorm) for m in net.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in net.modules())
    assert all(m.circular for m in net.modules() if isinstance(m, SREConv))
    assert net.stem[0].out_channels == 6
    for stage in net.stages:
        for block in stage:
            assert torch.count_nonzero(block.last_norm().weight) == 0
    x = torch.randn(2, 2, 15, 15)
    net.train()
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))  # dropout active
    with eval_mode(net), torch.no_grad():
        assert torch.equal(net(x), net(x))
    assert invariance_error(net, x) < 1e-5  # group norm and circular kernels keep invariance


def test_sre_kwargs_reach_every_sre_conv():
    with pytest.raises(TypeError):
        SREResNet(2, 1, 2, widths=TINY, sre_kwargs={"no_such_option": True})
    net = SREResNet(3, 1, 2, widths=TINY, sre_kwargs={"spacing": (1.0, 1.0, 2.0)})
    sre = [m for m in net.modules() if isinstance(m, SREConv)]
    assert len(sre) == 1 + 2 * 8 and all(m.spacing == (1.0, 1.0, 2.0) for m in sre)


def test_json_friendly_construction():
    from monai.bundle import ConfigParser

    config = {
        "net": {
            "_target_": "monai_sre.nets.SREResNet", "spatial_dims": 3, "in_channels": 1, "num_classes": 4,
            "layers": [1, 1, 1, 1], "widths": [4, 4, 8, 8], "kernel_sizes": [3, 3, 5, 5], "num_bands": [2, 2, None, 3], "stem_stride": 1,
            "norm": ["instance", {"affine": True}], "act": ["relu", {"inplace": True}],
        },
        "preset": {
            "_target_": "monai_sre.get_model", "name": "sre_resnet18", "in_channels": 3, "num_classes": 5,
            "widths": [4, 8, 8, 16],
        },
    }
    parser = ConfigParser(config)
    net = parser.get_parsed_content("net")
    assert [m.num_bands for m in net.stages.modules() if isinstance(m, SREConv)] == [2, 2, 2, 2, 3, 3, 3, 3]
    assert any(isinstance(m, nn.InstanceNorm3d) for m in net.modules())
    preset = parser.get_parsed_content("preset")
    with eval_mode(net, preset), torch.no_grad():
        assert net(torch.randn(1, 1, 9, 9, 9)).shape == (1, 4)
        assert preset(torch.randn(1, 3, 8, 8)).shape == (1, 5)


@pytest.mark.parametrize("name, side", [("sre_resnet18", 15), ("sre_r3d_18", 11)])
def test_input_smoothing_is_the_filter_before_the_stem_and_keeps_invariance(name, side):
    from monai_sre.blocks import GaussianSmoothing

    torch.manual_seed(0)
    plain = get_model(name, widths=TINY).eval()
    smoothed = get_model(name, widths=TINY, input_smoothing=0.7).eval()
    assert smoothed.state_dict().keys() == plain.state_dict().keys()
    with pytest.raises(RuntimeError, match=r"input_smoothing=None, this model has 0.7"):
        smoothed.load_state_dict(plain.state_dict())  # a mismatch would change predictions silently
    legacy = plain.state_dict()
    del legacy._metadata[""]["input_smoothing"]  # saved before the option existed: not checked
    smoothed.load_state_dict(legacy)
    with pytest.raises(RuntimeError, match=r"input_smoothing=0.7, this model has None"):
        plain.load_state_dict(smoothed.state_dict())
    assert count_parameters(smoothed) == count_parameters(plain)
    x = torch.randn(2, 1, *([side] * plain.spatial_dims))
    with torch.no_grad():
        out = smoothed(x)
        torch.testing.assert_close(out, plain(GaussianSmoothing(plain.spatial_dims, 0.7)(x)))
        assert not torch.allclose(out, plain(x), atol=1e-4)
    syms = grid_symmetries(plain.spatial_dims)
    assert invariance_error(smoothed, x, syms if plain.spatial_dims == 2 else syms[::8]) <= 1e-4
    script = torch.jit.script(smoothed)
    torch.testing.assert_close(script(x), out)
    torch.testing.assert_close(export_to_conv(smoothed).eval()(x), out, atol=1e-5, rtol=1e-4)


# --- validation -----------------------------------------------------------------------------

BAD_ARGS = [
    ({"spatial_dims": 4}, "spatial_dims"),
    ({"in_channels": 0}, "in_channels"),
    ({"num_classes": -1}, "num_classes"),
    ({"block": "wide"}, "block"),
    ({"conv_type": "dense"}, "conv_type"),
    ({"layers": ()}, "layers"),
    ({"widths": (8, 16)}, "widths"),
    ({"kernel_sizes": (3, 3)}, "kernel_sizes"),
    ({"kernel_sizes": 4}, "odd"),
    ({"stem_kernel_size": 2}, "odd"),
    ({"num_bands": (2, 2, 2)}, "num_bands"),
    ({"stem_stride": 0}, "stem_stride"),
    ({"dropout": 1.0}, "dropout"),
    ({"input_smoothing": 0.0}, "input_smoothing"),
    ({"input_smoothing": "1"}, "input_smoothing"),
]


@pytest.mark.parametrize("override, match", BAD_ARGS)
def test_bad_constructor_arguments(override, match):
    kwargs = {"spatial_dims": 2, "in_channels": 1, "num_classes": 2, "widths": TINY, **override}
    with pytest.raises(ValueError, match=match):
        SREResNet(**kwargs)


def test_bad_inputs():
    net = SREResNet(3, 2, 2, widths=TINY)
    with pytest.raises(ValueError, match=r"spatial_dims=3 expects input .* 5 dims"):
        net(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="2 input channel"):
        net(torch.randn(1, 1, 16, 16, 16))
    with pytest.raises(TypeError, match="sre_kwargs"):
        SREResNet(2, 1, 2, sre_kwargs=[("circular", True)])


# --- export ---------------------------------------------------------------------------------


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        ("sre_resnet18", {}, (2, 1, 15, 15)),
        ("sre_r3d_18", {"widths": TINY}, (2, 1, 13, 13, 13)),
        ("sre_resnet50", {"widths": TINY, "layers": (1, 1, 1, 1), "in_channels": 2}, (2, 2, 11, 11)),
    ],
)
def test_export_to_plain_conv_and_torchscript(name, kwargs, shape):
    torch.manual_seed(0)
    net = get_model(name, num_classes=4, **kwargs)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    net.eval()
    plain = export_to_conv(net).eval()
    assert not any(isinstance(m, SREConvBase) for m in plain.modules())
    x = torch.randn(shape)
    with torch.no_grad():
        ref = net(x)
        assert _rel(plain(x), ref) <= 1e-5
        assert _rel(torch.jit.script(net)(x), ref) <= 1e-5
        assert _rel(torch.jit.script(plain)(x), ref) <= 1e-5


# --- training -------------------------------------------------------------------------------


def _train_step(name, widths, side):
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "num_classes": 3}
    if widths is not None:
        kwargs["widths"] = widths
    net = get_model(name, **kwargs)
    x = torch.randn(2, 1, *([side] * net.spatial_dims))
    target = torch.tensor([0, 2])
    with eval_mode(net), torch.no_grad():
        before = net(x)  # fills the SRE kernel caches
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    loss = nn.functional.cross_entropy(net(x), target)
    opt.zero_grad()
    loss.backward()
    assert torch.isfinite(loss)
    for p in net.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    sre_grads = [m.weight.grad for m in net.modules() if isinstance(m, SREConv)]
    assert all(g.abs().sum() > 0 for g in sre_grads)
    opt.step()
    with eval_mode(net), torch.no_grad():
        after = net(x)
    assert not torch.allclose(before, after)  # eval-mode kernel caches follow the updated weights


@pytest.mark.parametrize("name", sorted(__import__("monai_sre").list_models()))
def test_training_step_every_model(name):
    side = 16 if name in ("r3d_18", "sre_r3d_18", "sre_r3d_18_k5", "sre_r3d_18_fullres") else 32
    _train_step(name, (8, 16, 16, 32), side)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(__import__("monai_sre").list_models()))
def test_training_step_every_model_full_width(name):
    side = 12 if name in ("r3d_18", "sre_r3d_18", "sre_r3d_18_k5", "sre_r3d_18_fullres") else 16
    _train_step(name, None, side)
