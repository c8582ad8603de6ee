from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from monai_sre.blocks.sre_pool import SREAvgPool
from monai_sre.blocks.sre_resample import SREPool, symmetric_windows
from monai_sre.utils import equivariance_error

# (size, kernel, stride, padding per side, ceil_mode): PyTorch accepts all of them
GEOMETRIES = [
    (n, k, s, p, c)
    for n, k, s, p, c in itertools.product((3, 4, 5, 8, 9, 16, 17), (1, 2, 3), (1, 2, 3), (0, 1), (False, True))
    if 2 * p <= k and n + 2 * p >= k
]
# (spatial_dims, kernel_size, stride, padding, mode, ceil_mode, side)
EQUIVARIANCE_CASES = [
    (2, 3, 2, 1, "max", False, 16),
    (2, 2, 2, 0, "max", False, 15),
    (2, 2, 2, 0, "avg", True, 9),
    (2, 1, 2, 0, "avg", False, 10),
    (3, 3, 2, 1, "max", False, 8),
    (3, 2, 2, 0, "avg", False, 7),
    (3, 1, 3, 0, "avg", False, 11),
]


@pytest.mark.parametrize("size, kernel, stride, padding, ceil_mode", GEOMETRIES)
def test_output_size_follows_pytorch(size, kernel, stride, padding, ceil_mode):
    expected = F.max_pool1d(torch.zeros(1, 1, size), kernel, stride, padding, ceil_mode=ceil_mode).shape[-1]
    m, window, start = symmetric_windows(size, kernel, stride, 2 * padding, ceil_mode)
    assert m == expected
    assert window in (kernel, kernel + 1)
    # first window starts at `start`, last one ends at size - 1 - start: mirror images
    assert start + (m - 1) * stride + window - 1 == size - 1 - start


@pytest.mark.parametrize("spatial_dims, kernel_size, stride, padding, mode, ceil_mode, side", EQUIVARIANCE_CASES)
def test_exact_equivariance_where_pytorch_breaks(spatial_dims, kernel_size, stride, padding, mode, ceil_mode, side):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *([side] * spatial_dims), dtype=torch.float64)
    pool = SREPool(spatial_dims, kernel_size, stride, padding, mode=mode, ceil_mode=ceil_mode)
    fn = {("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}
    plain = lambda t: fn[mode, spatial_dims](t, kernel_size, stride, padding, ceil_mode=ceil_mode)  # noqa: E731
    assert pool(x).shape == plain(x).shape
    assert equivariance_error(pool, x) < 1e-12
    assert equivariance_error(plain, x) > 1e-3


def test_equals_pytorch_when_its_layout_is_symmetric():
    x = torch.randn(1, 2, 9, 9)  # span 9 - 3 + 2 = 8 is a multiple of the stride: PyTorch is centred
    assert torch.equal(SREPool(2, 3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1))
    # stride-2 subsampling of an odd size picks the same samples as a strided convolution
    assert torch.equal(SREPool(2, 1, 2, mode="avg")(x), x[:, :, ::2, ::2])


def test_matches_sre_avg_pool_and_excludes_padding():
    x = torch.randn(1, 2, 7, 10, 5, dtype=torch.float64)
    assert torch.allclose(SREPool(3, 2, 2, mode="avg", ceil_mode=True)(x), SREAvgPool(3, 2)(x))
    ones = torch.ones(1, 1, 6, 6)
    assert torch.equal(SREPool(2, 3, 2, 1, mode="avg")(ones), torch.ones(1, 1, 3, 3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        SREPool(2, 2, mode="median")
    with pytest.raises(ValueError, match="spatial_dims"):
        SREPool(4, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        SREPool(2, 0)
    with pytest.raises(ValueError, match="stride"):
        SREPool(2, 2, stride=(2, 2, 2))
    with pytest.raises(ValueError, match="too small"):
        SREPool(2, 5)(torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="expects input"):
        SREPool(3, 2)(torch.zeros(1, 4, 4))


def test_trace_warns_once_that_it_holds_for_its_input_size(monkeypatch):
    """Pooling windows placed from the input size become constants in a trace: one warning says so and what to
    use instead, and that advice (scripting, directly or after export) holds at every size."""
    import warnings

    import torch.nn as nn

    from monai_sre.blocks import SREConv, sre_resample
    from monai_sre.utils import export_to_conv

    monkeypatch.setattr(sre_resample, "_trace_warned", False, raising=False)
    torch.manual_seed(0)
    net = nn.Sequential(SREConv(2, 1, 4, 3, padding="same"), SREAvgPool(2, 2), SREConv(2, 4, 4, 3, padding="same"),
                        SREPool(2, 3, stride=2, padding=1), SREPool(2, 2, mode="avg")).eval()
    x = torch.randn(1, 1, 16, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(net, x)
    tracer = [str(w.message) for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    assert len(tracer) == 1, tracer
    assert "valid for inputs of the traced spatial size only" in tracer[0]
    assert "torch.jit.script(model)" in tracer[0] and "export_to_conv" in tracer[0]
    with torch.no_grad():
        assert torch.allclose(traced(x), net(x), atol=1e-6)  # right at the traced size
        scripted, exported = torch.jit.script(net), torch.jit.script(export_to_conv(net))
        for size in [(16, 16), (17, 20), (23, 9)]:
            y = torch.randn(1, 1, *size)
            assert torch.allclose(scripted(y), net(y), atol=1e-6) and torch.allclose(exported(y), net(y), atol=1e-6)


def test_trace_through_convolutions_alone_holds_at_every_size():
    from monai_sre.blocks import SREConv, SREConvTranspose

    torch.manual_seed(0)
    net = torch.nn.Sequential(SREConv(3, 1, 2, 3, padding="same"), SREConvTranspose(3, 2, 1, 3, stride=2, padding=1,
                                                                                     output_padding=1)).eval()
    traced = torch.jit.trace(net, torch.randn(1, 1, 6, 6, 6))
    with torch.no_grad():
        for size in [(6, 6, 6), (5, 8, 7)]:
            y = torch.randn(1, 1, *size)
            assert torch.allclose(traced(y), net(y), atol=1e-6)
