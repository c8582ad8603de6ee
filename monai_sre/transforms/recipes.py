"""The training / evaluation preprocessing of the SRE-Conv paper as MONAI dictionary transforms, each part switchable.

The paper (Du et al., ISBI 2025) resizes MedMNIST's 28 px images to 32, maps intensities to [-1, 1] and augments
without rotations: in 3D a random affine (scale +-0.2, translation up to 3 voxels) and a random blur, in 2D a random
resized crop (area 0.5-1) and a light brightness / contrast jitter. The bundles expose each part as a config id
(``input_size``, ``intensity_range``, ``augment``). ``field_of_view="ball"`` is ours, not the paper's: it blanks
everything outside the disk / ball inscribed in the grid, so that a rotated view shows the same content as the
original instead of exchanging the image corners for padding. ``rotate`` is ours too: training with random rotations
by arbitrary angles, the usual alternative to a rotation-invariant network.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    MapTransform,
    MaskIntensity,
    RandAffined,
    RandGaussianSmoothd,
    RandRotated,
    RandScaleCropd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Resized,
    ScaleIntensityRanged,
)

__all__ = ["FIELDS_OF_VIEW", "BallMaskd", "classification_transforms", "inscribed_ball"]

FIELDS_OF_VIEW = (None, "ball")


@lru_cache(maxsize=16)
def inscribed_ball(spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the voxels whose centres lie in the ball (disk in 2D) inscribed in ``spatial_shape``.

    The ball is centred on the grid centre with radius ``min(spatial_shape) / 2``, so it is unchanged by every
    rotation about the centre and by every flip.
    """
    if not spatial_shape or any(int(s) < 1 for s in spatial_shape):
        raise ValueError(f"spatial_shape must be positive sizes, got {spatial_shape!r}.")
    radius = min(spatial_shape) / 2.0
    grids = np.meshgrid(*[np.arange(s) - (s - 1) / 2.0 for s in spatial_shape], indexing="ij")
    mask = sum(g**2 for g in grids) <= radius**2
    mask.setflags(write=False)
    return mask


class BallMaskd(MapTransform):
    """Set every voxel outside :func:`inscribed_ball` of the item's spatial grid to 0 (all channels).

    Args:
        keys: keys of the images to mask (``(C, *spatial)`` arrays or tensors).
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            mask = inscribed_ball(tuple(int(s) for s in img.shape[1:]))
            d[key] = MaskIntensity(mask_data=torch.from_numpy(mask.copy())[None])(img)
        return d


def classification_transforms(
    spatial_dims: int,
    input_size: int | None = None,
    intensity_range: Sequence[float] = (0.0, 1.0),
    augment: bool = False,
    keys: str = "image",
    field_of_view: str | None = None,
    blur: float | None = None,
    rotate: bool = False,
) -> Compose:
    """Dictionary transforms for items ``{"image": (C, *spatial) float in [0, 1], "label": ...}``.

    Order: random rotation and augmentation (in the [0, 1] range, so padding is background), resize to
    ``input_size``, the optional field-of-view mask (0, i.e. background, so a rotated training item is masked exactly
    like a rotated evaluation view), then the linear intensity map from [0, 1] to ``intensity_range``. The 2D crop is
    resized back, so every output has the same shape.

    Args:
        spatial_dims: 2 or 3.
        input_size: side length the network sees (the paper: 32); None keeps the data's size (no resize for
            evaluation; the 2D crop is then resized back to the size it had).
        intensity_range: ``(low, high)`` that [0, 1] is mapped to; the paper uses ``(-1, 1)``.
        augment: add the paper's training augmentation (never for evaluation).
        keys: image key.
        field_of_view: None (the whole grid) or ``"ball"``: blank what lies outside the inscribed disk / ball
            (:class:`BallMaskd`), for training and evaluation alike.
        blur: training only (ours, not the paper's 2D recipe): with probability 0.5 smooth the item with a Gaussian
            whose sigma is drawn from ``[0, blur]`` voxels per axis. Off-grid rotations resample the image, which
            low-passes it; a network that never saw a smoothed image mistakes that for a different class (see
            ``docs/experiments.md``). None or 0 adds nothing.
        rotate: training only (ours): rotate every item about the grid centre by a random angle, uniform in
            [-180, 180) degrees about each of the three axes in 3D (every orientation can occur, though not with
            equal probability) and in the plane in 2D (MONAI ``RandRotated``, linear interpolation, zero padding).
            Rotation augmentation is what one would use instead of an invariant network.

    Raises:
        ValueError: bad ``spatial_dims``, ``input_size``, ``intensity_range``, ``field_of_view``, ``blur``, or an
            ``augment`` or ``rotate`` that is not a bool.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    if input_size is not None and (not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 4):
        raise ValueError(f"input_size must be None or an int >= 4, got {input_size!r}.")
    lo_hi = tuple(float(v) for v in intensity_range)
    if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
        raise ValueError(f"intensity_range must be (low, high) with low < high, got {intensity_range!r}.")
    if field_of_view not in FIELDS_OF_VIEW:
        raise ValueError(f"field_of_view must be one of {FIELDS_OF_VIEW}, got {field_of_view!r}.")
    if blur is not None and (isinstance(blur, bool) or not isinstance(blur, (int, float)) or not 0 <= blur < 8):
        raise ValueError(f"blur must be None or a sigma in voxels in [0, 8), got {blur!r}.")
    if not isinstance(augment, bool):
        raise ValueError(f"augment must be True or False (bundle command line: --augment true), got {augment!r}.")
    if not isinstance(rotate, bool):
        raise ValueError(f"rotate must be True or False (bundle command line: --rotate_augment true), got {rotate!r}.")
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    xforms: list = []
    if rotate:
        xforms.append(RandRotated(keys, range_x=math.pi, range_y=math.pi, range_z=math.pi, prob=1.0, keep_size=True,
                                  mode="bilinear", padding_mode="zeros"))
    if augment:
        if spatial_dims == 3:
            xforms += [
                RandAffined(keys, prob=1.0, scale_range=(0.2,) * 3, translate_range=(3,) * 3, padding_mode="zeros"),
                RandGaussianSmoothd(keys, sigma_x=(0.25, 1.0), sigma_y=(0.25, 1.0), sigma_z=(0.25, 1.0), prob=0.5),
            ]
        else:
            side = math.sqrt(0.5)  # area 0.5-1 of the image
            xforms += [
                RandScaleCropd(keys, roi_scale=side, max_roi_scale=1.0, random_center=True, random_size=True),
                RandScaleIntensityd(keys, factors=0.1, prob=0.5),
                RandShiftIntensityd(keys, offsets=0.1, prob=0.5),
            ]
    if blur:
        sigma = (0.0, float(blur))
        xforms.append(RandGaussianSmoothd(keys, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=0.5))
    if input_size is not None:
        xforms.append(Resized(keys, spatial_size=(input_size,) * spatial_dims, mode=mode, anti_aliasing=False))
    elif augment and spatial_dims == 2:
        raise ValueError("augment=True in 2D crops the image: give input_size (e.g. 28 or 32) to resize it back.")
    if field_of_view == "ball":
        xforms.append(BallMaskd(keys))
    if lo_hi != (0.0, 1.0):
        xforms.append(ScaleIntensityRanged(keys, a_min=0.0, a_max=1.0, b_min=lo_hi[0], b_max=lo_hi[1], clip=False))
    return Compose(xforms)
