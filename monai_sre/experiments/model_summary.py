"""Parameter, FLOP and invariance summaries of the registered networks (``scripts/model_summary.py``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks import eval_mode
from torch.utils.flop_counter import FlopCounterMode

from monai_sre.nets import get_model, list_models
from monai_sre.utils import export_to_conv, invariance_error

__all__ = [
    "count_parameters",
    "count_flops",
    "summarize_model",
    "model_summary",
    "format_summary_table",
]

logger = logging.getLogger(__name__)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, x: torch.Tensor, dense: bool = True) -> int:
    """FLOPs of one eval-mode forward pass on ``x``, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    The counter registers matrix products and convolutions only and counts a multiply-add as 2
    FLOPs; norms, activations and pooling are not counted. With ``dense=True`` (default) the count
    is taken on :func:`monai_sre.utils.export_to_conv` of the model, i.e. every SRE convolution
    counts as the dense convolution with its expanded kernel (the paper's inference cost, and
    independent of which computation path an SRE layer picks at run time).
    """
    target = export_to_conv(model) if dense else model
    counter = FlopCounterMode(display=False)
    with eval_mode(target), torch.no_grad(), counter:
        target(x)
    return int(counter.get_total_flops())


def summarize_model(
    name: str,
    size_2d: int = 28,
    size_3d: int = 28,
    batch_size: int = 1,
    invariance: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """Build ``get_model(name, **kwargs)`` and measure parameters, FLOPs and invariance error.

    Args:
        name: a registered model name.
        size_2d: side length of the square input of a 2D (or 1D) model.
        size_3d: side length of the cubic input of a 3D model.
        batch_size: samples in the random input; FLOPs are reported per sample.
        invariance: also compute :func:`invariance_error` over all grid symmetries.
        seed: seed for weights and input.
        kwargs: overrides for the builder (``in_channels``, ``num_classes``, ``widths``, ...).

    Returns:
        ``{"name", "spatial_dims", "conv_type", "params", "input_shape", "flops", "invariance_error"}``
        (``invariance_error`` is None when not computed).
    """
    torch.manual_seed(seed)
    model = get_model(name, **kwargs)
    spatial_dims = int(getattr(model, "spatial_dims", 2))
    in_channels = int(getattr(model, "in_channels", kwargs.get("in_channels", 1)))
    side = int(size_3d if spatial_dims == 3 else size_2d)
    x = torch.randn(batch_size, in_channels, *([side] * spatial_dims))
    row: dict[str, Any] = {
        "name": name,
        "spatial_dims": spatial_dims,
        "conv_type": getattr(model, "conv_type", "?"),
        "params": count_parameters(model),
        "input_shape": [in_channels, *([side] * spatial_dims)],
        "flops": count_flops(model, x) // batch_size,
        "invariance_error": invariance_error(model, x) if invariance else None,
    }
    logger.info("summary: %s", row)
    return row


def model_summary(
    names: Sequence[str] | None = None,
    size_2d: int = 28,
    size_3d: int = 28,
    invariance: bool = True,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`summarize_model` for every registered model (or ``names``), 2D ones at ``size_2d``, 3D at ``size_3d``."""
    names = list_models() if names is None else list(names)
    return [summarize_model(n, size_2d=size_2d, size_3d=size_3d, invariance=invariance, **kwargs) for n in names]


def format_summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`model_summary` rows."""
    header = f"{'model':<16} {'dims':>4} {'conv':>8} {'params (M)':>10} {'input':>14} {'GFLOPs':>9} {'inv. error':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(str(s) for s in r["input_shape"])
        err = "-" if r["invariance_error"] is None else f"{r['invariance_error']:.1e}"
        lines.append(
            f"{r['name']:<16} {r['spatial_dims']:>4} {r['conv_type']:>8} {r['params'] / 1e6:>10.3f} "
            f"{shape:>14} {r['flops'] / 1e9:>9.3f} {err:>10}"
        )
    return "\n".join(lines)
