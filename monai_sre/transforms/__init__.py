"""Fixed and random rotations (TorchIO on CPU, batched MONAI affine on GPU) and the paper's rotation protocol."""

from __future__ import annotations

from .array import RandRotateAxis, RandRotateMatrix, RotateAxis, RotateMatrix
from .dictionary import (
    RandRotateAxisd,
    RandRotateAxisD,
    RandRotateAxisDict,
    RandRotateMatrixd,
    RandRotateMatrixD,
    RandRotateMatrixDict,
    RotateAxisd,
    RotateAxisD,
    RotateAxisDict,
    RotateMatrixd,
    RotateMatrixD,
    RotateMatrixDict,
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
    "RandRotateAxis",
    "RandRotateAxisd",
    "RandRotateAxisD",
    "RandRotateAxisDict",
    "RandRotateMatrix",
    "RandRotateMatrixd",
    "RandRotateMatrixD",
    "RandRotateMatrixDict",
    "RotateAxis",
    "RotateAxisd",
    "RotateAxisD",
    "RotateAxisDict",
    "RotateMatrix",
    "RotateMatrixd",
    "RotateMatrixD",
    "RotateMatrixDict",
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
