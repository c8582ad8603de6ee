from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
import torch.nn as nn
from monai.networks.nets import BasicUNet, UNet

from monai_sre import SREConv, convert_to_sre, export_to_conv
from monai_sre.blocks import GaussianSmoothing, SREAvgPool, SREConvTranspose, SREEvenConv, SREPool
from monai_sre.utils import SREExportError

# (layer builder, input sides): every SRE layer that export_to_conv replaces, at even and odd sides
LAYER_CASES = [
    (lambda: SREConv(3, 2, 3, 3, padding=1), (6, 7)),
    (lambda: SREConvTranspose(2, 2, 3, 3, stride=2, padding=1, output_padding=1), (6, 7)),
    (lambda: SREEvenConv(3, 2, 3, 2, stride=2, transposed=True), (5, 6)),
    (lambda: SREEvenConv(2, 2, 3, 4, padding=1), (8, 9)),
    (lambda: SREPool(3, 2, 2, mode="avg", ceil_mode=True), (1, 2, 7, 8)),
    (lambda: SREPool(2, 3, 2, 1, mode="max"), (5, 6, 9)),
    (lambda: SREPool(2, 1, 2, mode="avg", extra_padding=-1), (8, 9, 12)),
    (lambda: SREPool(1, 2, 3, mode="max", ceil_mode=True, extra_padding=1), (4, 5, 6, 7)),
    (lambda: SREAvgPool(3, 2), (1, 2, 5, 6)),
    (lambda: SREAvgPool(2, 3), (2, 3, 7, 8)),
    (lambda: GaussianSmoothing(2, 0.7), (6, 7)),
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def _sre_classes(model: nn.Module) -> set[str]:
    return {type(m).__name__ for m in model.modules() if type(m).__module__.startswith("monai_sre")}


def _readme_unet() -> nn.Module:
    torch.manual_seed(0)
    return convert_to_sre(UNet(3, 1, 2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)).eval()


@pytest.mark.parametrize("builder, sides", LAYER_CASES)
def test_every_sre_layer_exports_to_plain_torch_with_the_same_outputs(builder, sides):
    torch.manual_seed(0)
    layer = builder().eval()
    plain = export_to_conv(layer)
    assert not _sre_classes(plain), _sre_classes(plain)
    scripted = torch.jit.script(plain)
    restored = copy.deepcopy(plain)
    for side in sides:
        x = torch.randn(2, 2, *([side] * layer.spatial_dims))
        with torch.no_grad():
            ref = layer(x)
            for module in (plain, scripted, restored):
                out = module(x)
                assert out.shape == ref.shape and _rel(out, ref) <= 1e-6, (type(module).__name__, side)


def test_readme_unet_holds_only_torch_and_monai_and_keeps_its_outputs():
    seg = _readme_unet()
    plain = export_to_conv(seg).eval()
    assert {type(m).__module__.split(".")[0] for m in plain.modules()} == {"torch", "monai"}
    assert _sre_classes(seg)  # the original is untouched
    scripted = torch.jit.script(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer warns about the sizes it records as constants
        traced = torch.jit.trace(plain, torch.randn(1, 1, 16, 16, 16))
    with torch.no_grad():
        for shape in ((2, 1, 16, 16, 16), (1, 1, 15, 15, 15), (1, 1, 12, 15, 20)):
            x = torch.randn(shape)
            ref = seg(x)
            assert _rel(plain(x), ref) <= 1e-6 and _rel(scripted(x), ref) <= 1e-6, shape
        for batch in (1, 3):
            x = torch.randn(batch, 1, 16, 16, 16)
            assert _rel(traced(x), seg(x)) <= 1e-6, batch


def test_converted_basic_unet_exports_its_symmetric_upcat():
    torch.manual_seed(0)
    net = convert_to_sre(BasicUNet(2, 1, 2, features=(4, 4, 4, 8, 8, 4))).eval()
    plain = export_to_conv(net).eval()
    assert not _sre_classes(plain)
    assert type(plain.upcat_1).__name__ == "SymmetricUpCat"
    scripted = torch.jit.script(plain)
    with torch.no_grad():
        for side in (32, 33):
            x = torch.randn(1, 1, side, side)
            assert _rel(plain(x), net(x)) <= 1e-6 and _rel(scripted(x), net(x)) <= 1e-6, side


def _onnx_batches(path_or_bytes, seg: nn.Module) -> None:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(path_or_bytes)
    for batch in (1, 3):
        x = torch.randn(batch, 1, 16, 16, 16)
        out = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
        with torch.no_grad():
            ref = seg(x)
        assert out.shape == ref.shape and _rel(out, ref) <= 1e-5, batch


def test_onnx_dynamic_batch_torchscript_exporter():
    pytest.importorskip("onnx")
    seg = _readme_unet()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(export_to_conv(seg), (torch.randn(1, 1, 16, 16, 16),), buffer, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    _onnx_batches(buffer.getvalue(), seg)


@pytest.mark.slow
def test_onnx_dynamic_batch_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    seg = _readme_unet()
    path = str(tmp_path / "unet.onnx")
    torch.onnx.export(export_to_conv(seg), (torch.randn(1, 1, 16, 16, 16),), path, input_names=["x"],
                      output_names=["y"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True,
                      verbose=False)
    _onnx_batches(path, seg)


class _Unexportable(nn.Module):
    """A layer that claims to be part of monai_sre and holds a weight export_to_conv knows nothing about."""

    __module__ = "monai_sre.blocks.unexportable"

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


def test_a_layer_with_no_plain_equivalent_is_named():
    model = nn.Sequential(SREConv(2, 1, 2, 3, padding=1), nn.Sequential(nn.ReLU(), _Unexportable()))
    with pytest.raises(SREExportError, match=r"1\.1: _Unexportable") as info:
        export_to_conv(model)
    assert info.value.names == ["1.1"]
