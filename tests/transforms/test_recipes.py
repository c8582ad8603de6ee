"""The paper's preprocessing recipe: resize, intensity map, augmentation (switchable), and rotated-view background."""

from __future__ import annotations

import pytest
import torch

from monai_sre.handlers.rotation_sweep import apply_view
from monai_sre.transforms import classification_transforms


def _item(spatial_dims, size=28):
    torch.manual_seed(0)
    image = torch.zeros(1, *([size] * spatial_dims))
    centre = tuple(slice(size // 4, 3 * size // 4) for _ in range(spatial_dims))
    image[(slice(None),) + centre] = torch.rand(*([size // 2] * spatial_dims))
    return {"image": image, "label": 1}


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_eval_recipe_resizes_and_maps_intensities(spatial_dims):
    item = _item(spatial_dims)
    out = classification_transforms(spatial_dims, input_size=32, intensity_range=(-1.0, 1.0))(item)
    image = torch.as_tensor(out["image"])
    assert image.shape == (1,) + (32,) * spatial_dims and out["label"] == 1
    assert image[(0,) + (0,) * spatial_dims].item() == pytest.approx(-1.0)  # background 0 -> -1
    assert image.max() <= 1.0 + 1e-5 and image.max() > 0.0
    identity = classification_transforms(spatial_dims)(item)
    assert torch.equal(torch.as_tensor(identity["image"]), item["image"])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_augmentation_is_random_seedable_and_keeps_the_shape(spatial_dims):
    item = _item(spatial_dims)
    outs = []
    for seed in (0, 0, 1):
        xform = classification_transforms(spatial_dims, input_size=28, augment=True)
        xform.set_random_state(seed)
        outs.append(torch.as_tensor(xform(dict(item))["image"]))
    assert all(o.shape == (1,) + (28,) * spatial_dims for o in outs)
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert not torch.equal(outs[0], item["image"])


@pytest.mark.parametrize(
    "kwargs, match",
    [({"spatial_dims": 4}, "spatial_dims"), ({"spatial_dims": 2, "input_size": 2}, "input_size"),
     ({"spatial_dims": 3, "intensity_range": (1, -1)}, "intensity_range"),
     ({"spatial_dims": 2, "augment": True}, "input_size")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_transforms(**kwargs)


def test_rotated_views_fill_corners_with_the_background():
    x = torch.full((1, 1, 16, 16, 16), -1.0)
    view = {"kind": "rotation", "axis": 0, "angle": 30.0}
    torch.testing.assert_close(apply_view(x, view, "monai", background=-1.0), x)
    assert apply_view(x, view, "monai").max() == 0.0  # zero padding without it
