from __future__ import annotations

import inspect

import pytest
import torch
from monai.networks import eval_mode

import monai_sre
from monai_sre.nets import SREResNet, get_model, list_models, register_model
from monai_sre.nets import registry

REQUIRED = ["plain_resnet18", "r3d_18", "sre_r3d_18", "sre_r3d_18_k5", "sre_resnet18"]


def test_required_names_and_top_level_exports():
    assert set(REQUIRED) <= set(list_models())
    assert list_models() == sorted(list_models())
    assert monai_sre.get_model is get_model and monai_sre.list_models is list_models
    assert monai_sre.SREResNet is SREResNet


@pytest.mark.parametrize("name", list_models())
def test_every_builder_takes_channels_classes_and_widths(name):
    params = inspect.signature(registry.get_model_builder(name)).parameters
    assert "in_channels" in params and "num_classes" in params
    net = get_model(name, in_channels=3, num_classes=7, widths=(4, 4, 8, 8))
    assert net.in_channels == 3 and net.num_classes == 7 and net.widths == (4, 4, 8, 8)
    dims = net.spatial_dims
    with eval_mode(net), torch.no_grad():
        assert net(torch.randn(1, 3, *([12] * dims))).shape == (1, 7)


@pytest.mark.parametrize(
    "name, spatial_dims, conv_type, kernels",
    [
        ("sre_resnet18", 2, "sre", (9, 9, 5, 5)),
        ("plain_resnet18", 2, "standard", (3, 3, 3, 3)),
        ("sre_r3d_18", 3, "sre", (3, 3, 3, 3)),
        ("sre_r3d_18_k5", 3, "sre", (5, 5, 5, 5)),
        ("r3d_18", 3, "standard", (3, 3, 3, 3)),
    ],
)
def test_presets(name, spatial_dims, conv_type, kernels):
    net = get_model(name, widths=(4, 4, 8, 8))
    assert (net.spatial_dims, net.conv_type, net.kernel_sizes) == (spatial_dims, conv_type, kernels)


def test_baseline_and_sre_differ_by_conv_type_only():
    sre = get_model("r3d_18", conv_type="sre", num_bands=2, widths=(4, 4, 8, 8))
    ref = get_model("sre_r3d_18", widths=(4, 4, 8, 8))
    assert [tuple(p.shape) for p in sre.parameters()] == [tuple(p.shape) for p in ref.parameters()]
    sre_2d = get_model("sre_resnet18", widths=(4, 4, 8, 8))
    assert sre_2d.stem[0].kernel_size == (5, 5) and len(sre_2d.stem) == 3  # 5x5 SRE stem, no downsampling


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*sre_resnet18"):
        get_model("resnet19")
    with pytest.raises(TypeError, match="name must be a str"):
        get_model(18)


def test_duplicate_registration_is_loud():
    with pytest.raises(ValueError, match="already registered"):

        @register_model("sre_resnet18")
        def another(in_channels=1, num_classes=2, **kwargs):
            return SREResNet(2, in_channels, num_classes, **kwargs)

    assert registry.get_model_builder("sre_resnet18").__name__ == "sre_resnet18"


def test_register_and_build_new_model(monkeypatch):
    monkeypatch.setattr(registry._MODELS, "_builders", dict(registry._MODELS._builders))

    @register_model()
    def tiny_sre(in_channels=1, num_classes=2, **kwargs):
        return SREResNet(2, in_channels, num_classes, widths=(2, 2, 2, 2), **kwargs)

    assert "tiny_sre" in list_models()
    assert get_model("tiny_sre", num_classes=5).num_classes == 5


@pytest.mark.parametrize("old, new", sorted(registry.RENAMED.items()))
def test_renamed_names_warn_and_build_the_same_network(old, new):
    from monai_sre.nets import get_segmentation_model, list_segmentation_models

    build = get_segmentation_model if new in list_segmentation_models() else get_model
    assert old not in list_models() + list_segmentation_models() and new in list_models() + list_segmentation_models()
    torch.manual_seed(0)
    fresh = build(new)
    with pytest.warns(FutureWarning, match=f"'{old}' is deprecated.*use '{new}'"):
        torch.manual_seed(0)
        aged = build(old)
    assert type(aged) is type(fresh) and aged.state_dict().keys() == fresh.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(aged.state_dict().values(), fresh.state_dict().values()))
    with pytest.warns(FutureWarning, match=f"{old}\\(\\) is deprecated"):  # the Python name of earlier versions
        getattr(monai_sre.nets, old)()


def test_no_registered_name_is_also_a_monai_component():
    from monai.bundle import ComponentLocator

    from monai_sre.nets import list_segmentation_models

    locator = ComponentLocator()
    for name in list_models() + list_segmentation_models() + sorted(registry.RENAMED):
        found = locator.get_component_module_name(name)
        found = [found] if isinstance(found, str) else list(found or [])
        assert not any(m.startswith("monai.") for m in found) or not any(m.startswith("monai_sre") for m in found), (
            name, found)
    for old in registry.RENAMED:  # the old names are MONAI's alone again
        found = locator.get_component_module_name(old)
        assert not any(m.startswith("monai_sre") for m in ([found] if isinstance(found, str) else found or []))


def test_records_of_renamed_networks_read_as_the_new_names():
    from monai_sre.checkpoint import RENAMED_VALUES, flat_record

    assert RENAMED_VALUES["network_name"] == registry.RENAMED  # the checkpoint package keeps its own copy
    old = {"network": {"network_name": "resnet18", "widths": [4, 4, 4, 4]}, "training": {"seed": 0}}
    new = {"network": {"network_name": "plain_resnet18", "widths": [4, 4, 4, 4]}, "training": {"seed": 0}}
    assert flat_record(old) == flat_record(new) == {"network_name": "plain_resnet18", "widths": [4, 4, 4, 4], "seed": 0}
    assert flat_record({"network_name": "unet"}) == {"network_name": "plain_unet"}  # a legacy flat record too
