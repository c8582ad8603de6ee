from __future__ import annotations

import pytest
import torch

from monai_sre.experiments.layer_invariance import VARIANTS, layer_invariance, smooth_fields


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_grid_turns_are_exact_for_every_band_profile_and_not_for_a_plain_kernel(spatial_dims):
    x = smooth_fields(spatial_dims, 2, 16)
    rows = {r["variant"]: r for r in layer_invariance(x, angles=(90.0,), kernel_size=5, channels=2, draws=1)}
    assert rows["input (round trip)"]["err_90"] == 0.0
    assert rows["plain"]["err_90"] > 0.1
    for name in VARIANTS:
        if name != "plain":
            assert rows[name]["err_90"] < 1e-6, name


def test_off_grid_the_box_corners_cost_the_hard_kernel_and_smooth_circular_profiles_reach_the_floor():
    rows = {r["variant"]: r for r in layer_invariance(smooth_fields(2, 8, 40), angles=(30.0,), kernel_size=7)}
    excess = {name: r["excess_30"] for name, r in rows.items()}
    assert excess["plain"] > 10 * excess["hard"] > 0
    assert excess["hard, circular"] < excess["hard"]
    assert abs(excess["partial, circular"]) < 0.25 * excess["hard"]
    assert all(r["floor_30"] > 0 for r in rows.values())  # interpolation alone: both paths resample


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="x must be"):
        layer_invariance(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="kernel_size"):
        layer_invariance(torch.zeros(1, 1, 8, 8), kernel_size=4)


def test_network_invariance_is_zero_at_grid_turns_for_an_sre_network_only():
    from monai_sre.experiments.layer_invariance import network_invariance
    from monai_sre.nets import get_model

    torch.manual_seed(0)
    x = smooth_fields(2, 4, 24)
    kwargs = {"in_channels": 1, "num_classes": 3, "widths": [4, 4, 4, 4]}
    sre = network_invariance(get_model("sre_resnet18", **kwargs), x, angles=(90.0, 30.0))
    plain = network_invariance(get_model("plain_resnet18", **kwargs), x, angles=(90.0,))
    assert sre["err_90"] < 1e-5 and sre["floor_90"] < 1e-5 and plain["err_90"] > 1e-3
    assert sre["err_30"] > 0 and sre["floor_30"] > 0
