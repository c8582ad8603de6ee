"""Array rotation transforms for channel-first samples ``(C, *spatial)``.

See :mod:`monai_sre.transforms.rotation` for the axis/angle convention (``axis`` is the fixed spatial axis; a
positive angle turns the first remaining axis towards the second, so ``90`` equals ``torch.rot90``). Flips need no
new transform: use :class:`monai.transforms.Flip` with the axes of
:func:`~monai_sre.transforms.rotation.reflection_protocol`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import RandomizableTransform, Transform
from monai.utils import convert_to_dst_type

from .rotation import _check_angle, _check_axis, rotate_batch, rotate_matrix_batch, rotation_matrix, torchio_rotate

__all__ = ["RotateAxis", "RotateMatrix", "RandRotateAxis", "RandRotateMatrix"]

_BACKENDS = ("auto", "torchio", "monai")


def _as_tensor(img: NdarrayOrTensor) -> torch.Tensor:
    t = torch.as_tensor(img)
    if t.dim() not in (3, 4):
        raise ValueError(f"img must be channel-first (C, H, W[, D]), got shape {list(t.shape)}.")
    return t.as_subclass(torch.Tensor) if type(t) is not torch.Tensor else t


class RotateAxis(Transform):
    """Rotate a channel-first image by a fixed angle about one spatial axis.

    The CPU path goes through TorchIO (:class:`torchio.Affine`, SimpleITK resampling about the image centre); on CUDA
    (``backend="auto"``) or with ``backend="monai"`` the batched MONAI-affine path
    :func:`~monai_sre.transforms.rotation.rotate_batch` is used instead. ``RotateAxis(90, axis)`` equals
    ``torch.rot90`` over the two other spatial axes, and 360 degrees returns the input.

    Args:
        angle: degrees.
        axis: fixed spatial axis of ``(C, *spatial)`` (0, 1 or 2) for 3D; must be None for 2D.
        mode: ``"linear"`` or ``"nearest"``.
        padding_value: value for voxels that come from outside the input (TorchIO's ``default_pad_value``; the
            MONAI path supports 0 only).
        backend: ``"auto"`` (TorchIO on CPU, MONAI affine on CUDA), ``"torchio"`` or ``"monai"``.

    Example:
        >>> img = torch.rand(1, 16, 16, 16)
        >>> RotateAxis(30, axis=2)(img).shape
        torch.Size([1, 16, 16, 16])
    """

    backend = [torch.Tensor.__name__, np.ndarray.__name__]

    def __init__(
        self,
        angle: float,
        axis: int | None = None,
        mode: str = "linear",
        padding_value: float = 0.0,
        backend: str = "auto",
    ) -> None:
        _check_angle(angle)
        if axis is not None:
            _check_axis(axis, 3)
        if mode not in ("linear", "bilinear", "nearest"):
            raise ValueError(f"mode must be 'linear' or 'nearest', got {mode!r}.")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}.")
        if backend == "monai" and padding_value != 0:
            raise ValueError(f"backend='monai' pads with zeros only, got padding_value={padding_value}.")
        self.angle = float(angle)
        self.axis = axis
        self.mode = mode
        self.padding_value = padding_value
        self.backend_name = backend

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Rotate ``img`` of shape ``(C, H, W[, D])``; returns the same type (MetaTensor metadata is kept)."""
        t = _as_tensor(img)
        _check_axis(self.axis, t.dim() - 1)
        use_monai = self.backend_name == "monai" or (self.backend_name == "auto" and t.device.type != "cpu")
        if use_monai and self.padding_value == 0:
            out = rotate_batch(t[None].float(), self.angle, self.axis, mode=self.mode)[0]
        else:
            out = torchio_rotate(t, self.angle, self.axis, mode=self.mode, default_pad_value=self.padding_value)
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]


class RotateMatrix(Transform):
    """Rotate a channel-first image by any 2D/3D rotation matrix about its centre (MONAI affine, any device).

    Args:
        matrix: ``(N, N)`` rotation acting on voxel index offsets (see
            :func:`~monai_sre.transforms.rotation.rotation_matrix`).
        mode: ``"linear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.

    Example:
        >>> r = RotateMatrix.from_axis_angles([(0, 30), (2, 45)])  # 30 deg about axis 0, then 45 about axis 2
        >>> r(torch.rand(1, 16, 16, 16)).shape
        torch.Size([1, 16, 16, 16])
    """

    backend = [torch.Tensor.__name__, np.ndarray.__name__]

    def __init__(self, matrix: np.ndarray | torch.Tensor, mode: str = "linear", padding_mode: str = "zeros") -> None:
        mat = np.asarray(torch.as_tensor(matrix, dtype=torch.float64))
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] not in (2, 3):
            raise ValueError(f"matrix must be a 2x2 or 3x3 rotation, got shape {mat.shape}.")
        if not np.allclose(mat @ mat.T, np.eye(mat.shape[0]), atol=1e-6) or np.linalg.det(mat) < 0:
            raise ValueError("matrix must be a proper rotation (orthogonal, determinant +1).")
        self.matrix = mat
        self.mode = mode
        self.padding_mode = padding_mode

    @classmethod
    def from_axis_angles(
        cls, axis_angles: Sequence[tuple[int | None, float]], spatial_dims: int = 3, **kwargs
    ) -> RotateMatrix:
        """Compose single-axis rotations, applied in the given order, into one transform (one resampling)."""
        mat = np.eye(spatial_dims)
        for axis, angle in axis_angles:
            mat = rotation_matrix(angle, axis, spatial_dims) @ mat
        return cls(mat, **kwargs)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Rotate ``img`` of shape ``(C, H, W[, D])``."""
        t = _as_tensor(img)
        if t.dim() - 1 != self.matrix.shape[0]:
            raise ValueError(f"matrix is {self.matrix.shape[0]}D but img has shape {list(t.shape)}.")
        out = rotate_matrix_batch(t[None].float(), self.matrix, mode=self.mode, padding_mode=self.padding_mode)[0]
        return convert_to_dst_type(out, img, dtype=out.dtype)[0]


class RandRotateAxis(RandomizableTransform):
    """Random rotation about a random spatial axis by a random angle (TorchIO on CPU), for augmentation.

    Args:
        prob: probability of rotating.
        axes: candidate fixed axes for 3D (default all three); ignored for 2D.
        degrees: ``(low, high)`` range for a uniform angle, or a sequence of more than two discrete angles to
            choose from.
        mode: ``"linear"`` or ``"nearest"``.
        backend: as in :class:`RotateAxis`.
    """

    backend = RotateAxis.backend

    def __init__(
        self,
        prob: float = 1.0,
        axes: Sequence[int] = (0, 1, 2),
        degrees: Sequence[float] = (0.0, 360.0),
        mode: str = "linear",
        backend: str = "auto",
    ) -> None:
        super().__init__(prob)
        self.axes = tuple(_check_axis(a, 3) for a in axes)
        if not self.axes:
            raise ValueError("axes must not be empty.")
        self.degrees = tuple(float(d) for d in degrees)
        if len(self.degrees) < 2:
            raise ValueError(f"degrees must be a (low, high) range or a list of angles, got {degrees}.")
        RotateAxis(0.0, None, mode=mode, backend=backend)  # validate
        self.mode = mode
        self.backend_name = backend
        self._axis: int = self.axes[0]
        self._angle: float = 0.0

    def randomize(self, data=None) -> None:
        super().randomize(None)
        if not self._do_transform:
            return
        self._axis = self.axes[self.R.randint(len(self.axes))]
        if len(self.degrees) == 2:
            self._angle = float(self.R.uniform(*self.degrees))
        else:
            self._angle = self.degrees[self.R.randint(len(self.degrees))]

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """Rotate ``img`` (``(C, *spatial)``) with freshly drawn (or the last, if ``randomize=False``) parameters."""
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        axis = self._axis if torch.as_tensor(img).dim() == 4 else None
        return RotateAxis(self._angle, axis, mode=self.mode, backend=self.backend_name)(img)


class RandRotateMatrix(RandomizableTransform):
    """Uniformly random rotation in SO(2) or SO(3) (any 3D rotation; MONAI affine resampling), for augmentation.

    Args:
        prob: probability of rotating.
        mode: ``"linear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
    """

    backend = RotateMatrix.backend

    def __init__(self, prob: float = 1.0, mode: str = "linear", padding_mode: str = "zeros") -> None:
        super().__init__(prob)
        self.mode = mode
        self.padding_mode = padding_mode
        self._gauss: np.ndarray | None = None

    def randomize(self, data=None) -> None:
        super().randomize(None)
        if self._do_transform:
            self._gauss = self.R.standard_normal((3, 3))

    def _matrix(self, n: int) -> np.ndarray:
        assert self._gauss is not None
        q, r = np.linalg.qr(self._gauss[:n, :n])
        q = q * np.sign(np.diag(r))  # Haar-uniform orthogonal matrix
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        return q

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """Rotate ``img`` (``(C, *spatial)``)."""
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        n = torch.as_tensor(img).dim() - 1
        return RotateMatrix(self._matrix(n), mode=self.mode, padding_mode=self.padding_mode)(img)
