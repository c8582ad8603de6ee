"""Dictionary wrappers of :mod:`monai_sre.transforms.array` (MONAI ``MapTransform`` style)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform

from .array import RandRotateAxis, RandRotateMatrix, RotateAxis, RotateMatrix

__all__ = [
    "RotateAxisd",
    "RotateAxisD",
    "RotateAxisDict",
    "RotateMatrixd",
    "RotateMatrixD",
    "RotateMatrixDict",
    "RandRotateAxisd",
    "RandRotateAxisD",
    "RandRotateAxisDict",
    "RandRotateMatrixd",
    "RandRotateMatrixD",
    "RandRotateMatrixDict",
]


class RotateAxisd(MapTransform):
    """Dictionary-based wrapper of :class:`~monai_sre.transforms.RotateAxis`.

    Args:
        keys: keys of the items to rotate.
        angle: degrees.
        axis: fixed spatial axis (3D) or None (2D).
        mode: ``"linear"``/``"nearest"``, or one per key (e.g. nearest for label maps).
        padding_value: fill value outside the input.
        backend: ``"auto"``, ``"torchio"`` or ``"monai"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = RotateAxis.backend

    def __init__(
        self,
        keys: KeysCollection,
        angle: float,
        axis: int | None = None,
        mode: str | Sequence[str] = "linear",
        padding_value: float = 0.0,
        backend: str = "auto",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        modes = [mode] * len(self.keys) if isinstance(mode, str) else list(mode)
        if len(modes) != len(self.keys):
            raise ValueError(f"mode must be one string or one per key ({len(self.keys)}), got {mode}.")
        self.rotators = [RotateAxis(angle, axis, mode=m, padding_value=padding_value, backend=backend) for m in modes]

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, rotator in self.key_iterator(d, self.rotators):
            d[key] = rotator(d[key])
        return d


class RotateMatrixd(MapTransform):
    """Dictionary-based wrapper of :class:`~monai_sre.transforms.RotateMatrix` (any rotation).

    Args:
        keys: keys of the items to rotate.
        matrix: ``(N, N)`` rotation matrix.
        mode: ``"linear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = RotateMatrix.backend

    def __init__(
        self,
        keys: KeysCollection,
        matrix: np.ndarray | torch.Tensor,
        mode: str = "linear",
        padding_mode: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.rotator = RotateMatrix(matrix, mode=mode, padding_mode=padding_mode)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.rotator(d[key])
        return d


class _RandMapMixin(RandomizableTransform, MapTransform):
    """Shared randomisation for random dict rotations: one draw per call, applied to every key."""

    rotator: RandRotateAxis | RandRotateMatrix

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.rotator.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.rotator.randomize()
        for key in self.key_iterator(d):
            d[key] = self.rotator(d[key], randomize=False)
        return d


class RandRotateAxisd(_RandMapMixin):
    """Dictionary-based wrapper of :class:`~monai_sre.transforms.RandRotateAxis` (same draw for all keys).

    Args:
        keys: keys of the items to rotate.
        prob: probability of rotating.
        axes: candidate fixed axes (3D).
        degrees: ``(low, high)`` range or a list of discrete angles.
        mode: ``"linear"`` or ``"nearest"``.
        backend: ``"auto"``, ``"torchio"`` or ``"monai"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = RandRotateAxis.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 1.0,
        axes: Sequence[int] = (0, 1, 2),
        degrees: Sequence[float] = (0.0, 360.0),
        mode: str = "linear",
        backend: str = "auto",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.rotator = RandRotateAxis(prob=1.0, axes=axes, degrees=degrees, mode=mode, backend=backend)


class RandRotateMatrixd(_RandMapMixin):
    """Dictionary-based wrapper of :class:`~monai_sre.transforms.RandRotateMatrix` (same draw for all keys).

    Args:
        keys: keys of the items to rotate.
        prob: probability of rotating.
        mode: ``"linear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = RandRotateMatrix.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 1.0,
        mode: str = "linear",
        padding_mode: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.rotator = RandRotateMatrix(prob=1.0, mode=mode, padding_mode=padding_mode)


RotateAxisD = RotateAxisDict = RotateAxisd
RotateMatrixD = RotateMatrixDict = RotateMatrixd
RandRotateAxisD = RandRotateAxisDict = RandRotateAxisd
RandRotateMatrixD = RandRotateMatrixDict = RandRotateMatrixd
