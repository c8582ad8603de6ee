"""Rotated and reflected test-set evaluation (the SRE-Conv paper's protocol) as a function and an Ignite handler.

Each view (the original, each ``(axis, angle)`` of :func:`monai_sre.transforms.rotation_protocol` and each flip of
:func:`monai_sre.transforms.reflection_protocol`) is one run of MONAI's :class:`~monai.engines.SupervisedEvaluator`
over the test data (:func:`monai_sre.handlers.view_sweep.view_sweep`, the mechanism shared with the segmentation
sweep). The view's rotation is applied to every batch in the evaluator's ``prepare_batch``
(:class:`ViewBatch`, through :func:`monai_sre.transforms.rotation.rotate`: batched MONAI affine on CUDA, TorchIO
per sample on CPU). Scores come from ``train.json``'s post-processing
(:func:`~monai_sre.handlers.classification.classification_postprocessing`), accuracy from Ignite's ``Accuracy`` and
AUC from MONAI's ``ROCAUC``; both equal the numbers of MedMNIST's official evaluator (``medmnist.evaluator``:
one-vs-rest macro AUC, multi-label accuracy averaged over labels; ``tests/handlers`` checks it), so the numbers
compare with the paper. Results are written atomically as JSON, CSV (one row per view), a summary in the paper's
columns (Orig., Rot., Ref.) and a PNG plot of accuracy against angle, one line per axis
(:func:`monai_sre.utils.plot_sweep`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from monai.engines.utils import PrepareBatch
from monai.handlers import ROCAUC
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.handlers.classification import ClassificationOutput, check_task, classification_postprocessing
from monai_sre.handlers.view_sweep import ViewSweep, check_backend, network_device, view_sweep, write_views
from monai_sre.utils.io import atomic_write
from monai_sre.transforms.views import View, apply_view, make_views

Accuracy, _ = optional_import("ignite.metrics", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Accuracy")
EpochMetric, _ = optional_import("ignite.metrics", IgniteInfo.OPT_IMPORT_VERSION, min_version, "EpochMetric")

__all__ = ["ViewBatch", "rotation_sweep", "summarize_sweep", "write_sweep", "RotationSweep"]



class ViewBatch(PrepareBatch):
    """``prepare_batch`` of a :class:`~monai.engines.SupervisedEvaluator` that shows it the batch in one view.

    Moves ``batch[image_key]`` (as float32) and ``batch[label_key]`` to the device, then applies :func:`apply_view`
    to the image. It counts the samples it has prepared in ``n_samples``.

    Args:
        view: the view.
        backend: rotation back end, ``"auto"`` (MONAI batched on CUDA, TorchIO on CPU), ``"monai"`` or ``"torchio"``.
        background: background intensity for the corners of rotated views.
        image_key: image key in each batch.
        label_key: label key in each batch.

    Raises:
        ValueError: for a bad ``backend``.
    """

    def __init__(self, view: View, backend: str = "auto", background: float = 0.0, image_key: str = "image",
                 label_key: str = "label") -> None:
        self.view, self.backend, self.background = view, check_backend(backend), float(background)
        self.image_key, self.label_key = image_key, label_key
        self.n_samples = 0

    def __call__(self, batchdata: dict, device: torch.device | str | None = None, non_blocking: bool = False,
                 **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(batchdata[self.image_key]).to(device=device, dtype=torch.float32, non_blocking=non_blocking)
        y = torch.as_tensor(batchdata[self.label_key]).to(device=device, non_blocking=non_blocking)
        self.n_samples += int(x.shape[0])
        return apply_view(x, self.view, self.backend, self.background), y


def _num_classes(network: torch.nn.Module, dataloader: Any, device: torch.device, image_key: str,
                 inferer: Callable | None) -> int:
    """Width of the network output, from the first batch."""
    batch = next(iter(dataloader))
    x = torch.as_tensor(batch[image_key][:1]).to(device=device, dtype=torch.float32)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            return int(torch.as_tensor(inferer(x, network) if inferer is not None else network(x)).shape[1])
    finally:
        network.train(was_training)


def rotation_sweep(
    network: torch.nn.Module,
    dataloader: Any,
    spatial_dims: int,
    task: str,
    views: Sequence[View] | None = None,
    device: torch.device | str | None = None,
    backend: str = "auto",
    image_key: str = "image",
    label_key: str = "label",
    amp: bool = False,
    inferer: Callable[[torch.Tensor, torch.nn.Module], torch.Tensor] | None = None,
    background: float = 0.0,
    num_classes: int | None = None,
) -> list[dict[str, Any]]:
    """Accuracy and AUC of ``network`` on every view of the data in ``dataloader``.

    One :class:`~monai.engines.SupervisedEvaluator` run per view (the original and 0/360-degree views once), with
    :class:`ViewBatch` as ``prepare_batch``, ``train.json``'s post-processing, Ignite ``Accuracy`` and MONAI
    ``ROCAUC`` (a view whose labels hold a single class gets AUC NaN).

    Args:
        network: classifier returning logits ``(B, num_classes)``.
        dataloader: iterable of dicts with ``image_key`` ``(B, C, *spatial)`` and ``label_key``, re-read for every
            view.
        spatial_dims: 2 or 3.
        task: MedMNIST task string (``"multi-class"``, ``"binary-class"``, ``"multi-label, binary-class"``, ...).
        views: views to evaluate; None uses :func:`make_views` (the paper's protocol).
        device: device for the network input; None uses the network's.
        backend: rotation back end, ``"auto"`` (MONAI batched on CUDA, TorchIO on CPU), ``"monai"`` or ``"torchio"``.
        image_key: image key in each batch.
        label_key: label key in each batch.
        amp: autocast on CUDA.
        inferer: callable ``(inputs, network) -> logits``, e.g. a MONAI inferer; None calls ``network(inputs)``.
        background: intensity of the image background (e.g. -1 for images scaled to [-1, 1]); rotated views fill
            the corners that come from outside the image with it.
        num_classes: width of the network output; None reads it from one forward pass on the first batch.

    Returns:
        one dict per view: ``kind``, ``axis``, ``angle``, ``name``, ``acc``, ``auc``, ``n`` and ``scores``: a
        ``(n, 2 * num_classes)`` tensor, per sample in the loader's order its post-processed scores, then its one-hot
        label (what paired statistics between models need).

    Raises:
        ValueError: for a bad ``spatial_dims``, ``task`` or ``backend``, or an empty dataloader.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    check_backend(backend)
    check_task(task)
    views = make_views(spatial_dims) if views is None else list(views)
    if hasattr(dataloader, "__len__") and len(dataloader) == 0:
        raise ValueError("dataloader yielded no batches.")
    device = network_device(network, device)
    if num_classes is None:
        num_classes = _num_classes(network, dataloader, device, image_key, inferer)

    def metrics() -> dict[str, Any]:
        # is_multilabel=False: element-wise accuracy for multi-label tasks, as medmnist.evaluator computes it
        return {"acc": Accuracy(output_transform=ClassificationOutput(task, "acc")),
                "auc": ROCAUC(output_transform=ClassificationOutput(task, "auc", num_classes)),
                "scores": EpochMetric(_scores_and_labels, ClassificationOutput(task, "auc", num_classes),
                                      check_compute_fn=False)}

    return view_sweep(network, dataloader, views, partial(ViewBatch, backend=backend, background=background,
                                                          image_key=image_key, label_key=label_key),
                      metrics, device=device, inferer=inferer, postprocessing=classification_postprocessing(task),
                      amp=amp, keep=("scores",))


def _scores_and_labels(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.cat([scores.float(), labels.float()], dim=1)


def summarize_sweep(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The paper's columns from :func:`rotation_sweep` rows.

    ``Orig.`` is the original view's accuracy, ``Rot.`` the mean over rotation views (the paper's protocol, whose
    0-degree and 360-degree views are the original), ``Rot. turned`` the mean over the rotation views that turn the
    image (angle not a multiple of 360 degrees), ``Ref.`` the mean over reflection views. ``gap_rot = Orig. - Rot.`` is the invariance gap (0 for a perfectly invariant model),
    ``worst_rot`` the lowest rotated accuracy. AUCs follow the same pattern with an ``auc_`` prefix.

    Raises:
        ValueError: if there is no original view.
    """
    orig = [r for r in results if r["kind"] == "original"]
    if not orig:
        raise ValueError("results must contain the 'original' view.")
    rot = [r for r in results if r["kind"] == "rotation"]
    ref = [r for r in results if r["kind"] == "reflection"]

    def _mean(rows: list, key: str) -> float:
        vals = [r[key] for r in rows if not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else math.nan

    turned = [r for r in rot if float(r.get("angle", 0.0)) % 360.0 != 0.0]
    out: dict[str, Any] = {"Orig.": orig[0]["acc"], "Rot.": _mean(rot, "acc"), "Rot. turned": _mean(turned, "acc"),
                           "Ref.": _mean(ref, "acc")}
    out["gap_rot"] = out["Orig."] - out["Rot."] if rot else math.nan
    out["gap_ref"] = out["Orig."] - out["Ref."] if ref else math.nan
    out["worst_rot"] = float(min(r["acc"] for r in rot)) if rot else math.nan
    out.update({"auc_Orig.": orig[0]["auc"], "auc_Rot.": _mean(rot, "auc"), "auc_Ref.": _mean(ref, "auc")})
    out.update({"n_rotations": len(rot), "n_turned": len(turned), "n_reflections": len(ref), "n_samples": orig[0]["n"]})
    return out


def write_sweep(
    results: Sequence[dict[str, Any]], output_dir: str, prefix: str = "rotated", title: str = "Rotated evaluation"
) -> dict[str, str]:
    """Write ``<prefix>.json`` (rows + summary), ``<prefix>.csv``, ``<prefix>_summary.csv`` and ``<prefix>.png``
    (accuracy and AUC against angle, one line style per axis);
    rows with ``scores`` (:func:`rotation_sweep`) also give ``<prefix>_scores.npz``: ``views`` (names), ``scores``
    ``(views, n, num_classes)`` and ``labels`` ``(n, num_classes)``, one-hot, for paired per-sample statistics.

    All files are written atomically (temporary file, then :func:`os.replace`).

    Returns:
        mapping from ``"json"``, ``"csv"``, ``"summary"``, ``"png"`` (and ``"scores"``) to the written paths.
    """
    summary = summarize_sweep(results)
    levels = [{"value": {"acc": summary["Orig."], "auc": summary["auc_Orig."]}, "label": "original"},
              {"value": {"acc": summary["Ref."], "auc": summary["auc_Ref."]}, "label": "reflections (mean)",
               "color": "gray", "linestyle": "-."}]
    panels = [{"title": title, "series": [{"label": "", "views": list(results)}], "levels": levels}]
    rows = [{k: r.get(k) for k in ("name", "kind", "axis", "angle", "acc", "auc", "n")} for r in results]
    paths = write_views(rows, summary, output_dir, prefix, panels, metric=("acc", "auc"), ylabel=("accuracy", "AUC"))
    if results and all("scores" in r for r in results):
        both = torch.stack([torch.as_tensor(r["scores"]) for r in results]).numpy()
        width = both.shape[-1] // 2
        buf = io.BytesIO()
        np.savez(buf, views=np.array([r["name"] for r in results]), scores=both[..., :width],
                 labels=both[0, :, width:])
        paths["scores"] = os.path.join(output_dir, f"{prefix}_scores.npz")
        atomic_write(paths["scores"], buf.getvalue())
    return paths


class RotationSweep(ViewSweep):
    """Ignite handler: after an evaluator run, evaluate its network on the rotated and reflected views and write
    the results (see :func:`rotation_sweep` and :func:`write_sweep`).

    Uses the engine's ``network``, ``data_loader``, ``inferer`` and ``amp`` (a MONAI ``SupervisedEvaluator``), so it
    sees the weights the evaluator just used, e.g. restored by a ``CheckpointLoader`` at ``STARTED``.

    Args:
        output_dir: folder of the JSON/CSV/PNG outputs.
        spatial_dims: 2 or 3.
        task: MedMNIST task string.
        rotations: ``(axis, angle)`` pairs; None uses the paper's protocol (39 views in 3D, 37 in 2D).
        reflections: axes to flip; None flips every spatial axis.
        backend: rotation back end (``"auto"``, ``"monai"``, ``"torchio"``).
        prefix: output file prefix.
        title: plot title.
        background: background intensity for the corners of rotated views (see :func:`rotation_sweep`).
        num_classes: width of the network output; None reads it from the network (see :func:`rotation_sweep`).

    Raises:
        ValueError: for a bad ``spatial_dims`` or ``task``.

    Example:
        >>> RotationSweep("runs/rotated", spatial_dims=3, task="binary-class").attach(evaluator)
        >>> evaluator.run()  # then runs/rotated/rotated.{json,csv,png} and rotated_summary.csv exist
    """

    def __init__(
        self,
        output_dir: str,
        spatial_dims: int,
        task: str,
        rotations: Sequence[tuple[int | None, float]] | None = None,
        reflections: Sequence[int] | None = None,
        backend: str = "auto",
        prefix: str = "rotated",
        title: str = "Rotated evaluation",
        background: float = 0.0,
        num_classes: int | None = None,
    ) -> None:
        check_task(task)
        super().__init__(output_dir, spatial_dims, rotations, reflections, backend, prefix, title)
        self.task, self.background, self.num_classes = task, float(background), num_classes

    summarize = staticmethod(summarize_sweep)
    writer = staticmethod(write_sweep)

    def sweep(self, network: torch.nn.Module, dataloader: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return rotation_sweep(network, dataloader, self.spatial_dims, self.task, views=self.views, backend=self.backend,
                              background=self.background, num_classes=self.num_classes, **kwargs)

    def describe(self, s: Mapping[str, Any]) -> str:
        return (f"Rotated evaluation ({s['n_rotations']} rotations, {s['n_reflections']} reflections, {s['n_samples']} "
                f"samples): Orig. {s['Orig.']:.4f} Rot. {s['Rot.']:.4f} Ref. {s['Ref.']:.4f} "
                f"gap {s['gap_rot']:+.4f} worst {s['worst_rot']:.4f}")
