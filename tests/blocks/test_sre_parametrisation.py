"""``basis_norm``: same kernels, band-size-independent SGD steps, standard-conv init scale, old checkpoints load."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn as nn

from monai_sre import SREConv, SREConvTranspose
from monai_sre.layers import band_basis, band_sizes

NORMS = ("mean", "orthonormal", "none")


@pytest.mark.parametrize("norm", NORMS)
def test_bases_span_the_same_kernels(norm):
    ref = band_basis(7, spatial_dims=3)
    basis = band_basis(7, spatial_dims=3, norm=norm)
    sizes = band_sizes(basis)
    assert torch.equal(sizes, ref.flatten(1).sum(1).long())
    scale = {"mean": sizes.double(), "orthonormal": sizes.double().sqrt(), "none": torch.ones(len(sizes), dtype=torch.float64)}[norm]
    torch.testing.assert_close(basis.double() * scale.view(-1, 1, 1, 1), ref.double())
    if norm == "orthonormal":
        gram = basis.flatten(1) @ basis.flatten(1).T
        torch.testing.assert_close(gram, torch.eye(len(sizes)))


def test_band_basis_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm must be one of"):
        band_basis(3, spatial_dims=2, norm="unit")
    with pytest.raises(ValueError, match="basis_norm must be one of"):
        SREConv(2, 1, 1, 3, basis_norm="sum")


def test_sgd_step_does_not_depend_on_band_size():
    """With the default basis a constant gradient field moves every band weight by the same amount; with the
    original indicator basis band b moves n_b times as far (the outer shell of a 7^3 kernel: ~100x the centre)."""
    x = torch.ones(1, 1, 7, 7, 7)
    steps = {}
    for norm in ("mean", "none"):
        conv = SREConv(3, 1, 1, 7, bias=False, basis_norm=norm)
        conv(x).sum().backward()  # d out / d K_t = 1 for every tap t
        steps[norm] = conv.weight.grad.flatten()
    sizes = band_sizes(conv.basis).double()
    torch.testing.assert_close(steps["mean"].double(), torch.ones_like(sizes), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(steps["none"].double(), sizes, rtol=1e-5, atol=1e-5)
    assert sizes.max() / sizes.min() > 50


@pytest.mark.parametrize("spatial_dims, k", [(2, 9), (3, 3), (3, 7)])
def test_initial_output_scale_matches_a_standard_convolution(spatial_dims, k):
    """On a smooth input (the regime of images and feature maps) the default init gives the output scale of a
    PyTorch ``ConvNd``; the original parametrisation amplifies it by a factor that grows with the band sizes."""
    torch.manual_seed(0)
    c = 32
    x = torch.ones(4, c, *([k] * spatial_dims)) + 0.01 * torch.randn(4, c, *([k] * spatial_dims))
    conv_cls = {2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
    ratios = {}
    for norm in ("mean", "none"):
        std_sre, std_ref = [], []
        for _ in range(8):
            sre = SREConv(spatial_dims, c, c, k, bias=False, basis_norm=norm)
            ref = conv_cls(c, c, k, bias=False)
            with torch.no_grad():
                std_sre.append(sre(x).std())
                std_ref.append(ref(x).std())
        ratios[norm] = (torch.stack(std_sre).mean() / torch.stack(std_ref).mean()).item()
    assert 0.5 < ratios["mean"] < 2.0, ratios
    assert ratios["none"] > 2.5 * ratios["mean"], ratios


def _roundtrip(state_dict):
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("cls", [SREConv, SREConvTranspose])
@pytest.mark.parametrize("src, dst", [("none", "mean"), ("mean", "none"), ("orthonormal", "mean")])
@pytest.mark.parametrize("profile", ["hard", "gaussian"])
def test_checkpoint_from_another_basis_loads_to_the_same_function(cls, src, dst, profile):
    torch.manual_seed(0)
    a = cls(3, 3, 4, 5, padding=2, basis_norm=src, profile=profile)
    b = cls(3, 3, 4, 5, padding=2, basis_norm=dst, profile=profile)
    x = torch.randn(2, 3, 8, 8, 8)
    b.load_state_dict(_roundtrip(a.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


def test_version_1_checkpoint_is_rescaled_in_a_network():
    """A state dict written before ``basis_norm`` existed (module version 1, indicator masks) gives the same outputs."""
    torch.manual_seed(0)
    old = nn.Sequential(SREConv(2, 1, 4, 5, padding=2, basis_norm="none"), nn.ReLU(), SREConv(2, 4, 2, 3, padding=1, basis_norm="none"))
    state = old.state_dict()
    for key in state._metadata:  # as torch saved it then: version 1, no basis_norm entry
        state._metadata[key] = {"version": 1}
    new = nn.Sequential(SREConv(2, 1, 4, 5, padding=2), nn.ReLU(), SREConv(2, 4, 2, 3, padding=1))
    new.load_state_dict(_roundtrip(state))
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x), rtol=1e-5, atol=1e-6)
        assert not torch.equal(new[0].weight, old[0].weight)


def test_unknown_basis_in_checkpoint_is_a_clear_error():
    conv = SREConv(2, 1, 2, 3)
    state = conv.state_dict()
    state._metadata[""]["basis_norm"] = "bogus"
    with pytest.raises(RuntimeError, match="unknown basis_norm 'bogus'"):
        conv.load_state_dict(state)


def test_cache_is_rebuilt_after_loading_another_basis():
    torch.manual_seed(0)
    src, conv = SREConv(2, 2, 2, 5, padding=2, basis_norm="none"), SREConv(2, 2, 2, 5, padding=2).eval()
    x = torch.randn(1, 2, 9, 9)
    with torch.no_grad():
        conv(x)  # fills the cache
        conv.load_state_dict(src.state_dict())
        torch.testing.assert_close(conv(x), src(x))
