"""Fixed and random rotations (TorchIO on CPU, batched MONAI affine on GPU) and the paper's rotation protocol."""

from __future__ import annotations

from .array import RotateAxis
from .dictionary import (
    RotateAxisd,
    RotateAxisD,
    RotateAxisDict,
)
from .recipes import FIELDS_OF_VIEW, BallMaskd, classification_transforms, inscribed_ball
from .rotation import (
    reflection_protocol,
    rotate,
    rotate_batch,
    rotate_matrix_batch,
    rotation_matrix,
    rotation_protocol,
    torchio_rotate,
)
from .views import View, apply_view, make_views

__all__ = [
    "FIELDS_OF_VIEW",
    "BallMaskd",
    "classification_transforms",
    "inscribed_ball",
    "RotateAxis",
    "RotateAxisd",
    "RotateAxisD",
    "RotateAxisDict",
    "reflection_protocol",
    "rotate",
    "rotate_batch",
    "rotate_matrix_batch",
    "rotation_matrix",
    "rotation_protocol",
    "torchio_rotate",
    "View",
    "apply_view",
    "make_views",
]
