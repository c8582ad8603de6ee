"""Model surgery: plain convolutions to SRE convolutions and back."""

from __future__ import annotations

import copy
import logging

import torch.nn as nn
from monai.networks.layers.factories import Pool

from monai_sre.blocks.sre_conv import SREConv, SREConvBase, SREConvTranspose

__all__ = ["export_to_conv", "convert_to_sre"]

logger = logging.getLogger(__name__)

_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_TRANSPOSED = {nn.ConvTranspose1d: 1, nn.ConvTranspose2d: 2, nn.ConvTranspose3d: 3}


def _replace_children(module: nn.Module, fn, prefix: str = "") -> None:
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        new = fn(full, child)
        if new is not None:
            setattr(module, name, new)
        else:
            _replace_children(child, fn, full)


def export_to_conv(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in which every SRE layer is a plain ``torch.nn.ConvNd`` / ``ConvTransposeNd``.

    The plain layers hold the expanded kernels, so outputs are identical (up to float rounding of
    the same convolution) and the copy needs nothing from ``monai_sre`` to run, script or trace.

    Example::

        >>> plain = export_to_conv(net)
        >>> torch.jit.script(plain).save("model.ts")
    """
    if isinstance(model, SREConvBase):
        return model.to_plain()
    out = copy.deepcopy(model)
    _replace_children(out, lambda name, m: m.to_plain() if isinstance(m, SREConvBase) else None)
    return out


def convert_to_sre(
    model: nn.Module,
    num_bands: int | None = None,
    spacing=None,
    circular: bool = False,
    pool: str = "avg",
    inplace: bool = False,
    **sre_kwargs,
) -> nn.Module:
    """Replace the convolutions of any PyTorch / MONAI model with SRE convolutions.

    * ``ConvNd`` with an odd kernel larger than 1 on some axis becomes :class:`SREConv` with the
      same channels, groups, dilation, padding, padding mode and bias.
    * A strided convolution (any kernel size) becomes ``Sequential(pool, conv)``: an average (or
      max) pool with kernel = stride, then the convolution with stride 1, the equivariant way to
      downsample. Output sizes match the original when its padding was ``dilation * (k - 1) // 2``.
    * ``ConvTransposeNd`` with a kernel larger than 1 becomes :class:`SREConvTranspose`.
    * Even-sized kernels have no centre tap; they are left as they are, with a warning.

    Weights are freshly initialised (band weights cannot represent an arbitrary kernel). Every
    change is logged at INFO level on ``monai_sre.utils.convert``.

    Args:
        model: the network; copied first unless ``inplace``.
        num_bands, spacing, circular: passed to every SRE layer.
        pool: ``"avg"`` or ``"max"``, for strided convolutions.
        inplace: modify ``model`` itself.
        sre_kwargs: further keyword arguments for the SRE layers.

    Returns:
        The converted model.

    Example::

        >>> net = convert_to_sre(monai.networks.nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2))
    """
    if pool not in ("avg", "max"):
        raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}.")
    target = model if inplace else copy.deepcopy(model)
    options = {"num_bands": num_bands, "spacing": spacing, "circular": circular, **sre_kwargs}
    changed = []

    def convert(name: str, m: nn.Module):
        dims = _CONVS.get(type(m)) or _TRANSPOSED.get(type(m))
        if dims is None:
            return None
        transposed = type(m) in _TRANSPOSED
        k, stride = tuple(m.kernel_size), tuple(m.stride)
        large = any(v > 1 for v in k)
        if large and any(v % 2 == 0 for v in k):
            logger.warning("convert_to_sre: %s has an even kernel %s; left as a plain convolution.", name, k)
            return None
        dev, dt = m.weight.device, m.weight.dtype
        if transposed:
            if not large:
                return None
            new = SREConvTranspose(
                dims, m.in_channels, m.out_channels, k, stride=stride, padding=m.padding,
                output_padding=m.output_padding, groups=m.groups, bias=m.bias is not None,
                dilation=m.dilation, device=dev, dtype=dt, **options,
            )
            changed.append(f"{name}: {type(m).__name__}{k} -> SREConvTranspose({new.num_bands} bands)")
            return new
        strided = any(s > 1 for s in stride)
        if not large and not strided:
            return None
        if large:
            conv = SREConv(
                dims, m.in_channels, m.out_channels, k, stride=1, padding=m.padding, dilation=m.dilation,
                groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode, device=dev, dtype=dt, **options,
            )
            what = f"SREConv({conv.num_bands} bands)"
        else:
            conv = type(m)(
                m.in_channels, m.out_channels, k, stride=1, padding=m.padding, dilation=m.dilation,
                groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode, device=dev, dtype=dt,
            )
            what = type(m).__name__ + str(k)
        if not strided:
            changed.append(f"{name}: {type(m).__name__}{k} -> {what}")
            return conv
        pool_type = Pool.AVG if pool == "avg" else Pool.MAX
        pooling = Pool[pool_type, dims](kernel_size=stride, stride=stride)
        if not isinstance(m.padding, str) and any(
            p != d * (kk - 1) // 2 for p, d, kk in zip(m.padding, m.dilation, k)
        ):
            logger.warning("convert_to_sre: %s has padding %s, not 'same'; output size will differ.", name, m.padding)
        changed.append(f"{name}: {type(m).__name__}{k} stride {stride} -> {pool}-pool{stride} + {what} stride 1")
        return nn.Sequential(pooling, conv)

    root = convert(type(target).__name__, target)
    if root is not None:
        target = root
    else:
        _replace_children(target, convert)
    for line in changed:
        logger.info("convert_to_sre: %s", line)
    logger.info("convert_to_sre: replaced %d layer(s).", len(changed))
    return target
