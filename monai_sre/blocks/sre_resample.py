"""Max / average pooling and subsampling whose windows sit symmetrically on the grid.

A pooling (or a strided convolution) places its output samples at ``c0, c0 + s, c0 + 2s, ...``.
PyTorch starts at the first window, so whenever ``(m - 1) * s`` does not span the input exactly the
last samples are dropped and a flipped input is sampled on a shifted grid: 90-degree rotations and
flips no longer commute with the layer. Here the ``m`` windows (the same count PyTorch gives) are
centred on the input instead, at ``c0 = (n - 1 - (m - 1) * s) / 2``; a half-integer centre takes an
even window, an integer centre an odd one, so the layout is its own mirror image for every size.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.utils import ensure_tuple_rep

__all__ = ["SREPool", "SizeDependentLayer", "symmetric_pool", "symmetric_resize", "symmetric_windows", "traced_for_its_size"]

_MODES = ("max", "avg")

#: the warning a trace through a layer placed from the input size gives (``{layer}``: its class)
TRACE_WARNING = (
    "torch.jit.trace through {layer}: its windows are placed from the input size, and a trace records them as "
    "constants, so this trace is valid for inputs of the traced spatial size only (at other sizes it runs and gives "
    "other outputs). For other sizes use torch.jit.script(model), or torch.jit.script(export_to_conv(model)) for a "
    "model without monai_sre."
)
_trace_warned = False


@contextlib.contextmanager
def traced_for_its_size(layer: str) -> Iterator[None]:
    """Context for tracing a layer whose geometry follows the input size: warns once per process with
    :data:`TRACE_WARNING`, and keeps the tracer's own warnings about each size read inside the layer (dozens per
    network, all saying the same) from burying it.

    Example::

        >>> def forward(self, x):  # doctest: +SKIP
        ...     if not torch.jit.is_scripting() and torch.jit.is_tracing():  # not compiled by TorchScript
        ...         with traced_for_its_size(type(self).__name__):
        ...             return self._forward(x)
        ...     return self._forward(x)
    """
    global _trace_warned
    if not _trace_warned:
        _trace_warned = True
        warnings.warn(TRACE_WARNING.format(layer=layer), torch.jit.TracerWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


class SizeDependentLayer(nn.Module):
    """Base of the layers whose windows are placed from the input size (:class:`SREPool`,
    :class:`~monai_sre.blocks.SREAvgPool`): ``forward`` runs the subclass's ``_forward``, inside
    :func:`traced_for_its_size` when ``torch.jit.trace`` is recording."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and torch.jit.is_tracing():  # TorchScript compiles neither call
            return self._traced_forward(x)
        return self._forward(x)

    def _traced_forward(self, x: torch.Tensor) -> torch.Tensor:
        with traced_for_its_size(type(self).__name__):
            return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define _forward.")


def symmetric_windows(
    size: int, kernel: int, stride: int, padding_total: int = 0, ceil_mode: bool = False
) -> tuple[int, int, int]:
    """Geometry of ``m`` symmetric windows over ``size`` samples.

    ``m`` follows PyTorch's pooling / convolution size rule for ``kernel``, ``stride`` and a total
    padding of ``padding_total`` (both sides together, so an asymmetric ``(0, 1)`` pad counts 1).

    Args:
        size: input length (>= 1).
        kernel: nominal window length (>= 1).
        stride: distance between window centres (>= 1).
        padding_total: total padding in the size rule.
        ceil_mode: PyTorch's ``ceil_mode`` size rule.

    Returns:
        ``(m, window, start)``: output length, window length (``kernel`` or ``kernel + 1``, whichever
        has the parity that centres it) and the first window's first index (negative: that many
        samples of padding on *both* sides; positive: that many samples cropped on both sides).

    Raises:
        ValueError: when the size rule gives no output sample.
    """
    span = size + padding_total - kernel
    if ceil_mode:
        m = -(-span // stride) + 1
        # PyTorch: the last window must start inside the input or the left padding
        if (m - 1) * stride >= size + padding_total // 2:
            m -= 1
    else:
        m = span // stride + 1
    if m < 1:
        raise ValueError(
            f"symmetric_windows: input size {size} is too small for kernel {kernel}, stride {stride}, "
            f"padding {padding_total} (output size {m})."
        )
    twice_c0 = size - 1 - (m - 1) * stride
    window = kernel if (twice_c0 - kernel + 1) % 2 == 0 else kernel + 1
    return m, window, (twice_c0 - window + 1) // 2


def symmetric_resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(B, C, *spatial)`` to ``size`` by (bi/tri)linear interpolation with ``align_corners=True``.

    The end samples map onto the end samples, so the resampling commutes with every flip (and,
    being separable, with axis permutations when the sizes agree). Used where a decoder has to
    match an encoder's odd size, instead of padding one side. Returns ``x`` itself when the size
    already matches.
    """
    if not torch.jit.is_scripting() and torch.jit.is_tracing():
        return _traced_resize(x, size)
    return _resize(x, size)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    size = tuple(int(v) for v in size)
    if tuple(x.shape[2:]) == size:
        return x
    mode = ("linear", "bilinear", "trilinear")[x.dim() - 3]
    return F.interpolate(x, size=size, mode=mode, align_corners=True)


def _traced_resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    with traced_for_its_size("symmetric_resize"):
        return _resize(x, size)


def symmetric_pool(
    x: torch.Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    mode: str,
    ceil_mode: bool,
    extra_padding: list[int],
) -> torch.Tensor:
    """The pooling of :class:`SREPool` as one function of ``x``: the geometry of :func:`symmetric_windows`.

    The window layout depends on the input size. It is computed here by integer arithmetic on
    ``x.shape`` with no branch on a size (every ``if`` tests an argument), so ``torch.fx`` traces the
    function into a graph of torch operations that keeps the size rule for every input size, and
    ``torch.jit.script`` compiles it. Crops and pads are one ``F.pad`` (negative padding crops).
    Inputs too short for any window are not checked here (:meth:`SREPool.forward` checks them).

    Args:
        x: ``(B, C, *spatial)``.
        kernel_size, stride, padding, extra_padding: one int per spatial axis, as in :class:`SREPool`.
        mode: ``"max"`` or ``"avg"``.
        ceil_mode: PyTorch's ``ceil_mode`` size rule.

    Returns:
        The pooled tensor.
    """
    dims = len(kernel_size)
    # the spatial sizes of one channel: static for ONNX's shape inference even with a dynamic batch axis
    spatial = x[0, 0].shape
    windows: list[int] = []
    pads: list[int] = []
    for i in range(dims - 1, -1, -1):
        n = spatial[i]
        k, s = kernel_size[i], stride[i]
        total = 2 * padding[i] + extra_padding[i]
        span = n + total - k
        if ceil_mode:
            m = (span + s - 1) // s + 1
            # PyTorch drops the last window when it starts in the right padding: (m - 1) s >= n + total // 2.
            # d = (m - 1) s - n - total // 2 lies in [low, low + s - 1] whatever n is, so the test is arithmetic.
            low = total - k - total // 2
            d = (m - 1) * s - n - total // 2
            if low >= 0:
                m = m - 1
            elif low + s > 0:
                m = m - (d + s) // s
        else:
            m = span // s + 1
        twice_c0 = n - 1 - (m - 1) * s
        window = k + (twice_c0 - k + 1) % 2
        start = (twice_c0 - window + 1) // 2
        windows.insert(0, window)
        pads += [-start, -start]
    if mode == "max":
        x = F.pad(x, pads, value=float("-inf"))
        if dims == 1:
            return F.max_pool1d(x, windows, stride)
        if dims == 2:
            return F.max_pool2d(x, windows, stride)
        return F.max_pool3d(x, windows, stride)
    ones = F.pad(torch.ones_like(x[:1, :1]), pads)
    x = F.pad(x, pads)
    if dims == 1:
        return F.avg_pool1d(x, windows, stride) / F.avg_pool1d(ones, windows, stride)
    if dims == 2:
        return F.avg_pool2d(x, windows, stride) / F.avg_pool2d(ones, windows, stride)
    return F.avg_pool3d(x, windows, stride) / F.avg_pool3d(ones, windows, stride)


class SREPool(SizeDependentLayer):
    """N-D max or average pooling (or plain subsampling, ``kernel_size=1``) that keeps exact grid symmetry.

    For every input size the output has PyTorch's length for the same ``kernel_size``, ``stride``,
    ``padding`` and ``ceil_mode``, but the windows are centred (see :func:`symmetric_windows`), so
    ``pool(g x) == g pool(x)`` for every flip ``g``, and for every axis permutation when the
    geometry is the same on the permuted axes. Padded samples are ``-inf`` for max pooling and not
    counted by average pooling. ``kernel_size=1`` subsamples: odd spans pick every ``stride``-th
    sample exactly as a strided convolution does, even spans average the two central neighbours.
    Because the windows follow the input size, ``torch.jit.trace`` records them for the traced size only and warns
    once (:func:`traced_for_its_size`); ``torch.jit.script`` keeps the rule for every size.

    Args:
        spatial_dims: 1, 2 or 3.
        kernel_size: nominal window length per axis.
        stride: per axis; default ``kernel_size``.
        padding: per-side padding of the size rule, as in ``torch.nn.MaxPoolNd``.
        mode: ``"max"`` or ``"avg"``.
        ceil_mode: PyTorch's ``ceil_mode`` size rule.
        extra_padding: added to the total padding of the size rule per axis (may be negative); an
            odd total inherited from an asymmetric padding layer (``(0, 1)`` gives 1) is expressed this way.

    Example::

        >>> pool = SREPool(2, kernel_size=3, stride=2, padding=1)
        >>> pool(torch.randn(1, 4, 16, 15)).shape
        torch.Size([1, 4, 8, 8])
    """

    __constants__ = ["spatial_dims", "mode"]

    def __init__(
        self,
        spatial_dims: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int | None = None,
        padding: Sequence[int] | int = 0,
        mode: str = "max",
        ceil_mode: bool = False,
        extra_padding: Sequence[int] | int = 0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        self.spatial_dims = spatial_dims
        self.mode = mode
        self.ceil_mode = bool(ceil_mode)
        self.kernel_size = self._ints("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else self._ints("stride", stride, 1)
        self.padding = self._ints("padding", padding, 0)
        self.extra_padding = self._ints("extra_padding", extra_padding, None)

    def _ints(self, name: str, value, low: int | None) -> list[int]:
        try:
            out = ensure_tuple_rep(value, self.spatial_dims)
        except ValueError as e:
            raise ValueError(f"{name} must be an int or {self.spatial_dims} ints, got {value!r}.") from e
        if not all(isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) for v in out):
            raise ValueError(f"{name} must hold ints{'' if low is None else f' >= {low}'}, got {value!r}.")
        return [int(v) for v in out]

    def geometry(self, shape: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(m, window, start)`` per spatial axis for an input of spatial ``shape``."""
        return [
            symmetric_windows(n, k, s, 2 * p + e, self.ceil_mode)
            for n, k, s, p, e in zip(shape, self.kernel_size, self.stride, self.padding, self.extra_padding)
        ]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"SREPool with spatial_dims={self.spatial_dims} expects input (B, C, *spatial) with "
                f"{self.spatial_dims + 2} dims, got shape {list(x.shape)}."
            )
        for i in range(self.spatial_dims):  # raises when an axis is too short
            symmetric_windows(x.shape[2 + i], self.kernel_size[i], self.stride[i],
                              2 * self.padding[i] + self.extra_padding[i], self.ceil_mode)
        return symmetric_pool(x, self.kernel_size, self.stride, self.padding, self.mode, self.ceil_mode,
                              self.extra_padding)

    def extra_repr(self) -> str:
        return (
            f"spatial_dims={self.spatial_dims}, mode={self.mode!r}, kernel_size={tuple(self.kernel_size)}, "
            f"stride={tuple(self.stride)}, padding={tuple(self.padding)}, ceil_mode={self.ceil_mode}"
            + (f", extra_padding={tuple(self.extra_padding)}" if any(self.extra_padding) else "")
        )
