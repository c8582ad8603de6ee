"""Dense vs band paths of SREConv: equal outputs and gradients, auto selection, caching, TorchScript."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_sre.blocks import sre_conv as sre_conv_module
from monai_sre.blocks.sre_conv import SREConv, clear_auto_cache, set_auto_policy
from monai_sre.layers import band_basis, band_conv, band_conv_costs, expand_kernel

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# (spatial_dims, kwargs, spatial size)
CASES = [
    (1, {"kernel_size": 9, "padding": 4}, 21),
    (1, {"kernel_size": 7, "stride": 3, "dilation": 2, "padding": 1}, 23),
    (2, {"kernel_size": 3, "padding": 1}, 12),
    (2, {"kernel_size": 5, "padding": "same", "groups": 2}, 12),
    (2, {"kernel_size": 7, "stride": 2, "padding": 3, "padding_mode": "reflect"}, 13),
    (2, {"kernel_size": 9, "dilation": 2, "padding": 2, "padding_mode": "circular", "circular": True}, 19),
    (2, {"kernel_size": (3, 5), "stride": (1, 2), "padding": (0, 2), "bias": False}, 11),
    (3, {"kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}, 9),
    (3, {"kernel_size": 5, "padding": 2, "padding_mode": "replicate", "spacing": (1.0, 1.0, 2.0)}, 8),
    (3, {"kernel_size": 7, "padding": 3, "dilation": 1}, 8),
    (3, {"kernel_size": 9, "padding": 1, "stride": 3, "num_bands": 3}, 11),
]


def _reference(conv: SREConv, x: torch.Tensor) -> torch.Tensor:
    """Dense convolution written out here, independent of SREConv.forward."""
    pad = 0
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._pad_pairs, mode=conv.padding_mode)
    else:
        pad = conv._padding
    return _CONV[conv.spatial_dims](x, conv.expanded_kernel(), conv.bias, conv.stride, pad, conv.dilation, conv.groups)


def _pair(spatial_dims, kwargs, dtype=torch.float64):
    torch.manual_seed(0)
    conv = SREConv(spatial_dims, 4, 6, algorithm="dense", dtype=dtype, **kwargs)
    return conv


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("spatial_dims,kwargs,size", CASES)
def test_band_path_matches_dense_float64(spatial_dims, kwargs, size, order):
    conv = _pair(spatial_dims, kwargs)
    x = torch.randn(2, 4, *([size] * spatial_dims), dtype=torch.float64, requires_grad=True)
    ref = _reference(conv, x)
    y = conv._forward_path(F.pad(x, conv._pad_pairs, mode=conv.padding_mode) if conv.padding_mode != "zeros" else x, order)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    grad = torch.randn_like(ref)
    params = [x, conv.weight] + ([conv.bias] if conv.bias is not None else [])
    g_ref = torch.autograd.grad(ref, params, grad)
    g_band = torch.autograd.grad(y, params, grad)
    for a, b in zip(g_band, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("spatial_dims,kwargs,size", CASES[::2])
def test_algorithms_agree_float32(spatial_dims, kwargs, size):
    torch.manual_seed(1)
    x = torch.randn(2, 4, *([size] * spatial_dims))
    outs = {}
    for algorithm in ("dense", "bands", "auto"):
        torch.manual_seed(0)
        conv = SREConv(spatial_dims, 4, 6, algorithm=algorithm, **kwargs)
        outs[algorithm] = conv(x)
    scale = outs["dense"].abs().max()
    for algorithm in ("bands", "auto"):
        assert (outs[algorithm] - outs["dense"]).abs().max() <= 1e-5 * scale


def test_band_conv_function_orders_and_costs():
    basis = band_basis(5, spatial_dims=3, dtype=torch.float64)
    w = torch.randn(8, 4, basis.shape[0], dtype=torch.float64)
    x = torch.randn(1, 4, 7, 7, 7, dtype=torch.float64)
    ref = F.conv3d(x, expand_kernel(w, basis), padding=2)
    for order in ("filter_mix", "mix_filter"):
        torch.testing.assert_close(band_conv(x, w, basis, padding=2, order=order), ref)
    with pytest.raises(ValueError, match="order"):
        band_conv(x, w, basis, order="sideways")
    costs = band_conv_costs(64, 64, (7, 7, 7), 4)
    assert costs["dense"] == 64 * 64 * 343
    assert costs["filter_mix"] < costs["dense"] / 10
    # striding makes mix-then-filter pay its 1x1 mix at the input resolution
    strided = band_conv_costs(64, 64, (3, 3, 3), 2, stride=2)
    assert strided["mix_filter"] > band_conv_costs(64, 64, (3, 3, 3), 2)["mix_filter"]


def test_bad_algorithm():
    with pytest.raises(ValueError, match="algorithm"):
        SREConv(2, 2, 2, 3, algorithm="fast")


@pytest.fixture(autouse=True)
def policy_restored():
    """Every test leaves the auto policy as it found it (``MONAI_SRE_AUTO_POLICY`` may have set it at import)."""
    before = sre_conv_module._AUTO_POLICY["policy"]
    yield before
    after = sre_conv_module._AUTO_POLICY["policy"]
    sre_conv_module._AUTO_POLICY["policy"] = before
    assert after == before, f"the test changed the auto policy from {before!r} to {after!r}"


@pytest.mark.parametrize("policy", ["measure", "model"])
def test_auto_picks_a_valid_path_and_caches_it(policy, policy_restored):
    set_auto_policy(policy)
    clear_auto_cache()
    try:
        torch.manual_seed(0)
        conv = SREConv(3, 16, 16, 5, padding=2)
        assert conv.algorithm == "auto"
        x = torch.randn(1, 16, 12, 12, 12)
        y = conv(x)
        assert conv.last_path in ("dense", "filter_mix", "mix_filter")
        assert len(sre_conv_module._AUTO_CACHE) == 1
        choice = next(iter(sre_conv_module._AUTO_CACHE.values()))
        assert choice == conv.last_path
        with torch.no_grad():  # a different grad mode is a different key
            y_inf = conv(x)
        assert len(sre_conv_module._AUTO_CACHE) == 2
        torch.testing.assert_close(y_inf, y.detach(), rtol=1e-5, atol=1e-5)
        conv(x)
        assert len(sre_conv_module._AUTO_CACHE) == 2  # cached, no new decision
        # measuring must not touch the global RNG or the parameters' gradients
        assert conv.weight.grad is None
    finally:
        set_auto_policy(policy_restored)
        clear_auto_cache()
    with pytest.raises(ValueError, match="policy"):
        set_auto_policy("guess")


def test_auto_keeps_dense_for_tiny_layers():
    clear_auto_cache()
    conv = SREConv(2, 2, 2, 3, padding=1)
    conv(torch.randn(1, 2, 8, 8))
    assert conv.last_path == "dense"


def test_auto_does_not_consume_rng(policy_restored, monkeypatch):
    timed = []

    def spy(fn, device, reps=3):
        timed.append(device)
        return real_timed(fn, device, reps)

    real_timed = sre_conv_module._timed
    monkeypatch.setattr(sre_conv_module, "_timed", spy)
    set_auto_policy("measure")
    clear_auto_cache()
    try:
        conv = SREConv(2, 16, 16, 5, padding=2)
        x = torch.randn(2, 16, 64, 64)  # above the size below which "auto" keeps the dense path untimed
        torch.manual_seed(3)
        conv(x)
        after = torch.rand(1)
    finally:
        set_auto_policy(policy_restored)
        clear_auto_cache()
    assert len(timed) >= 2  # the paths were really timed
    torch.manual_seed(3)
    expected = torch.rand(1)
    assert torch.equal(after, expected)


@pytest.mark.parametrize("algorithm", ["dense", "bands"])
def test_inference_cache_follows_weight_updates(algorithm):
    torch.manual_seed(0)
    conv = SREConv(3, 4, 4, 3, padding=1, algorithm=algorithm)
    x = torch.randn(1, 4, 6, 6, 6)
    with torch.no_grad():
        before = conv(x)
        conv.weight.add_(1.0)
        after = conv(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, _reference(conv, x).detach(), rtol=1e-5, atol=1e-5)


def test_training_step_same_for_both_algorithms():
    torch.manual_seed(0)
    dense = SREConv(3, 4, 6, 5, padding=2, algorithm="dense")
    bands = SREConv(3, 4, 6, 5, padding=2, algorithm="bands")
    bands.load_state_dict(dense.state_dict())
    x = torch.randn(2, 4, 7, 7, 7)
    for conv in (dense, bands):
        opt = torch.optim.SGD(conv.parameters(), lr=0.1)
        conv(x).square().mean().backward()
        opt.step()
    torch.testing.assert_close(bands.weight, dense.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bands.bias, dense.bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["auto", "dense", "bands"])
def test_torchscript_every_algorithm(algorithm):
    torch.manual_seed(0)
    conv = SREConv(2, 4, 6, 5, padding=2, padding_mode="reflect", algorithm=algorithm)
    scripted = torch.jit.script(conv)
    x = torch.randn(1, 4, 10, 10)
    torch.testing.assert_close(scripted(x), _reference(conv, x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.to_plain()(x), _reference(conv, x), rtol=1e-5, atol=1e-5)


def test_double_backward_through_band_path():
    torch.manual_seed(0)
    conv = SREConv(2, 2, 3, 3, padding=1, algorithm="bands", dtype=torch.float64)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: conv(t), (x,))
    assert torch.autograd.gradgradcheck(lambda t: conv(t), (x,))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("spatial_dims,kwargs,size", CASES[2::3])
def test_band_path_on_cuda(spatial_dims, kwargs, size):
    torch.manual_seed(0)
    conv = SREConv(spatial_dims, 4, 6, algorithm="dense", device="cuda", **kwargs)
    x = torch.randn(2, 4, *([size] * spatial_dims), device="cuda", requires_grad=True)
    ref = _reference(conv, x)
    scale = ref.abs().max()
    for order in (1, 2):
        xp = F.pad(x, conv._pad_pairs, mode=conv.padding_mode) if conv.padding_mode != "zeros" else x
        y = conv._forward_path(xp, order)
        assert (y - ref).abs().max() <= 1e-4 * scale
        g = torch.autograd.grad(y.sum(), [x, conv.weight])
        g_ref = torch.autograd.grad(ref.sum(), [x, conv.weight])
        for a, b in zip(g, g_ref):
            assert (a - b).abs().max() <= 1e-4 * b.abs().max()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_on_cuda():
    clear_auto_cache()
    conv = SREConv(3, 16, 16, 7, padding=3, device="cuda")
    x = torch.randn(2, 16, 16, 16, 16, device="cuda")
    y = conv(x)
    assert conv.last_path in ("dense", "filter_mix", "mix_filter")
    torch.testing.assert_close(y, _reference(conv, x), rtol=1e-4, atol=1e-4)
