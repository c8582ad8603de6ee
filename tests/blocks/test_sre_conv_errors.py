"""Arguments that used to be silently rounded or rejected without naming the argument."""

from __future__ import annotations

import pytest

from monai_sre.blocks import SREConv
from monai_sre.layers import band_index


@pytest.mark.parametrize("num_bands", [2.5, True, "3"])
def test_num_bands_must_be_an_int(num_bands):
    with pytest.raises(TypeError, match=f"num_bands must be an int .*got {num_bands!r}"):
        band_index(5, num_bands=num_bands, spatial_dims=2)  # 2.5 used to become 2 bands
    with pytest.raises(TypeError, match="num_bands must be an int"):
        SREConv(2, 1, 1, kernel_size=5, num_bands=num_bands)


@pytest.mark.parametrize("spatial_dims,spacing", [(3, (1.0, 2.0)), (2, (1.0, 1.0, 3.0))])
def test_spacing_of_the_wrong_length_is_named(spatial_dims, spacing):
    with pytest.raises(ValueError, match=rf"spacing must be a number or {spatial_dims} numbers .*got \("):
        SREConv(spatial_dims, 1, 1, kernel_size=3, spacing=spacing)
    assert SREConv(spatial_dims, 1, 1, kernel_size=3, spacing=2.0).spacing == (2.0,) * spatial_dims
