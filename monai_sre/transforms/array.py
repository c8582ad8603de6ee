"""Array rotation transforms for channel-first samples ``(C, *spatial)``.

See :mod:`monai_sre.transforms.rotation` for the axis/angle convention (``axis`` is the fixed spatial axis; a
positive angle turns the first remaining axis towards the second, so ``90`` equals ``torch.rot90``). Flips need no
new transform: use :class:`monai.transforms.Flip` with the axes of
:func:`~monai_sre.transforms.rotation.reflection_protocol`.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import convert_to_dst_type

from .rotation import _check_angle, _check_axis, rotate_batch, torchio_rotate

__all__ = ["RotateAxis"]

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

