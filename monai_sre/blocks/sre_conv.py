"""Symmetric rotation-equivariant convolution for 1D, 2D and 3D.

Reference: Y. Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical
Image Classification", ISBI 2025.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.utils import ensure_tuple_rep

from monai_sre.blocks.sre_even_conv import BasisModule, plain_conv
from monai_sre.blocks.timing import time_calls
from monai_sre.layers.band_conv import band_conv_costs, band_conv_nd, conv_nd
from monai_sre.layers.bands import BASIS_NORMS, band_basis, band_sizes, expand_kernel

__all__ = ["SREConv", "SREConvTranspose", "SREConvBase", "ALGORITHMS", "set_algorithm"]

logger = logging.getLogger(__name__)

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = ("auto", "dense", "bands", "benchmark")
# forward paths: index into this tuple (TorchScript keeps the int)
_PATHS = ("dense", "filter_mix", "mix_filter")
# band multiply-adds run slower than the dense convolution's, per MAC (measured on CPU, oneDNN)
_BAND_MAC_PENALTY = 3.0
# "benchmark" times every path whose modelled cost is within this factor of the cheapest
_MEASURE_WINDOW = 3.0
# below this many dense multiply-adds per forward, "auto" and "benchmark" keep the dense path
_SMALL_WORK = 2e7
# a band path must beat the dense reference by this factor to be chosen by "benchmark"
_DENSE_PREFERENCE = 0.95
# a band path writes and reads back an intermediate of (channels x bands) maps; once that outgrows the caches
# (this many bytes for the whole batch), each of its values costs about this many dense multiply-adds more
# (fitted on CPU, oneDNN, one thread: 3x3x3 layers of 16-128 channels at 8^3-96^3)
_SPILL_BYTES = 8 * 2**20
_SPILL_MACS = 300.0
# a dense convolution with one input channel per group runs this much slower per multiply-add (oneDNN vectorises
# over input channels; a 1-channel 7x7x7 stem reaches about 2/3 of its usual rate)
_THIN_INPUT_PENALTY = 1.5


def set_algorithm(module: nn.Module, algorithm: str) -> int:
    """Set ``algorithm`` (one of :data:`ALGORITHMS`) on every :class:`SREConv` inside ``module``.

    ``set_algorithm(model, "benchmark")`` is the opt-in to timing-based tuning for a whole network, in the spirit of
    ``torch.backends.cudnn.benchmark``: faster where the cost model misjudges the machine, but the chosen paths, and
    so the rounding, may then differ between runs.

    Returns:
        The number of layers changed.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    count = 0
    for m in module.modules():
        if isinstance(m, SREConv):
            m.set_algorithm(algorithm)
            count += 1
    return count


def _timed(fn, device: torch.device, reps: int = 3) -> float:
    # best of ``reps`` after one warm-up call; CPU: process time, which a shared machine disturbs far less
    return min(time_calls({"fn": fn}, device, warmup=1, repeats=reps, clock="cpu")["fn"])


def _tuple(name: str, value, spatial_dims: int) -> tuple[int, ...]:
    try:
        out = ensure_tuple_rep(value, spatial_dims)
    except ValueError as e:
        raise ValueError(f"{name} must be an int or a sequence of {spatial_dims} ints, got {value!r}.") from e
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise TypeError(f"{name} must hold ints, got {value!r}.")
    return tuple(int(v) for v in out)


class SREConvBase(BasisModule):
    """Shared machinery of :class:`SREConv` and :class:`SREConvTranspose`.

    Holds the band weights, the fixed band basis (a non-persistent buffer) and the expanded-kernel
    cache.

    Parametrisation (``basis_norm``). The kernel is ``K = sum_b W_b M_b``. With ``"mean"`` (default)
    ``M_b`` is the indicator of band ``b`` divided by its tap count ``n_b``, so ``W_b`` multiplies the
    *average* of the input over the band: the layer is ``B`` pointwise convolutions of ``B`` band
    averages, and PyTorch's usual init (``fan_in = in_channels / groups * num_bands``) and learning
    rates apply. With ``"none"`` (the original SRE-Conv) ``M_b`` is the 0/1 indicator: the gradient of
    ``W_b`` sums ``n_b`` taps, so SGD moves the outer bands up to ~100x faster than the centre and the
    initial output variance grows with the band sizes; see ``docs/design.md``. ``"orthonormal"``
    (``M_b / sqrt(n_b)``) lies in between. All three span the same kernels, with the same parameter
    count, equivariance and export; only training dynamics differ. A state dict saved by the
    original parametrisation (module version 1) is rescaled on load, and one saved with another
    ``basis_norm`` (recorded in the state dict's metadata) is converted, so the loaded module computes
    the same function.

    Kernel cache. On the CPU, a forward that needs no autograd graph (``torch.no_grad``,
    ``torch.inference_mode`` or frozen weights) reuses the expanded kernel while the band weights are
    those it was expanded from: the cache (a plain attribute, never in the ``state_dict``) keeps a copy
    of them and compares it with the live weights, element by element, on every such forward, so any
    change is seen, including writes through ``.data`` (``conv.weight.data.mul_(2)``) that bypass the
    version counter, as weight-averaging and pruning code makes them. The comparison reads
    ``out * in / groups * num_bands`` numbers, far fewer than the convolution it guards (measured on one
    CPU thread: 5-90 microseconds against 0.1-180 ms per forward, at most 0.7% of a batched forward and
    about 5% for one 28x28 image through a 16-channel layer). On a GPU the comparison would wait for the
    device, so there the kernel is expanded on every forward (one small asynchronous kernel). A
    forward that needs gradients always expands the kernel from the current weights.
    """

    transposed: bool = False
    # version 2: ``basis_norm`` (stored in the state-dict metadata); version 1 used indicator masks
    _version = 2
    __constants__ = ["spatial_dims", "in_channels", "out_channels", "groups", "padding_mode"]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        *,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int | str = 0,
        dilation: Sequence[int] | int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        num_bands: int | None = None,
        spacing: Sequence[float] | float | None = None,
        circular: bool = False,
        output_padding: Sequence[int] | int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        basis_norm: str = "mean",
        profile: str = "hard",
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible by groups ({groups})."
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}.")
        self._layer_name = type(self).__name__
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple("kernel_size", kernel_size, spatial_dims)
        self.stride = _tuple("stride", stride, spatial_dims)
        self.dilation = _tuple("dilation", dilation, spatial_dims)
        self.output_padding = _tuple("output_padding", output_padding, spatial_dims)
        self.groups = groups
        self.padding_mode = padding_mode
        self.circular = bool(circular)
        if spacing is not None and not isinstance(spacing, (int, float)) and len(spacing) != spatial_dims:
            raise ValueError(f"spacing must be a number or {spatial_dims} numbers (one per axis), got {spacing!r}.")
        self.spacing = None if spacing is None else tuple(float(s) for s in ensure_tuple_rep(spacing, spatial_dims))
        if any(s < 1 for s in self.stride) or any(d < 1 for d in self.dilation):
            raise ValueError(f"stride and dilation must be >= 1, got stride={self.stride}, dilation={self.dilation}.")
        self.padding = padding
        self._padding = self._resolve_padding(padding)
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"SREConvTranspose supports only padding_mode='zeros', got {padding_mode!r}.")
        # F.pad wants (last-axis-left, last-axis-right, ...) pairs
        self._pad_pairs = [p for p in reversed(self._padding) for _ in range(2)]
        # what the convolution itself pads with: nothing when F.pad did it already
        self._conv_padding = list(self._padding) if padding_mode == "zeros" else [0] * spatial_dims
        # lists, as the convolution ops (and TorchScript) take them
        self._stride_list = list(self.stride)
        self._dilation_list = list(self.dilation)
        self._output_padding_list = list(self.output_padding)

        if basis_norm not in BASIS_NORMS:
            raise ValueError(f"basis_norm must be one of {BASIS_NORMS}, got {basis_norm!r}.")
        self.basis_norm = basis_norm
        self.profile = profile
        basis = band_basis(
            self.kernel_size, num_bands, self.spacing, self.circular, dtype=dtype or torch.get_default_dtype(),
            device=device, norm=basis_norm, profile=profile,
        )
        self.num_bands = int(basis.shape[0])
        self.register_buffer("basis", basis, persistent=False)
        factory = {"device": device, "dtype": dtype}
        if self.transposed:
            shape = (in_channels, out_channels // groups, self.num_bands)
        else:
            shape = (out_channels, in_channels // groups, self.num_bands)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self._kernel_cache: torch.Tensor | None = None
        #: the band weights the cached kernel was expanded from
        self._cache_weight: torch.Tensor | None = None
        self._cache_key: tuple = ()
        self.reset_parameters()

    def _resolve_padding(self, padding) -> tuple[int, ...]:
        if isinstance(padding, str):
            if padding == "valid":
                return (0,) * self.spatial_dims
            if padding == "same":
                if self.transposed:
                    raise ValueError("padding='same' is not supported by SREConvTranspose; give ints.")
                if any(s != 1 for s in self.stride):
                    raise ValueError(f"padding='same' needs stride 1 on every axis, got stride={self.stride}.")
                return tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation))
            raise ValueError(f"padding must be an int, a sequence of ints, 'same' or 'valid', got {padding!r}.")
        out = _tuple("padding", padding, self.spatial_dims)
        if any(p < 0 for p in out):
            raise ValueError(f"padding must be non-negative, got {padding!r}.")
        return out

    @property
    def active_taps(self) -> int:
        """Number of kernel taps that belong to a band (all of them unless ``circular``)."""
        return int(band_sizes(self.basis).sum().item())

    def reset_parameters(self) -> None:
        """Uniform init with PyTorch's default bound ``1/sqrt(fan_in)``.

        ``fan_in`` is the weight's own, ``in_channels / groups * num_bands``, for the normalised bases;
        for ``basis_norm="none"`` it counts the active taps, as the original SRE-Conv does.
        """
        taps = max(self.active_taps, 1) if self.basis_norm == "none" else self.num_bands
        bound = 1.0 / math.sqrt(self.weight.shape[1] * taps)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
        self.invalidate_cache()

    @torch.jit.unused
    def _band_scale(self, basis_norm: str) -> torch.Tensor:
        """Per-band factor ``f_b`` with ``M_b = m_b / f_b`` for a given ``basis_norm``, where ``m_b`` is the band's
        unnormalised mask (the 0/1 indicator for the hard profile)."""
        raw = band_basis(self.kernel_size, self.num_bands, self.spacing, self.circular, dtype=torch.float64,
                         profile=self.profile).flatten(1)
        return {"none": torch.ones(raw.shape[0], dtype=torch.float64), "orthonormal": raw.square().sum(1).sqrt(),
                "mean": raw.sum(1)}[basis_norm]

    @torch.jit.unused
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None and prefix[:-1] in metadata:
            metadata[prefix[:-1]]["basis_norm"] = self.basis_norm

    @torch.jit.unused
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        key = prefix + "weight"
        version = local_metadata.get("version")
        saved_norm = local_metadata.get("basis_norm", "none" if version == 1 else self.basis_norm)
        if saved_norm not in BASIS_NORMS:
            error_msgs.append(f"{key}: unknown basis_norm {saved_norm!r} in the state-dict metadata, expected one of {BASIS_NORMS}.")
        elif saved_norm != self.basis_norm and key in state_dict:
            w = state_dict[key]
            if w.shape == self.weight.shape:
                # same kernel K = W_saved / f_saved = W_new / f_new
                ratio = (self._band_scale(self.basis_norm) / self._band_scale(saved_norm)).to(w.dtype)
                state_dict = dict(state_dict)
                state_dict[key] = w * ratio.to(w.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        self.invalidate_cache()

    def invalidate_cache(self) -> None:
        """Drop the cached kernel; the next forward rebuilds it. Never needed for correctness."""
        self._kernel_cache = None
        self._cache_weight = None
        self._cache_key = ()

    def expanded_kernel(self) -> torch.Tensor:
        """The full kernel, ``(out, in/groups, *k)`` (transposed: ``(in, out/groups, *k)``), from the current weights."""
        return expand_kernel(self.weight, self.basis.to(self.weight.dtype))

    @torch.jit.unused
    def _cached_kernel(self) -> torch.Tensor:
        w = self.weight
        if (torch.is_grad_enabled() and w.requires_grad) or w.device.type != "cpu":
            # off the CPU, checking the cache would wait for the device; the expansion it saves is one small kernel
            return self.expanded_kernel()
        key = (id(w), w.data_ptr(), w._version, w.dtype, w.device, self.basis.data_ptr(), self.basis._version)
        # the version counter misses writes through ``.data``: compare the band weights themselves as well
        if self._kernel_cache is None or key != self._cache_key or not torch.equal(w, self._cache_weight):
            with torch.no_grad():
                self._kernel_cache = self.expanded_kernel()
                self._cache_weight = w.detach().clone()
            self._cache_key = key
        return self._kernel_cache

    def kernel(self) -> torch.Tensor:
        """The kernel that forward uses: cached when no gradient is needed, else expanded."""
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            return self.expanded_kernel()
        return self._cached_kernel()

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"{self._layer_name} with spatial_dims={self.spatial_dims} expects input (B, C, *spatial) "
                f"with {self.spatial_dims + 2} dims, got shape {list(x.shape)}."
            )
        # a trace would record the comparison, with a warning per layer; the convolution checks the channels too
        if not torch.jit.is_tracing() and x.shape[1] != self.in_channels:
            raise ValueError(f"{self._layer_name} expects {self.in_channels} input channels, got {x.shape[1]}.")

    def extra_repr(self) -> str:
        s = (
            f"spatial_dims={self.spatial_dims}, {self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, num_bands={self.num_bands}, stride={self.stride}"
        )
        if any(p != 0 for p in self._padding) or isinstance(self.padding, str):
            s += f", padding={self.padding!r}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.transposed and any(p != 0 for p in self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.spacing is not None:
            s += f", spacing={self.spacing}"
        if self.circular:
            s += ", circular=True"
        if self.profile != "hard":
            s += f", profile={self.profile!r}"
        return s

    def plain_kwargs(self) -> dict:
        """Constructor arguments of the equivalent ``torch.nn.ConvNd`` / ``ConvTransposeNd``."""
        kw = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self._padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias is not None,
            "device": self.weight.device,
            "dtype": self.weight.dtype,
        }
        if self.transposed:
            kw["output_padding"] = self.output_padding
        else:
            kw["padding_mode"] = self.padding_mode
        return kw

    def to_plain(self) -> nn.Module:
        """A plain ``torch.nn.ConvNd`` (or ``ConvTransposeNd``) with the expanded kernel: same outputs."""
        kwargs = self.plain_kwargs()
        for key in ("bias", "device", "dtype"):
            kwargs.pop(key)
        return plain_conv(self, self.expanded_kernel(), **kwargs)


class SREConv(SREConvBase):
    """N-D symmetric rotation-equivariant convolution (SRE-Conv; Du et al., ISBI 2025).

    The kernel is ``K[o, i, t] = W[o, i, band(t)]``: one trainable weight per concentric band (ring
    in 2D, shell in 3D, pair of taps in 1D) around the kernel centre (see
    :func:`monai_sre.layers.band_index`). ``K`` is invariant under every symmetry of the voxel grid
    (the 8 of the square, the 48 of the cube), so with stride 1 and symmetric padding the layer is
    *exactly* equivariant to 90-degree rotations and flips of the input. Other angles need
    interpolation of the input and are equivariant only approximately.

    Parameters: ``out * in / groups * num_bands`` (+ ``out`` bias) instead of ``out * in / groups * prod(k)``.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd size, int or one per axis.
        stride: as in ``torch.nn.ConvNd``. A stride above 1 breaks equivariance: prefer pooling
            followed by a stride-1 convolution.
        padding: int, one int per axis, ``"same"`` or ``"valid"``.
        dilation: as in ``torch.nn.ConvNd``.
        groups: as in ``torch.nn.ConvNd``.
        bias: add a learnable bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        num_bands: bands per kernel; default ``max(kernel_size) // 2 + 1``.
        spacing: voxel spacing per axis; bands then follow physical distance.
        circular: drop the box corners beyond the outermost band (disc / ball support).
        device: parameter device.
        dtype: parameter dtype.
        basis_norm: ``"mean"`` (default; each band weight multiplies the band's average, so the layer
            trains like a standard convolution under SGD), ``"orthonormal"`` or ``"none"`` (the original
            SRE-Conv's 0/1 band masks). Same function class; see :class:`SREConvBase`.
        profile: how a tap belongs to the bands (:data:`monai_sre.layers.bands.PROFILES`): ``"hard"`` (default, the
            original SRE-Conv: each tap in the band its distance rounds to), or the smoother functions of the distance
            ``"partial"`` (supersampled partial volume), ``"linear"`` (interpolated between band radii) and
            ``"gaussian"`` (Gaussian rings, as in GMR-Conv). Every profile keeps every grid symmetry exactly;
            the smooth ones lower the error at off-grid angles of large kernels (``docs/design.md``).
        algorithm: how forward computes the convolution, all giving the same result up to rounding:
            ``"dense"`` expands the full kernel and runs one convolution (the expanded kernel is cached
            when no gradient is needed); ``"bands"`` never builds it: it filters with the fixed band
            masks and mixes with a 1x1 convolution, in the cheaper order by
            :func:`monai_sre.layers.band_conv_costs` (see :mod:`monai_sre.layers.band_conv`), which is
            much faster for wide layers and large kernels; ``"auto"`` (default) picks one of these
            paths by the cost model and the input size alone, so every process and run makes the same
            choice; ``"benchmark"`` (opt-in, like ``torch.backends.cudnn.benchmark``) times the
            plausible paths once per input shape, device, dtype and grad mode and keeps the fastest
            for this layer. Under TorchScript the path is fixed at construction by the cost model.

    Example::

        >>> conv = SREConv(3, 4, 8, kernel_size=5, padding="same")
        >>> conv.weight.shape
        torch.Size([8, 4, 3])
        >>> conv(torch.randn(2, 4, 16, 16, 16)).shape
        torch.Size([2, 8, 16, 16, 16])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int | str = 0,
        dilation: Sequence[int] | int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        num_bands: int | None = None,
        spacing: Sequence[float] | float | None = None,
        circular: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        algorithm: str = "auto",
        basis_norm: str = "mean",
        profile: str = "hard",
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode, num_bands=num_bands,
            spacing=spacing, circular=circular, device=device, dtype=dtype, basis_norm=basis_norm, profile=profile,
        )
        self.set_algorithm(algorithm)

    @torch.jit.unused
    def set_algorithm(self, algorithm: str) -> None:
        """Switch to another of :data:`ALGORITHMS`; outputs stay the same up to rounding."""
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
        costs = band_conv_costs(
            self.in_channels, self.out_channels, self.kernel_size, self.num_bands, self.stride, self.groups
        )
        self._band_path = 1 if costs["filter_mix"] <= costs["mix_filter"] else 2
        #: modelled cost of each path per output voxel, band multiply-adds weighted as the slower kind
        thin = _THIN_INPUT_PENALTY if self.in_channels // self.groups == 1 else 1.0
        self._modelled = {p: c * (thin if p == "dense" else _BAND_MAC_PENALTY) for p, c in costs.items()}
        if algorithm == "dense":
            self._static_path = 0
        elif algorithm == "bands":
            self._static_path = self._band_path
        else:
            self._static_path = _PATHS.index(min(self._modelled, key=self._modelled.get))
        self.algorithm = algorithm
        step = math.prod(self.stride)
        #: per band path: (intermediate values per output voxel, intermediate values per input voxel of the batch)
        self._spill = {
            "filter_mix": (self.in_channels * self.num_bands, self.in_channels * self.num_bands / step),
            "mix_filter": (self.out_channels * self.num_bands * step, self.out_channels * self.num_bands),
        }
        # "auto": the choice per byte count of one input channel over the batch (all the cost model reads of the
        # input); "benchmark": the timed choice per input signature
        self._auto_paths: dict[int, int] = {}
        self._benchmarked: dict[tuple, int] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pad_pairs, mode=self.padding_mode)
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            path = self._static_path
        else:
            path = self._select_path(x)
        return self._forward_path(x, path)

    def _forward_path(self, x: torch.Tensor, path: int) -> torch.Tensor:
        """Run one path on an already padded input: 0 dense, 1 bands filter-then-mix, 2 bands mix-then-filter."""
        if path == 0:
            return conv_nd(
                x, self.kernel(), self.bias, stride=self._stride_list, padding=self._conv_padding,
                dilation=self._dilation_list, groups=self.groups,
            )
        return band_conv_nd(
            x, self.weight, self.basis, self.bias, stride=self._stride_list, padding=self._conv_padding,
            dilation=self._dilation_list, groups=self.groups, order="filter_mix" if path == 1 else "mix_filter",
        )

    @torch.jit.unused
    def path_for(self, x: torch.Tensor) -> str:
        """The path (``"dense"``, ``"filter_mix"`` or ``"mix_filter"``) that forward takes for an input like ``x``
        in the current grad mode; with ``"benchmark"`` this may time the paths, as the first such forward would."""
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pad_pairs, mode=self.padding_mode)
        return _PATHS[self._select_path(x)]

    @torch.jit.unused
    def _select_path(self, x: torch.Tensor) -> int:
        if self.algorithm in ("dense", "bands"):
            return self._static_path
        voxels = x.numel() / (x.shape[1] * math.prod(self.stride))
        if self._modelled["dense"] * voxels < _SMALL_WORK:  # tiny: keep the reference path
            return 0
        if self.algorithm == "auto":
            return self._auto_path(x)
        training = torch.is_grad_enabled() and (self.weight.requires_grad or x.requires_grad)
        key = (tuple(x.shape), x.device, x.dtype, x.is_contiguous(), training, x.requires_grad)
        if key not in self._benchmarked:
            self._benchmarked[key] = self._benchmark(x, training)
        return self._benchmarked[key]

    @torch.jit.unused
    def _auto_path(self, x: torch.Tensor) -> int:
        """The cheapest path by the cost model for this input: multiply-adds, plus the memory traffic of a band
        path's intermediate when it does not fit in the caches (large volumes with few channels run dense)."""
        channel_bytes = x.numel() // x.shape[1] * x.element_size()
        if channel_bytes not in self._auto_paths:
            costs = dict(self._modelled)
            for path, (per_output_voxel, per_input_voxel) in self._spill.items():
                if per_input_voxel * channel_bytes > _SPILL_BYTES:
                    costs[path] += _SPILL_MACS * per_output_voxel
            self._auto_paths[channel_bytes] = _PATHS.index(min(costs, key=costs.get))
        return self._auto_paths[channel_bytes]

    @torch.jit.unused
    def _benchmark(self, x: torch.Tensor, training: bool) -> int:
        """Time the paths whose modelled cost is within ``_MEASURE_WINDOW`` of the cheapest; return the fastest."""
        cheapest = min(self._modelled.values())
        candidates = [_PATHS.index(p) for p, c in self._modelled.items() if c <= _MEASURE_WINDOW * cheapest]
        if len(candidates) == 1:
            return candidates[0]
        needs_x = x.requires_grad
        x = x.detach()

        def make_run(path: int):
            def run():
                if training:
                    with torch.enable_grad():
                        xi = x.detach().requires_grad_(needs_x)
                        y = self._forward_path(xi, path)
                        inputs = [t for t in (xi, self.weight, self.bias) if t is not None and t.requires_grad]
                        torch.autograd.grad(y, inputs, torch.ones_like(y))
                else:
                    with torch.no_grad():
                        self._forward_path(x, path)

            return run

        times = {path: _timed(make_run(path), x.device) for path in candidates}
        if 0 in times:
            times[0] *= _DENSE_PREFERENCE
        best = min(times, key=times.get)
        logger.debug(
            "SREConv benchmark: %s for input %s (%s): %s", _PATHS[best], list(x.shape), "train" if training else "infer",
            {_PATHS[p]: t for p, t in times.items()},
        )
        return best


class SREConvTranspose(SREConvBase):
    """N-D transposed SRE convolution, for decoders and segmentation heads.

    The weight has shape ``(in, out / groups, num_bands)``, mirroring ``torch.nn.ConvTransposeNd``.
    With a symmetric kernel the layer commutes with every grid symmetry whenever the output grid
    is symmetric (``stride=1``, or ``2 * padding == kernel_size - stride + output_padding``
    per axis after dilation). Arguments as in :class:`SREConv`, plus ``output_padding``; only
    ``padding_mode="zeros"`` and integer padding are supported, as in PyTorch. It always uses the
    dense path (no ``algorithm`` argument).

    Example::

        >>> up = SREConvTranspose(2, 8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)
        >>> up(torch.randn(1, 8, 16, 16)).shape
        torch.Size([1, 4, 32, 32])
    """

    transposed = True

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int = 0,
        output_padding: Sequence[int] | int = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Sequence[int] | int = 1,
        padding_mode: str = "zeros",
        num_bands: int | None = None,
        spacing: Sequence[float] | float | None = None,
        circular: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        basis_norm: str = "mean",
        profile: str = "hard",
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode, num_bands=num_bands,
            spacing=spacing, circular=circular, output_padding=output_padding, device=device, dtype=dtype,
            basis_norm=basis_norm, profile=profile,
        )
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got output_padding={self.output_padding}, "
                f"stride={self.stride}, dilation={self.dilation}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return conv_nd(
            x, self.kernel(), self.bias, stride=self._stride_list, padding=self._conv_padding,
            dilation=self._dilation_list, groups=self.groups, output_padding=self._output_padding_list,
        )
