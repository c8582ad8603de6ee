"""Evaluation views: the paper's protocol, names, and which views are the same."""

from __future__ import annotations

import pytest
import torch

from monai_sre.transforms import apply_view, make_views


@pytest.mark.parametrize("spatial_dims, count", [(3, 1 + 39 + 3), (2, 1 + 37 + 2)])
def test_make_views_paper_protocol(spatial_dims, count):
    views = make_views(spatial_dims)
    assert len(views) == count
    assert views[0]["kind"] == "original"
    assert len({v.name for v in views}) == count  # unique names (CSV rows)
    # the 0 and 360 degree rotations show the original: one evaluation for all of them
    same = [v.name for v in views if v.key == "original"]
    assert same[0] == "original" and len(same) == 1 + (3 * 2 if spatial_dims == 3 else 2)


def test_views_show_the_batch_turned_flipped_or_unchanged():
    x = torch.rand(2, 1, 6, 6, 6)
    original, turn, full, flip = make_views(3, [(0, 90.0), (1, 360.0)], [2])
    assert apply_view(x, original) is x and apply_view(x, full) is x
    torch.testing.assert_close(apply_view(x, flip), torch.flip(x, dims=(4,)))
    turned = apply_view(x, turn, backend="monai")
    assert any(torch.allclose(turned, torch.rot90(x, k, dims=(3, 4)), atol=1e-5) for k in (1, 3))
