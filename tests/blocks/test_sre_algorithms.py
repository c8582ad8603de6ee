"""Dense vs band paths of SREConv: equal outputs and gradients, deterministic and benchmarked selection, TorchScript."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from monai_sre.blocks import sre_conv as sre_conv_module
from monai_sre.blocks.sre_conv import SREConv, set_algorithm
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


def _refuse_timing(fn, device, reps=3):
    raise AssertionError("algorithm='auto' must not time anything")


def test_auto_follows_the_cost_model_without_timing(monkeypatch):
    monkeypatch.setattr(sre_conv_module, "_timed", _refuse_timing)
    torch.manual_seed(0)
    wide = SREConv(3, 32, 32, 7, padding=3)  # bands far cheaper by the model
    assert wide.algorithm == "auto"
    x = torch.randn(1, 32, 10, 10, 10, requires_grad=True)
    costs = band_conv_costs(32, 32, (7, 7, 7), wide.num_bands)
    assert wide.path_for(x) == min(("filter_mix", "mix_filter"), key=costs.get)
    y = wide(x)
    y.sum().backward()
    with torch.no_grad():
        assert wide.path_for(x) == wide.path_for(x.detach())
        torch.testing.assert_close(wide(x), y.detach(), rtol=1e-5, atol=1e-5)
    assert wide._benchmarked == {}
    tiny = SREConv(2, 2, 2, 3, padding=1)  # below the size where a band path could pay off
    assert tiny.path_for(torch.randn(1, 2, 8, 8)) == "dense"


def test_auto_runs_dense_once_the_band_intermediate_outgrows_the_caches(monkeypatch):
    monkeypatch.setattr(sre_conv_module, "_timed", _refuse_timing)
    conv = SREConv(3, 16, 16, 3, padding=1)  # 2 bands: 4x fewer multiply-adds on a band path
    small, large = torch.randn(1, 16, 16, 16, 16), torch.empty(1, 16, 64, 64, 64)
    intermediate = lambda x: x.numel() * conv.num_bands * x.element_size()  # noqa: E731 (bytes, filter-then-mix)
    assert intermediate(small) <= sre_conv_module._SPILL_BYTES < intermediate(large)
    assert conv.path_for(small) != "dense"
    assert conv.path_for(large) == "dense"


_TWO_PROCESSES = """
import hashlib, json, torch
from monai_sre.blocks import SREConv
torch.manual_seed(0)
model = torch.nn.Sequential(SREConv(3, 1, 24, 3, padding=1), SREConv(3, 24, 24, 7, padding=3), SREConv(3, 24, 2, 5))
x = torch.randn(2, 1, 10, 10, 10)
paths, h = [], x
for layer in model:
    paths.append(layer.path_for(h))
    h = layer(h)
y = model(x)
y.square().sum().backward()
digest = lambda t: hashlib.sha256(t.detach().numpy().tobytes()).hexdigest()
print(json.dumps({"paths": paths, "out": digest(y), "grad": digest(model[1].weight.grad)}))
"""


@pytest.mark.slow
def test_two_fresh_processes_choose_the_same_paths_and_agree_bitwise():
    env = {k: v for k, v in os.environ.items() if k != "MONAI_SRE_AUTO_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen([sys.executable, "-c", _TWO_PROCESSES], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    runs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        runs.append(json.loads(out.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert "dense" in runs[0]["paths"] and set(runs[0]["paths"]) - {"dense"}  # both kinds of path are exercised


def test_benchmark_times_once_per_signature_and_leaves_rng_alone(monkeypatch):
    timed = []

    def spy(fn, device, reps=3):
        timed.append(device)
        return real_timed(fn, device, reps)

    real_timed = sre_conv_module._timed
    monkeypatch.setattr(sre_conv_module, "_timed", spy)
    torch.manual_seed(0)
    conv = SREConv(2, 16, 16, 5, padding=2, algorithm="benchmark")
    x = torch.randn(2, 16, 64, 64)  # above the size below which the dense path is kept untimed
    torch.manual_seed(3)
    y = conv(x)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(1))  # timing must not touch the global RNG
    assert len(timed) >= 2 and conv.weight.grad is None
    n = len(timed)
    conv(x)
    assert len(timed) == n  # cached for this layer and input signature
    with torch.no_grad():  # another grad mode is another signature
        y_inf = conv(x)
    assert len(timed) > n
    torch.testing.assert_close(y_inf, _reference(conv, x).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, y_inf, rtol=1e-5, atol=1e-5)
    assert set_algorithm(torch.nn.Sequential(conv, torch.nn.ReLU()), "auto") == 1 and conv._benchmarked == {}


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


@pytest.mark.parametrize("algorithm", ["auto", "dense", "bands", "benchmark"])
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
def test_benchmark_on_cuda():
    conv = SREConv(3, 16, 16, 7, padding=3, device="cuda", algorithm="benchmark")
    x = torch.randn(2, 16, 16, 16, 16, device="cuda")
    y = conv(x)
    assert conv.path_for(x) in ("dense", "filter_mix", "mix_filter")
    torch.testing.assert_close(y, _reference(conv, x), rtol=1e-4, atol=1e-4)
