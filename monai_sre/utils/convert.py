"""Model surgery: plain convolutions to SRE convolutions.

:func:`convert_to_sre` turns a network into one that commutes exactly with the grid symmetries
(90-degree rotations and flips: 8 in 2D, 48 in 3D) at every input size: kernels become
symmetric, and every down- and upsampling is laid out symmetrically on the grid. The modules it
does not rebuild are judged by :func:`monai_sre.utils.audit.audit`; what no SRE layer can make
equivariant is refused by name (:class:`SREConversionError`) or, with ``strict=False``, reported
(:class:`ConversionReport`). :func:`monai_sre.utils.export.export_to_conv` goes back to plain PyTorch.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.nets.basic_unet import UpCat

from monai_sre.blocks.sre_conv import SREConv, SREConvBase, SREConvTranspose
from monai_sre.blocks.sre_even_conv import SREEvenConv
from monai_sre.blocks.sre_resample import SREPool
from monai_sre.utils.audit import WALK, audit

__all__ = ["ConversionReport", "SREConversionError", "SREConversionWarning", "convert_to_sre"]

logger = logging.getLogger(__name__)

_CONV_DIMS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_TRANSPOSED_DIMS = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}
# pooling type -> (spatial dims, mode)
_POOLS = {nn.MaxPool1d: (1, "max"), nn.MaxPool2d: (2, "max"), nn.MaxPool3d: (3, "max"),
          nn.AvgPool1d: (1, "avg"), nn.AvgPool2d: (2, "avg"), nn.AvgPool3d: (3, "avg")}
_PADS = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d,
         nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d, nn.ZeroPad1d,
         nn.ZeroPad2d, nn.ZeroPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d)
_ZERO_PADS = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)
_NOT_SYMMETRIC = (nn.PixelShuffle, nn.PixelUnshuffle, nn.Unfold, nn.Fold, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)


class SREConversionWarning(UserWarning):
    """``convert_to_sre(strict=False)`` left modules that are not equivariant (one warning per call)."""


class SREConversionError(ValueError):
    """:func:`convert_to_sre` met modules that no SRE layer can make equivariant (``strict=True``).

    Attributes:
        problems: ``[(qualified_name, reason), ...]``, one per module (or parameter) in the order met; the names
            are those of ``model.named_modules()`` / ``named_parameters()`` (the model's class name for the root).
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {name}: {reason}" for name, reason in self.problems)
        super().__init__(
            f"convert_to_sre: {len(self.problems)} module(s) cannot be made equivariant to the grid symmetries "
            f"(strict=False converts the rest, keeps these as they are and reports them):\n{lines}"
        )


class _SymmetricUpCat(nn.Module):
    """MONAI's ``UpCat`` (BasicUNet) with its one-sided replicate padding (odd sizes) replaced by a symmetric resize.

    Takes over the ``upsample`` and ``convs`` submodules of the given ``UpCat`` (so the state-dict keys stay). The
    upsampled features are resampled to the skip features' size with ``align_corners=True`` linear interpolation,
    which maps the grid onto itself under every flip, and is the identity when the sizes already agree. The
    forward has no branch on a size, so ``torch.fx`` traces it (:func:`~monai_sre.utils.export.export_to_conv`).
    """

    def __init__(self, upcat: UpCat) -> None:
        super().__init__()
        self.upsample = upcat.upsample
        self.convs = upcat.convs
        self.is_pad = upcat.is_pad
        dims = next(m.weight.dim() - 2 for m in upcat.convs.modules() if isinstance(m, tuple(_CONV_DIMS)))
        self.mode = ("linear", "bilinear", "trilinear")[dims - 1]
        self.train(upcat.training)

    def forward(self, x: torch.Tensor, x_e: torch.Tensor | None):
        x_0 = self.upsample(x)
        if x_e is None:
            return self.convs(x_0)
        if self.is_pad:
            x_0 = F.interpolate(x_0, size=x_e.shape[2:], mode=self.mode, align_corners=True)
        return self.convs(torch.cat([x_e, x_0], dim=1))


def _pad_sides(m: nn.Module, dims: int) -> list[tuple[int, int]]:
    """Per spatial axis ``(left, right)`` of a padding layer (PyTorch lists the last axis first)."""
    p = list(m.padding)
    return [(p[2 * (dims - 1 - i)], p[2 * (dims - 1 - i) + 1]) for i in range(dims)]


def _pad_dims(m: nn.Module) -> int:
    return len(m.padding) // 2


def _partner(children: dict[str, nn.Module], order: list[str], name: str) -> str | None:
    """The convolution that a padding layer feeds: ``<conv>_padding`` (MONAI's EfficientNet) or the next sibling."""
    if name.endswith("_padding") and name[: -len("_padding")] in children:
        return name[: -len("_padding")]
    if isinstance(children.get("__parent__"), nn.Sequential):
        i = order.index(name)
        if i + 1 < len(order):
            return order[i + 1]
    return None


def _isotropic(*geometry) -> bool:
    return all(len(set(g)) == 1 for g in geometry)


@dataclass
class ConversionReport:
    """What one :func:`convert_to_sre` call did (``return_report=True``).

    Attributes:
        replaced: one line per rebuilt module, ``"name: old -> new"``.
        non_equivariant: ``[(name, reason), ...]`` for every module (or tensor) left as it was because no SRE
            layer can make it equivariant; empty when the converted network is exactly equivariant as far as its
            modules go.
    """

    replaced: list[str] = field(default_factory=list)
    non_equivariant: list[tuple[str, str]] = field(default_factory=list)

    @property
    def equivariant(self) -> bool:
        """``True`` when no module was left non-equivariant."""
        return not self.non_equivariant


def convert_to_sre(
    model: nn.Module,
    num_bands: int | None = None,
    spacing=None,
    circular: bool = False,
    pool: str = "avg",
    inplace: bool = False,
    strict: bool = True,
    return_report: bool = False,
    **sre_kwargs,
) -> nn.Module | tuple[nn.Module, ConversionReport]:
    """Rebuild a PyTorch / MONAI network so that it commutes exactly with the grid symmetries, or say why not.

    The grid symmetries are the 90-degree rotations and flips of the voxel grid (8 in 2D, 48 in 3D). Every module
    is accounted for (:mod:`monai_sre.utils.audit`): it is equivariant as it is, made equivariant here, or it
    cannot be made equivariant (attention over patch tokens, position embeddings, ``Linear`` over flattened
    positions, patch embeddings and patch merging, pixel shuffle, anisotropic geometry, one-sided padding, modules
    of unknown types holding their own multi-axis tensors). With ``strict`` the last kind raises
    :class:`SREConversionError` naming each by its qualified name with the reason; otherwise they are kept as they
    are, one warning lists them, and ``return_report=True`` returns them.

    Kernels:

    * ``ConvNd`` with an odd kernel larger than 1 becomes :class:`SREConv` (same channels, groups,
      dilation, padding, padding mode and bias); an even kernel becomes :class:`SREEvenConv`.
      ``1x1`` convolutions are symmetric already and stay.
    * ``ConvTransposeNd`` becomes :class:`SREConvTranspose` (odd kernel) or a transposed
      :class:`SREEvenConv` (even kernel). ``output_padding`` adds samples on one side only; it is
      absorbed by a kernel larger by ``output_padding`` (``3, stride 2, padding 1, output_padding 1``
      becomes ``4, stride 2, padding 1``): same output size, symmetric placement.

    Down- and upsampling (output sizes always equal the original's, for every input size):

    * A strided convolution with "same" padding becomes ``Sequential(SREPool(stride), conv)``
      (``pool``: average or max over symmetric windows, then the convolution at stride 1). Any other
      strided convolution becomes ``Sequential(conv at stride 1, symmetric subsampling)``.
    * ``MaxPoolNd`` / ``AvgPoolNd`` become :class:`SREPool` with the same size rule.
    * An asymmetric padding layer (MONAI's EfficientNet pads TensorFlow-style, ``(0, 1)``) is
      merged into the convolution it feeds (sibling ``<conv>_padding``, or the next module of an
      ``nn.Sequential``), which then pads symmetrically and subsamples symmetrically.
    * MONAI's ``UpCat`` (BasicUNet) pads its upsampled features on one side at odd sizes; it
      resizes them symmetrically instead.

    What is guaranteed: when the conversion raises nothing, every *module* of the result commutes with the grid
    symmetries, so the network does too unless code inside some ``forward`` breaks it (a reshape of positions
    into features, a fixed coordinate grid, a one-sided ``F.pad``): such code is not a module and cannot be seen.
    Every MONAI network class is checked this way in the test suite (``docs/conversion.md`` lists the outcomes);
    check others with :func:`~monai_sre.utils.equivariance.equivariance_error`.

    Weights are freshly initialised (band weights cannot represent an arbitrary kernel). Every
    change is logged at INFO level on ``monai_sre.utils.convert``.

    Args:
        model: the network; copied first unless ``inplace``.
        num_bands, spacing, circular: passed to every :class:`SREConv` / :class:`SREConvTranspose`.
        pool: ``"avg"`` or ``"max"``, the window reduction in front of "same"-padded strided convolutions.
        inplace: modify ``model`` itself.
        strict: raise :class:`SREConversionError` naming every module that cannot be made equivariant. With
            ``False`` those are left as they are (one ``SREConversionWarning`` names them) and the rest is converted.
        return_report: return ``(model, ConversionReport)`` instead of the model alone.
        sre_kwargs: further keyword arguments for the SRE layers.

    Returns:
        The converted model, or ``(model, report)`` with ``return_report``.

    Raises:
        ValueError: bad ``pool``.
        TypeError: ``strict`` or ``return_report`` is not a bool.
        SREConversionError: ``strict`` and some module cannot be made equivariant.

    Example::

        >>> net = convert_to_sre(monai.networks.nets.UNet(3, 1, 2, channels=(8, 16, 32), strides=(2, 2)))
        >>> equivariance_error(net.eval(), torch.randn(1, 1, 16, 16, 16)) < 1e-5
        True
        >>> vit, report = convert_to_sre(UNETR(1, 2, img_size=32, feature_size=8, hidden_size=96, mlp_dim=192,
        ...                                    num_heads=4), strict=False, return_report=True)
        >>> report.non_equivariant[0]
        ('vit.patch_embedding.patch_embeddings', 'patch embedding: cuts the grid into patches ...')
    """
    if pool not in ("avg", "max"):
        raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}.")
    for name, flag in (("strict", strict), ("return_report", return_report)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}.")
    target = model if inplace else copy.deepcopy(model)
    run = _Conversion(options={"num_bands": num_bands, "spacing": spacing, "circular": circular, **sre_kwargs}, pool=pool)
    root = run.visit(type(target).__name__, target, None, root=True)
    if root is not None:
        target = root
    if run.problems:
        if strict:
            raise SREConversionError(run.problems)
        names = ", ".join(name for name, _ in run.problems)
        warnings.warn(f"convert_to_sre(strict=False): {len(run.problems)} module(s) stay non-equivariant: {names}.",
                      SREConversionWarning, stacklevel=2)
    for line in run.changed:
        logger.info("convert_to_sre: %s", line)
    logger.info("convert_to_sre: replaced %d layer(s).", len(run.changed))
    if return_report:
        return target, ConversionReport(list(run.changed), list(run.problems))
    return target


@dataclass
class _Conversion:
    """What one :func:`convert_to_sre` call carries through the module tree."""

    options: dict
    pool: str
    changed: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: convolution name -> per-axis total padding of the asymmetric padding layer merged into it
    merged: dict[str, list[int]] = field(default_factory=dict)

    def convert(self, name: str, m: nn.Module) -> tuple[bool, nn.Module | None]:
        """``(handled, replacement)``: whether a converter or check owns ``m``, and what replaces it (``None``: kept)."""
        converter = _CONVERTERS.get(type(m)) or next((_CHECKS[c] for c in type(m).__mro__ if c in _CHECKS), None)
        return (False, None) if converter is None else (True, converter(self, name, m))

    def visit(self, name: str, m: nn.Module, previous: nn.Module | None, root: bool = False) -> nn.Module | None:
        """Convert, or audit and walk into, one module; returns its replacement or ``None`` to keep it."""
        handled, new = self.convert(name, m)
        if handled:
            return new
        kind, problems = audit("" if root else name, m, previous)
        self.problems += [(key or name, reason) for key, reason in problems]  # the root is named by its type
        if kind == WALK:
            self.walk(m, "" if root else name)
        return None

    def walk(self, module: nn.Module, prefix: str) -> None:
        """Replace the children of ``module`` in place, depth first."""
        for child_name, new in self._merge_pads(module, prefix).items():
            setattr(module, child_name, new)
        previous = None
        for child_name, child in list(module.named_children()):
            new = self.visit(f"{prefix}.{child_name}" if prefix else child_name, child, previous)
            if new is not None:
                setattr(module, child_name, new)
            previous = child

    def _merge_pads(self, parent: nn.Module, prefix: str) -> dict[str, nn.Module]:
        """Merge asymmetric padding layers of ``parent`` into their convolutions; returns replacements."""
        children = dict(parent.named_children())
        order = list(children)
        lookup = {**children, "__parent__": parent}
        out: dict[str, nn.Module] = {}
        for name, m in children.items():
            if not isinstance(m, _PADS):
                continue
            full = f"{prefix}.{name}" if prefix else name
            sides = _pad_sides(m, _pad_dims(m))
            if all(left == right for left, right in sides):
                continue
            conv_name = _partner(lookup, order, name)
            conv = children.get(conv_name) if conv_name else None
            zero = isinstance(m, _ZERO_PADS) and float(getattr(m, "value", 0.0)) == 0.0
            if conv is None or type(conv) not in _CONV_DIMS or conv.padding_mode != "zeros" or not zero:
                self.problems.append((full, f"asymmetric padding {sides} (left, right per axis) that no "
                                            f"zero-padded convolution follows to absorb it"))
                continue
            self.merged[f"{prefix}.{conv_name}" if prefix else conv_name] = [left + right for left, right in sides]
            out[name] = nn.Identity()
            self.changed.append(f"{full}: {type(m).__name__}{sides} -> merged into {conv_name}")
        return out


def _convert_conv(run: _Conversion, name: str, m: nn.Module) -> nn.Module | None:
    dims = _CONV_DIMS[type(m)]
    k, s, d = tuple(m.kernel_size), tuple(m.stride), tuple(m.dilation)
    if isinstance(m.padding, str):
        p = (0,) * dims if m.padding == "valid" else tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
    else:
        p = tuple(m.padding)
    extra = run.merged.get(name, [0] * dims)
    totals = [2 * pp + e for pp, e in zip(p, extra)]
    if not _isotropic(k, s, d, totals):
        run.problems.append((name, f"anisotropic geometry (kernel {k}, stride {s}, dilation {d}, padding {totals}) "
                                   f"does not commute with axis permutations"))
        return None
    large, even = any(v > 1 for v in k), any(v % 2 == 0 for v in k)
    strided = any(v > 1 for v in s) or any(extra)
    if not large and not strided:
        return None
    if even and m.padding_mode != "zeros":
        run.problems.append((name, f"even kernel {k} with padding_mode={m.padding_mode!r} (only zeros supported)"))
        return None
    factory = {"device": m.weight.device, "dtype": m.weight.dtype}
    common = {"stride": 1, "dilation": d, "groups": m.groups, "bias": m.bias is not None, **factory}

    def stride1(padding):
        if even:
            return SREEvenConv(dims, m.in_channels, m.out_channels, k, padding=padding, **common)
        if large:
            return SREConv(dims, m.in_channels, m.out_channels, k, padding=padding, padding_mode=m.padding_mode,
                           **common, **run.options)
        return type(m)(m.in_channels, m.out_channels, k, padding=padding, padding_mode=m.padding_mode, **common)

    if not strided:
        conv = stride1(p)
        run.changed.append(f"{name}: {type(m).__name__}{k} -> {type(conv).__name__}")
        return conv
    if not any(extra) and not even and all(2 * pp == dd * (kk - 1) for pp, dd, kk in zip(p, d, k)):
        conv = stride1(p)
        down = SREPool(dims, s, s, mode=run.pool, ceil_mode=True)
        run.changed.append(f"{name}: {type(m).__name__}{k} stride {s} -> symmetric {run.pool}-pool{s} + "
                           f"{type(conv).__name__} stride 1")
        return nn.Sequential(down, conv)
    if any(extra) and m.padding_mode != "zeros":
        run.problems.append((name, f"padding layer merged into a convolution with padding_mode={m.padding_mode!r}"))
        return None
    # pad ceil(total / 2) per side; the subsampling's size rule takes the odd sample off again
    conv = stride1(tuple(pp + (e + 1) // 2 for pp, e in zip(p, extra)))
    down = SREPool(dims, 1, s, mode="avg", extra_padding=[-(e % 2) for e in extra])
    run.changed.append(f"{name}: {type(m).__name__}{k} stride {s} padding {totals} (total) -> "
                       f"{type(conv).__name__} stride 1 + symmetric subsampling {s}")
    return nn.Sequential(conv, down)


def _convert_transposed(run: _Conversion, name: str, m: nn.Module) -> nn.Module | None:
    dims = _TRANSPOSED_DIMS[type(m)]
    k, s, d, p, op = (tuple(v) for v in (m.kernel_size, m.stride, m.dilation, m.padding, m.output_padding))
    if not _isotropic(k, s, d, p, op):
        run.problems.append((name, f"anisotropic geometry (kernel {k}, stride {s}, padding {p}, output_padding {op}) "
                                   f"does not commute with axis permutations"))
        return None
    if max(k) == 1 and max(s) == 1:
        return None
    new_k, new_p = [], []
    for kk, dd, pp, oo in zip(k, d, p, op):
        # same size: d * (k' - 1) - 2 p' == d * (k - 1) - 2 p + output_padding
        j = next((j for j in range(4) if dd * j - oo + 2 * pp >= 0 and (dd * j - oo) % 2 == 0), None)
        if j is None:
            run.problems.append((name, f"output_padding {op} cannot be absorbed into a symmetric kernel"))
            return None
        new_k.append(kk + j)
        new_p.append((dd * j - oo + 2 * pp) // 2)
    common = {"stride": s, "padding": new_p, "dilation": d, "groups": m.groups, "bias": m.bias is not None,
              "device": m.weight.device, "dtype": m.weight.dtype}
    if all(v % 2 for v in new_k):
        # SREConvTranspose has a single (dense) path: no ``algorithm``
        options = {key: v for key, v in run.options.items() if key != "algorithm"}
        new = SREConvTranspose(dims, m.in_channels, m.out_channels, new_k, **common, **options)
    else:
        new = SREEvenConv(dims, m.in_channels, m.out_channels, new_k, transposed=True, **common)
    run.changed.append(f"{name}: {type(m).__name__}{k} stride {s} padding {p} output_padding {op} -> "
                       f"{type(new).__name__}{tuple(new_k)} padding {tuple(new_p)}")
    return new


def _convert_pool(run: _Conversion, name: str, m: nn.Module) -> nn.Module | None:
    dims, mode = _POOLS[type(m)]
    k, s, p = (tuple(_as_tuple(v, dims)) for v in (m.kernel_size, m.stride, m.padding))
    if mode == "max" and (m.return_indices or max(_as_tuple(m.dilation, dims)) > 1):
        run.problems.append((name, "max pooling with return_indices or dilation has no symmetric counterpart"))
        return None
    if mode == "avg" and m.divisor_override:
        run.problems.append((name, "average pooling with divisor_override has no symmetric counterpart"))
        return None
    if not _isotropic(k, s, p):
        run.problems.append((name, f"anisotropic pooling (kernel {k}, stride {s}, padding {p}) does not commute "
                                   f"with axis permutations"))
        return None
    run.changed.append(f"{name}: {type(m).__name__}{k} stride {s} -> SREPool({mode})")
    return SREPool(dims, k, s, p, mode=mode, ceil_mode=m.ceil_mode)


def _convert_upcat(run: _Conversion, name: str, m: nn.Module) -> nn.Module:
    new = _SymmetricUpCat(m)
    run.changed.append(f"{name}: UpCat -> symmetric resize of odd sizes")
    run.walk(new, name)
    return new


def _check_block_mixing(run: _Conversion, name: str, m: nn.Module) -> None:
    run.problems.append((name, f"{type(m).__name__} mixes the voxels of a block asymmetrically"))


def _check_padding(run: _Conversion, name: str, m: nn.Module) -> None:
    # asymmetric padding is handled (merged or reported) by the parent; here: symmetric but unequal across axes
    sides = _pad_sides(m, _pad_dims(m))
    if all(a == b for a, b in sides) and len(set(sides)) > 1:
        run.problems.append((name, f"padding {sides} differs between axes"))


_Converter = Callable[[_Conversion, str, nn.Module], "nn.Module | None"]
#: rebuilt layers, by exact type
_CONVERTERS: dict[type, _Converter] = {
    **dict.fromkeys(_CONV_DIMS, _convert_conv),
    **dict.fromkeys(_TRANSPOSED_DIMS, _convert_transposed),
    **dict.fromkeys(_POOLS, _convert_pool),
    UpCat: _convert_upcat,
}
#: layers only checked and kept, by type or any subclass
_CHECKS: dict[type, _Converter] = {
    **dict.fromkeys(_NOT_SYMMETRIC, _check_block_mixing),
    **dict.fromkeys(_PADS, _check_padding),
}


def _as_tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
