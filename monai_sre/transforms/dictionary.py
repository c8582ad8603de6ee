"""Dictionary wrappers of :mod:`monai_sre.transforms.array` (MONAI ``MapTransform`` style)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform

from .array import RotateAxis

__all__ = [
    "RotateAxisd",
    "RotateAxisD",
    "RotateAxisDict",
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


RotateAxisD = RotateAxisDict = RotateAxisd
