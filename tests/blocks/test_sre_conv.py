from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn as nn

from monai_sre import SREConv, SREConvTranspose, equivariance_error, export_to_conv
from monai_sre.blocks import SREEvenConv
from monai_sre.layers import band_index
from monai_sre.utils import equivariance_errors, grid_symmetries

KERNELS = [3, 5, 7, 9]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _rot90_flip_views(spatial_dims):
    """The grid symmetries built independently from torch.rot90 and torch.flip: (name, fn) pairs."""
    axes = list(range(2, 2 + spatial_dims))
    views = {}
    if spatial_dims == 1:
        return [("id", lambda t: t), ("flip", lambda t: torch.flip(t, [2]))]
    planes = list(itertools.combinations(axes, 2))
    # compose rotations about every plane (k = 0..3 each) and an optional flip: the orbit covers the group
    for ks in itertools.product(range(4), repeat=len(planes)):
        for flip in (False, True):

            def fn(t, ks=ks, flip=flip):
                for k, plane in zip(ks, planes):
                    t = torch.rot90(t, k, plane)
                return torch.flip(t, [axes[0]]) if flip else t

            probe = fn(torch.arange(4**spatial_dims).reshape(1, 1, *([4] * spatial_dims)))
            views.setdefault(tuple(probe.flatten().tolist()), (f"rot{ks}{'+flip' if flip else ''}", fn))
    return list(views.values())


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_independent_views_cover_the_group(spatial_dims):
    assert len(_rot90_flip_views(spatial_dims)) == {1: 2, 2: 8, 3: 48}[spatial_dims]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_equivariance_with_rot90_and_flip(spatial_dims, k, dtype):
    torch.manual_seed(0)
    size = 16 if spatial_dims == 2 else 11
    conv = SREConv(spatial_dims, 3, 4, k, padding="same", dtype=dtype)
    x = torch.randn(2, 3, *([size] * spatial_dims), dtype=dtype)
    with torch.no_grad():
        y = conv(x)
        for name, g in _rot90_flip_views(spatial_dims):
            err = ((conv(g(x)) - g(y)).abs().max() / y.abs().max()).item()
            assert err <= TOL[dtype], (name, err)


@pytest.mark.parametrize("spatial_dims, n", [(1, 2), (2, 8), (3, 48)])
def test_equivariance_error_helper(spatial_dims, n):
    torch.manual_seed(0)
    conv = SREConv(spatial_dims, 2, 3, 5, padding="same", dtype=torch.float64)
    x = torch.randn(1, 2, *([9] * spatial_dims), dtype=torch.float64)
    with torch.no_grad():
        errs = equivariance_errors(conv, x)
        assert len(errs) == n and max(errs) <= 1e-10
        # a plain convolution is not equivariant, and the helper says so
        plain = nn.Conv3d(2, 3, 5, padding=2).double() if spatial_dims == 3 else None
        if plain is not None:
            assert equivariance_error(plain, x) > 1e-2
        subset = grid_symmetries(spatial_dims)[:2]
        assert len(equivariance_errors(conv, x, subset)) == 2


def test_transposed_is_equivariant_with_symmetric_output_grid():
    torch.manual_seed(0)
    up = SREConvTranspose(3, 4, 2, 3, stride=2, padding=1, output_padding=1, dtype=torch.float64)
    x = torch.randn(1, 4, 6, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        y = up(x)
        assert y.shape == (1, 2, 12, 12, 12)
        # stride 2 with output_padding 1 shifts the grid by half a voxel: check the symmetries of a stride-1 layer
        up1 = SREConvTranspose(3, 4, 2, 5, padding=2, dtype=torch.float64)
        assert equivariance_error(up1, x) <= 1e-10


@pytest.mark.parametrize("groups, bias", [(1, True), (2, False), (4, True)])
@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_parameter_count(spatial_dims, groups, bias):
    conv = SREConv(spatial_dims, 8, 12, 7, groups=groups, bias=bias)
    bands = band_index(7, spatial_dims=spatial_dims).max().item() + 1
    assert conv.weight.shape == (12, 8 // groups, bands)
    assert sum(p.numel() for p in conv.parameters()) == 12 * (8 // groups) * bands + (12 if bias else 0)
    up = SREConvTranspose(spatial_dims, 8, 12, 7, groups=groups, bias=bias)
    assert up.weight.shape == (8, 12 // groups, bands)


@pytest.mark.parametrize("spatial_dims, fmt", [(2, torch.channels_last), (3, torch.channels_last_3d)])
def test_networks_of_sre_layers_convert_to_channels_last_and_cast_their_basis(spatial_dims, fmt):
    torch.manual_seed(0)
    net = nn.Sequential(SREConv(spatial_dims, 2, 4, 5, padding=2), SREEvenConv(spatial_dims, 4, 3, 4, stride=2,
                                                                                  padding=1), nn.Conv3d(3, 3, 1)
                        if spatial_dims == 3 else nn.Conv2d(3, 3, 1)).eval()
    x = torch.randn(2, 2, *([12] * spatial_dims))
    with torch.no_grad():
        y = net(x)
        net.to(memory_format=fmt)  # every 4D/5D tensor takes the format; the bases stay usable
        torch.testing.assert_close(net(x.contiguous(memory_format=fmt)), y, rtol=1e-5, atol=1e-6)
    net.double()
    assert net[0].basis.dtype == net[1].basis.dtype == torch.float64 and net[0].basis.shape == (3, *([5] * spatial_dims))


@pytest.mark.parametrize("profile", ["partial", "linear", "gaussian"])
def test_smooth_profiles_are_exact_on_the_grid_in_both_algorithms(profile):
    torch.manual_seed(0)
    dense = SREConv(3, 3, 4, 7, padding="same", profile=profile, algorithm="dense", dtype=torch.float64)
    bands = SREConv(3, 3, 4, 7, padding="same", profile=profile, algorithm="bands", dtype=torch.float64)
    bands.load_state_dict(dense.state_dict())
    assert f"profile='{profile}'" in repr(dense) and dense.num_bands == 4
    x = torch.randn(2, 3, 11, 11, 11, dtype=torch.float64)
    with torch.no_grad():
        y = dense(x)
        torch.testing.assert_close(bands(x), y, rtol=1e-10, atol=1e-10)
        for name, g in _rot90_flip_views(3):
            assert ((dense(g(x)) - g(y)).abs().max() / y.abs().max()).item() <= TOL[torch.float64], name
    with pytest.raises(ValueError, match="profile must be one of"):
        SREConv(3, 3, 4, 7, profile="soft")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 2, "padding": 1},
        {"padding": (1, 2, 3)},
        {"padding": "valid"},
        {"dilation": 2, "padding": "same"},
        {"padding": "same", "padding_mode": "reflect"},
        {"padding": 2, "padding_mode": "circular"},
        {"padding": 1, "padding_mode": "replicate", "groups": 2},
        {"padding": "same", "spacing": (1.0, 1.0, 2.5)},
        {"padding": "same", "circular": True, "num_bands": 2},
    ],
)
def test_matches_plain_conv_with_expanded_kernel(kwargs):
    torch.manual_seed(0)
    conv = SREConv(3, 4, 6, 5, algorithm="dense", **kwargs)
    x = torch.randn(2, 4, 9, 10, 11)
    plain = conv.to_plain()
    assert isinstance(plain, nn.Conv3d)
    ref = nn.functional.conv3d if conv.padding_mode == "zeros" else None
    with torch.no_grad():
        y = conv(x)
        assert torch.allclose(y, plain(x), rtol=0, atol=1e-6 * y.abs().max().item())
        if ref is not None:
            y_ref = ref(x, conv.expanded_kernel(), conv.bias, conv.stride, conv._padding, conv.dilation, conv.groups)
            assert torch.equal(y, y_ref)


def _fresh_like(conv):
    new = copy.deepcopy(conv)
    new.invalidate_cache()
    return new


def test_cache_rebuilt_after_load_state_dict_in_eval():
    torch.manual_seed(0)
    conv = SREConv(2, 4, 4, 5, padding="same", algorithm="dense").eval()
    x = torch.randn(1, 4, 12, 12)
    with torch.no_grad():
        conv(x)  # fills the cache
        other = SREConv(2, 4, 4, 5, padding="same")
        conv.load_state_dict(other.state_dict())
        assert torch.equal(conv(x), other(x))


def test_cache_rebuilt_after_optimizer_step_in_eval_mode():
    torch.manual_seed(0)
    conv = SREConv(3, 2, 2, 3, padding="same", algorithm="dense").eval()
    x = torch.randn(1, 2, 8, 8, 8)
    with torch.no_grad():
        before = conv(x)
    opt = torch.optim.SGD(conv.parameters(), lr=0.5)
    conv(x).square().mean().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0  # the eval forward still trains
    opt.step()
    with torch.no_grad():
        after = conv(x)
        assert not torch.allclose(before, after)
        assert torch.equal(after, _fresh_like(conv)(x))


def test_cache_rebuilt_after_inplace_edit_and_dtype_change():
    torch.manual_seed(0)
    conv = SREConv(2, 3, 3, 7, padding="same", algorithm="dense").eval()
    x = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        conv(x)
        conv.weight.mul_(-2.0)
        assert torch.equal(conv(x), _fresh_like(conv)(x))
        conv.double()
        xd = x.double()
        y = conv(xd)
        assert y.dtype == torch.float64
        assert torch.equal(y, _fresh_like(conv)(xd))


# writes that bypass the version counter, as weight averaging, pruning and quantisation code does
DATA_EDITS = [
    lambda w: w.data.mul_(2.0),
    lambda w: w.data.copy_(torch.randn_like(w)),
    lambda w: w.data[0, 0, 0].add_(1.0),  # one band weight of one filter
]


@pytest.mark.parametrize("edit", DATA_EDITS)
@pytest.mark.parametrize("cls,kwargs", [(SREConv, {"padding": "same", "algorithm": "dense"}),
                                        (SREConvTranspose, {"stride": 2, "padding": 1})])
def test_cache_notices_writes_through_data(cls, kwargs, edit):
    torch.manual_seed(0)
    conv = cls(3, 2, 3, 3, **kwargs).eval()
    x = torch.randn(1, 2, 6, 6, 6)
    with torch.no_grad():
        before = conv(x)  # fills the cache
    version = conv.weight._version
    edit(conv.weight)
    with torch.no_grad():
        after = conv(x)
        assert not torch.equal(after, before)
        assert torch.equal(after, _fresh_like(conv)(x))
    assert conv.weight._version == version  # no version counter told the cache


def test_cache_is_reused_and_not_in_state_dict():
    conv = SREConv(3, 2, 2, 5, padding="same", algorithm="dense")
    keys_train = list(conv.state_dict())
    conv.eval()
    x = torch.randn(1, 2, 6, 6, 6)
    with torch.no_grad():
        conv(x)
        cached = conv._kernel_cache
        assert cached is not None
        conv(x)
        assert conv._kernel_cache is cached  # nothing recomputed when nothing changed
    assert list(conv.state_dict()) == keys_train == ["weight", "bias"]


def test_deepcopy_and_ema():
    torch.manual_seed(0)
    conv = SREConv(2, 3, 3, 5, padding="same", algorithm="dense").eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        conv(x)
    ema = torch.optim.swa_utils.AveragedModel(conv, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.5))
    with torch.no_grad():
        conv.weight.add_(1.0)
    ema.update_parameters(conv)
    ema.eval()
    with torch.no_grad():
        assert torch.equal(ema(x), _fresh_like(ema.module)(x))


def test_gradients_are_exact():
    torch.manual_seed(0)
    conv = SREConv(3, 1, 2, 3, padding="same", dtype=torch.float64)
    x = torch.randn(1, 1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp, w: conv(inp), (x, conv.weight))


def test_torchscript_and_trace():
    torch.manual_seed(0)
    for cls, kwargs in ((SREConv, {"padding": "same"}), (SREConvTranspose, {"stride": 2, "padding": 1})):
        m = cls(3, 2, 3, 3, **kwargs)
        x = torch.randn(1, 2, 6, 6, 6)
        scripted = torch.jit.script(m)
        traced = torch.jit.trace(m, x)
        with torch.no_grad():
            y = m(x)
            assert torch.allclose(scripted(x), y, rtol=1e-6, atol=1e-6 * y.abs().max().item())
            assert torch.allclose(traced(x), y, rtol=1e-6, atol=1e-6 * y.abs().max().item())
        # scripted modules read the live weights, no stale snapshot
        with torch.no_grad():
            m.weight.mul_(3.0)
            assert torch.allclose(scripted(x), m(x), rtol=1e-6, atol=1e-5)


def test_export_to_conv_whole_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        SREConv(3, 1, 4, 5, padding="same"),
        nn.ReLU(),
        SREConv(3, 4, 4, 3, padding=1, groups=2),
        SREConvTranspose(3, 4, 2, 3, stride=2, padding=1, output_padding=1),
    ).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    plain = export_to_conv(model)
    assert not any(isinstance(m, (SREConv, SREConvTranspose)) for m in plain.modules())
    assert isinstance(plain[0], nn.Conv3d) and isinstance(plain[3], nn.ConvTranspose3d)
    assert isinstance(model[0], SREConv)  # the original is untouched
    scripted = torch.jit.script(plain)
    with torch.no_grad():
        y = model(x)
        scale = y.abs().max().item()
        assert (plain(x) - y).abs().max().item() <= 1e-6 * scale
        assert (scripted(x) - y).abs().max().item() <= 1e-6 * scale
    # the exported kernel has every grid symmetry of the cube
    w = plain[0].weight.detach()
    for g in grid_symmetries(3):
        assert torch.equal(g(w), w)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"spatial_dims": 4}, ValueError, "spatial_dims"),
        ({"kernel_size": 4}, ValueError, "odd"),
        ({"in_channels": 3, "groups": 2}, ValueError, "divisible by groups"),
        ({"padding": "same", "stride": 2}, ValueError, "stride 1"),
        ({"padding": "full"}, ValueError, "padding"),
        ({"padding_mode": "mirror"}, ValueError, "padding_mode"),
        ({"kernel_size": (3, 3)}, ValueError, "kernel_size"),
        ({"kernel_size": 9, "num_bands": 7}, ValueError, "empty"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"spatial_dims": 3, "in_channels": 4, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match=match):
        SREConv(**args)


def test_bad_input_shape():
    conv = SREConv(3, 4, 4, 3)
    with pytest.raises(ValueError, match="5 dims"):
        conv(torch.randn(4, 8, 8, 8))
    with pytest.raises(ValueError, match="4 input channels"):
        conv(torch.randn(1, 3, 8, 8, 8))
