"""The paper's preprocessing recipe: resize, intensity map, augmentation (switchable), and rotated-view background."""

from __future__ import annotations

import pytest
import torch

from monai_sre.transforms import apply_view
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


@pytest.mark.parametrize("shape", [(28, 28), (29, 29), (16, 16, 16), (28, 28, 28), (12, 20)])
def test_inscribed_ball_has_every_grid_symmetry_and_the_right_volume(shape):
    import math

    import numpy as np

    from monai_sre.transforms import inscribed_ball

    mask = inscribed_ball(shape)
    for axis in range(len(shape)):
        assert np.array_equal(np.flip(mask, axis), mask)
    if len(set(shape)) == 1:
        for plane in [(0, 1)] if len(shape) == 2 else [(0, 1), (0, 2), (1, 2)]:
            assert np.array_equal(np.rot90(mask, 1, plane), mask)
        unit_ball = math.pi / 4 if len(shape) == 2 else math.pi / 6  # share of the cube inside the inscribed ball
        assert abs(mask.mean() - unit_ball) < 0.04
    assert not mask[(0,) * len(shape)] and mask[tuple(s // 2 for s in shape)]
    with pytest.raises(ValueError, match="spatial_shape"):
        inscribed_ball((0, 4))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_field_of_view_blanks_outside_the_ball_to_the_background(spatial_dims):
    from monai_sre.transforms import inscribed_ball

    item = {"image": torch.rand(2, *([20] * spatial_dims)), "label": 0}
    out = classification_transforms(spatial_dims, input_size=24, intensity_range=(-1.0, 1.0),
                                    field_of_view="ball")(item)
    image = torch.as_tensor(out["image"])
    inside = torch.as_tensor(inscribed_ball((24,) * spatial_dims))
    assert image.shape == (2,) + (24,) * spatial_dims
    assert torch.all(image[:, ~inside] == -1.0)  # background of the intensity range, every channel
    assert torch.all(image[:, inside] > -1.0)  # rand > 0 inside, resized: nothing inside is blanked
    with pytest.raises(ValueError, match="field_of_view"):
        classification_transforms(spatial_dims, field_of_view="disc")


def test_ball_mask_makes_a_rotated_view_show_the_original_content():
    """Rotating a masked image by 45 degrees keeps its content inside the ball: only interpolation changes it, and
    the corners the rotation brings in are background, as they were before it."""
    from monai_sre.transforms import BallMaskd, inscribed_ball, rotate

    torch.manual_seed(0)
    masked = BallMaskd("image")({"image": torch.rand(1, 32, 32)})["image"]
    turned = rotate(torch.as_tensor(masked)[None], 45.0, backend="monai")[0]
    outside = ~torch.as_tensor(inscribed_ball((32, 32)))
    assert torch.all(torch.as_tensor(masked)[:, outside] == 0)
    yy, xx = torch.meshgrid(torch.arange(32) - 15.5, torch.arange(32) - 15.5, indexing="ij")
    beyond_rim = (yy**2 + xx**2).sqrt() > 16 + 1.5  # one interpolation step outside the ball
    assert torch.all(torch.as_tensor(turned)[:, beyond_rim] == 0)
    full = rotate(torch.rand(1, 1, 32, 32) + 1.0, 45.0, backend="monai")[0]
    assert (full[:, beyond_rim] == 0).float().mean() > 0.5  # without the mask, the corners are swapped for padding


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_blur_smooths_about_half_the_items_and_keeps_their_mass(spatial_dims):
    """``blur`` low-passes some training items (the rotated views' interpolation does the same to test images);
    a smoothed item keeps its total intensity away from the border, and is smoother than the original."""
    item = _item(spatial_dims, size=16)
    xform = classification_transforms(spatial_dims, blur=1.5)
    xform.set_random_state(0)
    changed = 0
    for _ in range(40):
        out = torch.as_tensor(xform(dict(item))["image"])
        assert out.shape == item["image"].shape
        if not torch.equal(out, item["image"]):
            changed += 1
            assert out.sum().item() == pytest.approx(item["image"].sum().item(), rel=1e-3)
            rough = lambda z: sum(z.diff(dim=d).abs().sum() for d in range(1, z.dim()))  # noqa: E731
            assert rough(out) < rough(item["image"])
    assert 10 <= changed <= 30
    for off in (None, 0.0):
        assert torch.equal(torch.as_tensor(classification_transforms(spatial_dims, blur=off)(item)["image"]),
                           item["image"])
    for bad in (-1.0, True, "1", 9.0):
        with pytest.raises(ValueError, match="blur"):
            classification_transforms(spatial_dims, blur=bad)


def _blob(spatial_dims, size=24):
    """A smooth off-centre blob well inside the inscribed ball: rotating it moves it, but nothing leaves the ball."""
    grids = torch.meshgrid(*[torch.arange(size, dtype=torch.float32) - (size - 1) / 2] * spatial_dims, indexing="ij")
    centre = [size / 5] + [0.0] * (spatial_dims - 1)
    r2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return {"image": torch.exp(-r2 / (2 * 2.0**2))[None], "label": 1}


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_rotate_turns_training_items_keeps_their_mass_and_is_seedable(spatial_dims):
    from monai_sre.transforms import inscribed_ball

    item = _blob(spatial_dims)
    plain = torch.as_tensor(classification_transforms(spatial_dims, field_of_view="ball")(dict(item))["image"])
    inside = torch.from_numpy(inscribed_ball((24,) * spatial_dims).copy())
    outs = []
    for seed in (0, 0, 1):
        xform = classification_transforms(spatial_dims, field_of_view="ball", rotate=True)
        xform.set_random_state(seed)
        outs.append(torch.as_tensor(xform(dict(item))["image"]))
    assert torch.equal(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2], atol=1e-3)
    for out in outs:
        assert out.shape == plain.shape and torch.all(out[:, ~inside] == 0)  # the ball mask comes after the turn
        assert (out - plain).abs().max() > 0.5  # the blob moved
        assert out[:, inside].sum().item() == pytest.approx(plain[:, inside].sum().item(), rel=0.02)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_rotate_draws_arbitrary_angles_under_set_determinism(spatial_dims):
    """Under ``monai.utils.set_determinism`` a fresh recipe turns the same way; its angles are not grid steps."""
    from monai.transforms import RandRotated
    from monai.utils import set_determinism

    def angles(n=20):
        set_determinism(seed=0)
        xform = classification_transforms(spatial_dims, rotate=True)
        xform.set_random_state(seed=0)
        turn = next(t for t in xform.transforms if isinstance(t, RandRotated))
        drawn = []
        for _ in range(n):
            xform(_blob(spatial_dims, size=8))
            drawn.append((turn.rand_rotate.x, turn.rand_rotate.y, turn.rand_rotate.z))
        return torch.tensor(drawn)

    try:
        first, again = angles(), angles()
    finally:
        set_determinism(seed=None)
    assert torch.equal(first, again)
    in_plane = first[:, 0]
    assert in_plane.abs().max() <= torch.pi and in_plane.min() < -1.0 and in_plane.max() > 1.0
    assert (in_plane / (torch.pi / 2) - (in_plane / (torch.pi / 2)).round()).abs().max() > 0.1
    if spatial_dims == 3:
        assert torch.all(first.abs().max(dim=0).values > 1.0)  # about every axis


@pytest.mark.parametrize("bundle", ["sre_r3d", "sre_r18"])
def test_bundles_rotate_training_items_only_when_asked(bundle):
    """``--rotate_augment True`` adds the rotation to ``train_transforms``; ``eval_transforms`` never rotate."""
    import os

    from monai.bundle import ConfigParser
    from monai.transforms import RandRotated

    from monai_sre.workflows import find_bundle_root

    def turns(xform):
        return any(isinstance(t, RandRotated) for t in xform.transforms)

    for switch in (False, True):
        parser = ConfigParser()
        parser.read_config(os.path.join(find_bundle_root(bundle), "configs", "train.json"))
        if switch:
            parser["rotate_augment"] = True
        assert turns(parser.get_parsed_content("train_transforms")) is switch
        assert not turns(parser.get_parsed_content("eval_transforms"))


def test_rotate_must_be_a_bool():
    for bad in ("true", "False", 1, None):
        with pytest.raises(ValueError, match="rotate must be True or False"):
            classification_transforms(2, rotate=bad)


def test_augment_must_be_a_bool():
    """A string switch would be truthy: ``augment="false"`` must not augment (bundles read it with ``monai.utils.str2bool``)."""
    for bad in ("false", "True", 0, None):
        with pytest.raises(ValueError, match="augment must be True or False"):
            classification_transforms(3, augment=bad)
