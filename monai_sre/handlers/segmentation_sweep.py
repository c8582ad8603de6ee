"""Rotated and reflected evaluation of a segmentation network: three Dice measures per view, as a function, a
summary, a writer and an Ignite handler.

The views are those of the classification sweep (:func:`monai_sre.transforms.make_views`: the original, the
``(axis, angle)`` rotations of the protocol, 39 views in 3D, and the flips), and so is the mechanism
(:func:`monai_sre.handlers.view_sweep.view_sweep`): each view is one run of MONAI's
:class:`~monai.engines.SupervisedEvaluator` over the test data, with :class:`SegmentationViewBatch` as its
``prepare_batch``: it rotates the image (linear interpolation) and hands the evaluator, as its label, three targets
on the rotated grid:

* the **resampled truth**: the one-hot ground truth rotated with linear interpolation, then argmax (the best estimate
  of the rotated anatomy on the grid);
* the **nearest-neighbour truth**: the label map rotated with nearest-neighbour interpolation;
* the **reference**: the network's prediction on the *original* image, its class probabilities rotated with linear
  interpolation, then argmax. It needs no labels.

Every Dice is MONAI's :class:`~monai.metrics.DiceMetric` behind an
:class:`~monai.handlers.IgniteMetricHandler` (foreground classes, mean over volumes per class, then over classes),
with ``ignore_empty=False``: a volume whose target lacks a class scores 1 for it when the prediction lacks it too,
and 0 otherwise. So false positives on a volume without a class count, and two empty predictions agree. Per view:

* ``dice``: the prediction against the resampled truth, the primary rotated measure (``dice_<c>`` per class);
* ``dice_nearest``: against the nearest-neighbour truth (the classic protocol);
* ``consistency``: against the reference, i.e. the Dice between the prediction on the rotated input and the rotated
  prediction on the original input: the network's own equivariance error, apart from labels;
* ``dice_floor``: the resampled truth against the nearest-neighbour truth, what label resampling alone costs
  between the two protocols.

90-degree multiples and flips are exact grid permutations: there all three targets are the permuted truth or
prediction, ``dice_floor`` is 1, and an exactly equivariant network has its original Dice and a consistency of 1.
Outputs (written atomically): ``<prefix>.csv`` (one row per view), ``<prefix>_summary.csv``, ``<prefix>.json`` and a
plot ``<prefix>.png`` of Dice and consistency against angle.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from monai.engines.utils import PrepareBatch
from monai.handlers import IgniteMetricHandler, from_engine
from monai.metrics import DiceMetric

from monai_sre.handlers.view_sweep import ViewSweep, check_backend, view_sweep, write_views
from monai_sre.transforms.views import View, apply_view, make_views

__all__ = ["IGNORE_EMPTY", "TARGETS", "DiceOutput", "ReferencePrediction", "SegmentationRotationSweep",
           "SegmentationViewBatch", "segmentation_dice", "segmentation_sweep", "summarize_segmentation_sweep",
           "write_segmentation_sweep"]

#: the label channels :class:`SegmentationViewBatch` hands the evaluator, in order
TARGETS = ("resampled", "nearest", "reference")
#: DiceMetric's empty-target setting for every Dice of the sweep (see the module docstring)
IGNORE_EMPTY = False
#: per-view metric: (prediction, target), ``None`` as prediction meaning the network's
_MEASURES = {"dice": (None, "resampled"), "dice_nearest": (None, "nearest"), "consistency": (None, "reference"),
             "dice_floor": ("resampled", "nearest")}


def segmentation_dice(num_classes: int) -> DiceMetric:
    """The sweep's :class:`~monai.metrics.DiceMetric`: class-index maps ``(B, 1, *spatial)`` in, foreground Dice per
    class (mean over volumes) out, empty targets scored (``ignore_empty=False``)."""
    return DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=IGNORE_EMPTY,
                      num_classes=num_classes)


class ReferencePrediction:
    """Class probabilities (softmax) of ``network`` on an original batch, computed once per distinct batch.

    The sweep re-reads the data for every view; the cache is keyed by the batch's content, so the views share one
    forward pass per batch whatever the loader's order.

    Args:
        network: segmentation network returning logits ``(B, num_classes, *spatial)``.
        inferer: ``(inputs, network) -> logits``; None calls ``network(inputs)``.
    """

    def __init__(self, network: torch.nn.Module, inferer: Callable | None = None) -> None:
        self.network, self.inferer = network, inferer
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest() + str(tuple(x.shape))
        if key not in self._cache:
            logits = self.inferer(x, self.network) if self.inferer is not None else self.network(x)
            self._cache[key] = torch.softmax(torch.as_tensor(logits).float(), dim=1)
        return self._cache[key]


class SegmentationViewBatch(PrepareBatch):
    """``prepare_batch`` of a :class:`~monai.engines.SupervisedEvaluator` that shows it a segmentation batch in one
    view: the image rotated (linear interpolation), and as label the :data:`TARGETS` stacked as channels
    ``(B, 3, *spatial)`` of class indices. Counts the samples in ``n_samples``.

    Args:
        view: the view.
        num_classes: classes including background.
        reference: original image batch -> class probabilities (:class:`ReferencePrediction`).
        backend: rotation back end (``"auto"``, ``"monai"``, ``"torchio"``).
        image_key: image key in each batch.
        label_key: label key in each batch (class indices ``(B, 1, *spatial)``).
    """

    def __init__(self, view: View, num_classes: int, reference: Callable[[torch.Tensor], torch.Tensor],
                 backend: str = "monai", image_key: str = "image", label_key: str = "label") -> None:
        self.view, self.num_classes, self.reference, self.backend = view, num_classes, reference, check_backend(backend)
        self.image_key, self.label_key = image_key, label_key
        self.n_samples = 0

    def __call__(self, batchdata: dict, device: torch.device | str | None = None, non_blocking: bool = False,
                 **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(batchdata[self.image_key]).to(device=device, dtype=torch.float32, non_blocking=non_blocking)
        y = torch.as_tensor(batchdata[self.label_key]).to(device=device, dtype=torch.float32, non_blocking=non_blocking)
        self.n_samples += int(x.shape[0])
        classes = y[:, 0].round().long().clamp(0, self.num_classes - 1)
        onehot = torch.nn.functional.one_hot(classes, self.num_classes).movedim(-1, 1).float()
        targets = [
            apply_view(onehot, self.view, self.backend).argmax(1, keepdim=True),
            apply_view(y, self.view, self.backend, mode="nearest").round(),
            apply_view(self.reference(x), self.view, self.backend).argmax(1, keepdim=True),
        ]
        return apply_view(x, self.view, self.backend), torch.cat([t.float() for t in targets], dim=1)


class DiceOutput:
    """``output_transform`` of a Dice handler on a :class:`SegmentationViewBatch` evaluator: per volume, the
    ``(prediction, target)`` class-index maps ``(1, *spatial)``.

    Args:
        target: one of :data:`TARGETS`.
        prediction: None for the network's prediction (argmax of ``pred``), or one of :data:`TARGETS`.
    """

    def __init__(self, target: str, prediction: str | None = None) -> None:
        for name in (target, prediction):
            if name is not None and name not in TARGETS:
                raise ValueError(f"target and prediction must be one of {list(TARGETS)}, got {name!r}.")
        self.target, self.prediction = TARGETS.index(target), prediction

    def __call__(self, output: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        preds, labels = from_engine(["pred", "label"])(output)
        if self.prediction is None:
            preds = [p.argmax(0, keepdim=True) for p in preds]
        else:
            preds = [lab[TARGETS.index(self.prediction)][None] for lab in labels]
        return preds, [lab[self.target][None] for lab in labels]


@torch.no_grad()
def segmentation_sweep(
    network: torch.nn.Module,
    dataloader: Any,
    num_classes: int,
    spatial_dims: int = 3,
    views: Sequence[View] | None = None,
    device: torch.device | str | None = None,
    backend: str = "monai",
    inferer: Callable[[torch.Tensor, torch.nn.Module], torch.Tensor] | None = None,
    image_key: str = "image",
    label_key: str = "label",
    amp: bool = False,
) -> list[dict[str, Any]]:
    """The Dice measures of ``network`` on every view of the data in ``dataloader`` (see the module docstring).

    Args:
        network: segmentation network returning logits ``(B, num_classes, *spatial)``.
        dataloader: iterable of dicts with ``image_key`` ``(B, C, *spatial)`` and ``label_key`` ``(B, 1, *spatial)``,
            re-read for every view.
        num_classes: classes including background.
        spatial_dims: 2 or 3.
        views: views; default :func:`make_views` (the protocol: 39 rotations in 3D, plus one flip per axis).
        device: device of the network input; default the network's.
        backend: rotation back end (``"monai"``: batched, 90-degree multiples exact; ``"torchio"``; ``"auto"``).
        inferer: ``(inputs, network) -> logits``; default ``network(inputs)``.
        image_key: image key in each batch.
        label_key: label key in each batch.
        amp: autocast on CUDA.

    Returns:
        one dict per view: ``name``, ``kind``, ``axis``, ``angle``, ``dice``, ``dice_<c>`` per foreground class,
        ``dice_nearest``, ``consistency``, ``dice_floor``, ``n``.

    Raises:
        ValueError: bad ``num_classes`` / ``spatial_dims`` / ``backend`` or an empty dataloader.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}.")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    check_backend(backend)
    views = make_views(spatial_dims) if views is None else list(views)
    reference = ReferencePrediction(network, inferer)

    def metrics() -> dict[str, Any]:  # per-class vectors, so no key metric
        return {name: IgniteMetricHandler(metric_fn=segmentation_dice(num_classes),
                                          output_transform=DiceOutput(target, prediction))
                for name, (prediction, target) in _MEASURES.items()}

    prepare = partial(SegmentationViewBatch, num_classes=num_classes, reference=reference, backend=backend,
                      image_key=image_key, label_key=label_key)
    return view_sweep(network, dataloader, views, prepare, metrics, device=device,
                      inferer=inferer, amp=amp, per_class=("dice",), label="rotated segmentation")


def _on_grid(row: dict[str, Any]) -> bool:
    return row["kind"] == "reflection" or (row["kind"] == "rotation" and float(row["angle"]) % 90.0 == 0.0)


def summarize_segmentation_sweep(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The summary of :func:`segmentation_sweep` rows.

    Dice against the resampled truth: ``Orig.`` (original view), ``Rot.`` / ``Ref.`` (means over rotations /
    flips), ``Rot90`` (mean over the rotations by 90-degree multiples), ``Rot_offgrid`` (mean over the other
    rotations), ``gap_rot = Orig. - Rot.``, ``gap_rot90`` (the largest change at a 90-degree multiple or flip) and
    ``worst_rot``. Nearest-neighbour truth: ``Rot_nearest`` and ``gap_rot_nearest``. Consistency:
    ``consistency_offgrid`` (mean over off-grid rotations), ``consistency_worst`` (their minimum) and
    ``consistency_rot90`` (the minimum over 90-degree multiples and flips). Label resampling: ``floor_gap_rot`` and
    ``floor_gap_offgrid``, one minus the mean ``dice_floor`` over all / off-grid rotations.

    Raises:
        ValueError: if there is no original view.
    """
    orig = [r for r in results if r["kind"] == "original"]
    if not orig:
        raise ValueError("results must contain the 'original' view.")
    rot = [r for r in results if r["kind"] == "rotation"]
    ref = [r for r in results if r["kind"] == "reflection"]
    right = [r for r in rot if _on_grid(r)]
    offgrid = [r for r in rot if not _on_grid(r)]

    def mean(rows: list, key: str = "dice") -> float:
        return float(np.mean([r[key] for r in rows])) if rows else math.nan

    o = orig[0]
    out: dict[str, Any] = {"Orig.": o["dice"], "Rot.": mean(rot), "Ref.": mean(ref), "Rot90": mean(right),
                           "Rot_offgrid": mean(offgrid)}
    out["gap_rot"] = out["Orig."] - out["Rot."]
    out["gap_rot90"] = max((abs(r["dice"] - o["dice"]) for r in right + ref), default=math.nan)
    out["worst_rot"] = min((r["dice"] for r in rot), default=math.nan)
    out["Rot_nearest"] = mean(rot, "dice_nearest")
    out["gap_rot_nearest"] = o["dice_nearest"] - out["Rot_nearest"]
    out["consistency_offgrid"] = mean(offgrid, "consistency")
    out["consistency_worst"] = min((r["consistency"] for r in offgrid), default=math.nan)
    out["consistency_rot90"] = min((r["consistency"] for r in right + ref), default=math.nan)
    out["floor_gap_rot"] = 1.0 - mean(rot, "dice_floor")
    out["floor_gap_offgrid"] = 1.0 - mean(offgrid, "dice_floor")
    out.update({"n_rotations": len(rot), "n_offgrid": len(offgrid), "n_reflections": len(ref), "n_samples": o["n"]})
    return out


def write_segmentation_sweep(
    results: Sequence[dict[str, Any]], output_dir: str, prefix: str = "rotated", title: str = "Rotated evaluation"
) -> dict[str, str]:
    """Write ``<prefix>.csv``, ``<prefix>_summary.csv``, ``<prefix>.json`` and ``<prefix>.png`` (Dice against the
    resampled truth and consistency, against angle) atomically; returns the paths."""
    summary = summarize_segmentation_sweep(results)
    panels = [
        {"title": f"{title}: Dice (resampled truth)", "series": [{"label": "", "views": list(results)}],
         "levels": [{"value": summary["Orig."], "label": "original"},
                    {"value": summary["Ref."], "label": "reflections (mean)", "color": "gray", "linestyle": "-."}]},
        {"title": "consistency (prediction vs rotated original prediction)",
         "series": [{"label": "", "views": [{**r, "dice": r["consistency"]} for r in results]}]},
    ]
    return write_views(results, summary, output_dir, prefix, panels, metric="dice", ylabel="mean foreground Dice")


class SegmentationRotationSweep(ViewSweep):
    """Ignite handler: when an evaluator completes, run :func:`segmentation_sweep` on its network, data and inferer,
    and write the results with :func:`write_segmentation_sweep`.

    Args:
        output_dir: folder of the outputs.
        num_classes: classes including background.
        spatial_dims: 2 or 3.
        rotations: ``(axis, angle)`` pairs; None uses the protocol.
        reflections: axes to flip; None flips every axis.
        backend: rotation back end.
        prefix: output file prefix.
        title: plot title.

    Example:
        >>> SegmentationRotationSweep("runs/rotated", num_classes=3).attach(evaluator)
    """

    def __init__(
        self,
        output_dir: str,
        num_classes: int,
        spatial_dims: int = 3,
        rotations: Sequence[tuple[int | None, float]] | None = None,
        reflections: Sequence[int] | None = None,
        backend: str = "monai",
        prefix: str = "rotated",
        title: str = "Rotated evaluation",
    ) -> None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}.")
        super().__init__(output_dir, spatial_dims, rotations, reflections, backend, prefix, title)
        self.num_classes = num_classes

    summarize = staticmethod(summarize_segmentation_sweep)
    writer = staticmethod(write_segmentation_sweep)

    def sweep(self, network: torch.nn.Module, dataloader: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return segmentation_sweep(network, dataloader, self.num_classes, self.spatial_dims, self.views,
                                  backend=self.backend, **kwargs)

    def describe(self, s: Mapping[str, Any]) -> str:
        return (f"Rotated segmentation evaluation ({s['n_rotations']} rotations, {s['n_reflections']} flips, "
                f"{s['n_samples']} volumes), Dice against the resampled truth: Orig. {s['Orig.']:.4f} Rot. "
                f"{s['Rot.']:.4f} (gap {s['gap_rot']:.4f}) off-grid {s['Rot_offgrid']:.4f}; 90-degree/flip max gap "
                f"{s['gap_rot90']:.2e}; nearest-neighbour truth Rot. {s['Rot_nearest']:.4f}; consistency off-grid "
                f"{s['consistency_offgrid']:.4f} (worst {s['consistency_worst']:.4f}), 90-degree/flip min "
                f"{s['consistency_rot90']:.4f}; label resampling floor {s['floor_gap_rot']:.4f} "
                f"(off-grid {s['floor_gap_offgrid']:.4f})")
