"""Rotated and reflected test-set evaluation (the SRE-Conv paper's protocol) as a function and an Ignite handler.

Every test batch is read once and pushed through all views: the original, each ``(axis, angle)`` of
:func:`monai_sre.transforms.rotation_protocol` and each flip of :func:`monai_sre.transforms.reflection_protocol`.
Rotations go through :func:`monai_sre.transforms.rotation.rotate` (``backend="auto"``: batched MONAI affine on
CUDA, TorchIO per sample on CPU). Accuracy and AUC are MedMNIST's official ``getACC`` / ``getAUC`` so the numbers
compare with the paper. Results are written atomically as JSON, CSV (one row per view), a summary in the paper's
columns (Orig., Rot., Ref.) and a PNG plot of accuracy against angle, one line per axis.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.transforms.rotation import reflection_protocol, rotate, rotation_protocol
from monai_sre.utils.io import atomic_write

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")
medmnist_eval, _has_medmnist = optional_import("medmnist.evaluator")

__all__ = ["View", "make_views", "score_activation", "rotation_sweep", "summarize_sweep", "write_sweep", "RotationSweep"]

logger = logging.getLogger(__name__)

MULTI_LABEL = "multi-label, binary-class"
_TASKS = ("multi-class", "binary-class", "ordinal-regression", MULTI_LABEL)


class View(dict):
    """One evaluation view: ``{"kind": "original"|"rotation"|"reflection", "axis": int|None, "angle": float|None}``."""

    @property
    def name(self) -> str:
        if self["kind"] == "original":
            return "original"
        if self["kind"] == "reflection":
            return f"flip_axis{self['axis']}"
        axis = "" if self["axis"] is None else f"axis{self['axis']}_"
        return f"rot_{axis}{self['angle']:g}"


def make_views(
    spatial_dims: int,
    rotations: Sequence[tuple[int | None, float]] | None = None,
    reflections: Sequence[int] | None = None,
) -> list[View]:
    """The original view plus rotations (default: the paper's protocol) and reflections (default: every axis).

    Args:
        spatial_dims: 2 or 3.
        rotations: ``(axis, angle)`` pairs; None uses :func:`rotation_protocol`.
        reflections: spatial axes to flip; None uses :func:`reflection_protocol`.

    Returns:
        list of :class:`View`, the original first.
    """
    rotations = rotation_protocol(spatial_dims) if rotations is None else rotations
    reflections = reflection_protocol(spatial_dims) if reflections is None else reflections
    views = [View(kind="original", axis=None, angle=0.0)]
    views += [View(kind="rotation", axis=None if a is None else int(a), angle=float(t)) for a, t in rotations]
    views += [View(kind="reflection", axis=int(a), angle=None) for a in reflections]
    return views


def score_activation(task: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Logits -> scores: sigmoid for multi-label tasks, softmax over classes otherwise.

    Raises:
        ValueError: if ``task`` is not a MedMNIST task string.
    """
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}, got {task!r}.")
    if task == MULTI_LABEL:
        return torch.sigmoid
    return lambda logits: torch.softmax(logits, dim=1)


def _apply_view(x: torch.Tensor, view: View, backend: str, background: float = 0.0) -> torch.Tensor:
    if view["kind"] == "original":
        return x
    if view["kind"] == "reflection":
        return torch.flip(x, dims=(2 + view["axis"],))
    if background == 0.0:
        return rotate(x, view["angle"], view["axis"], mode="linear", backend=backend)
    # corners that come from outside the image get the background intensity, not 0
    return rotate(x - background, view["angle"], view["axis"], mode="linear", backend=backend) + background


def _view_key(view: View) -> str:
    if view["kind"] == "rotation" and float(view["angle"]) % 360.0 == 0.0:
        return "original"
    return view.name


def _metrics(labels: np.ndarray, scores: np.ndarray, task: str) -> dict[str, float]:
    if not _has_medmnist:
        raise ImportError("medmnist is required for the rotated evaluation metrics (pip install medmnist).")
    acc = float(medmnist_eval.getACC(labels, scores, task))
    try:
        auc = float(medmnist_eval.getAUC(labels, scores, task))
    except ValueError:  # a single class present in the labels
        auc = math.nan
    return {"acc": acc, "auc": auc}


@torch.no_grad()
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
) -> list[dict[str, Any]]:
    """Accuracy and AUC of ``network`` on every view of the data in ``dataloader``.

    Args:
        network: classifier returning logits ``(B, num_classes)``.
        dataloader: iterable of dicts with ``image_key`` ``(B, C, *spatial)`` and ``label_key``.
        spatial_dims: 2 or 3.
        task: MedMNIST task string (``"multi-class"``, ``"binary-class"``, ``"multi-label, binary-class"``, ...).
        views: views to evaluate; None uses :func:`make_views` (the paper's protocol).
        device: device for the network input; None uses the network's.
        backend: rotation back end, ``"auto"`` (MONAI batched on CUDA, TorchIO on CPU), ``"monai"`` or ``"torchio"``.
        image_key: image key in each batch.
        label_key: label key in each batch.
        amp: autocast on CUDA.
        inferer: callable ``(inputs, network) -> logits``; None calls ``network(inputs)``.
        background: intensity of the image background (e.g. -1 for images scaled to [-1, 1]); rotated views fill
            the corners that come from outside the image with it.

    Returns:
        one dict per view: ``kind``, ``axis``, ``angle``, ``name``, ``acc``, ``auc``, ``n``.

    Raises:
        ValueError: for a bad ``spatial_dims``, ``task`` or ``backend``, or an empty dataloader.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if backend not in ("auto", "monai", "torchio"):
        raise ValueError(f"backend must be 'auto', 'monai' or 'torchio', got {backend!r}.")
    activation = score_activation(task)
    views = make_views(spatial_dims) if views is None else list(views)
    if device is None:
        param = next(iter(network.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = network.training
    network.eval()
    scores: list[list[np.ndarray]] = [[] for _ in views]
    labels: list[np.ndarray] = []
    try:
        n_batches = len(dataloader) if hasattr(dataloader, "__len__") else None
        for step, batch in enumerate(dataloader, start=1):
            x = torch.as_tensor(batch[image_key]).to(device=device, dtype=torch.float32)
            labels.append(np.asarray(torch.as_tensor(batch[label_key]).cpu()))
            done: dict[str, np.ndarray] = {}  # identical views (0 and 360 degrees) are computed once
            for i, view in enumerate(views):
                key = _view_key(view)
                if key not in done:
                    xv = _apply_view(x, view, backend, background)
                    with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                        logits = inferer(xv, network) if inferer is not None else network(xv)
                    done[key] = activation(torch.as_tensor(logits).float()).cpu().numpy()
                scores[i].append(done[key])
            logger.info(f"rotated evaluation: batch {step}/{n_batches or '?'} done ({len(views)} views)")
    finally:
        network.train(was_training)
    if not labels:
        raise ValueError("dataloader yielded no batches.")
    y = np.concatenate(labels).reshape(-1) if task != MULTI_LABEL else np.concatenate(labels)
    results = []
    for view, s in zip(views, scores):
        row = {"kind": view["kind"], "axis": view["axis"], "angle": view["angle"], "name": view.name}
        row.update(_metrics(y, np.concatenate(s), task))
        row["n"] = int(len(y))
        results.append(row)
    return results


def summarize_sweep(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The paper's columns from :func:`rotation_sweep` rows.

    ``Orig.`` is the original view's accuracy, ``Rot.`` the mean over rotation views, ``Ref.`` the mean over
    reflection views. ``gap_rot = Orig. - Rot.`` is the invariance gap (0 for a perfectly invariant model),
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

    out: dict[str, Any] = {"Orig.": orig[0]["acc"], "Rot.": _mean(rot, "acc"), "Ref.": _mean(ref, "acc")}
    out["gap_rot"] = out["Orig."] - out["Rot."] if rot else math.nan
    out["gap_ref"] = out["Orig."] - out["Ref."] if ref else math.nan
    out["worst_rot"] = float(min(r["acc"] for r in rot)) if rot else math.nan
    out.update({"auc_Orig.": orig[0]["auc"], "auc_Rot.": _mean(rot, "auc"), "auc_Ref.": _mean(ref, "auc")})
    out.update({"n_rotations": len(rot), "n_reflections": len(ref), "n_samples": orig[0]["n"]})
    return out


def plot_sweep(
    results: Sequence[dict[str, Any]], summary: dict[str, Any], title: str, metric: str = "acc",
    ylabel: str = "accuracy",
) -> bytes:
    """PNG of ``metric`` against rotation angle (one line per axis), with the original and mean reflected levels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    rot = [r for r in results if r["kind"] == "rotation"]
    for axis in sorted({r["axis"] for r in rot}, key=lambda a: -1 if a is None else a):
        rows = sorted((r for r in rot if r["axis"] == axis), key=lambda r: r["angle"])
        label = "rotation" if axis is None else f"axis {axis}"
        ax.plot([r["angle"] for r in rows], [r[metric] for r in rows], marker="o", label=label)
    ax.axhline(summary["Orig."], color="k", linestyle="--", linewidth=1, label="original")
    if not math.isnan(summary["Ref."]):
        ax.axhline(summary["Ref."], color="gray", linestyle=":", linewidth=1, label="reflections (mean)")
    ax.set_xlabel("rotation angle (degrees)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_sweep(
    results: Sequence[dict[str, Any]], output_dir: str, prefix: str = "rotated", title: str = "Rotated evaluation"
) -> dict[str, str]:
    """Write ``<prefix>.json`` (rows + summary), ``<prefix>.csv``, ``<prefix>_summary.csv`` and ``<prefix>.png``.

    All files are written atomically (temporary file, then :func:`os.replace`).

    Returns:
        mapping from ``"json"``, ``"csv"``, ``"summary"`` and ``"png"`` to the written paths.
    """
    summary = summarize_sweep(results)
    paths = {k: os.path.join(output_dir, f"{prefix}{s}") for k, s in
             {"json": ".json", "csv": ".csv", "summary": "_summary.csv", "png": ".png"}.items()}
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in results]
    sclean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    atomic_write(paths["json"], json.dumps({"summary": sclean, "views": clean}, indent=2).encode())
    fields = ["name", "kind", "axis", "angle", "acc", "auc", "n"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(results)
    atomic_write(paths["csv"], buf.getvalue().encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(summary), lineterminator="\n")
    writer.writeheader()
    writer.writerow(summary)
    atomic_write(paths["summary"], buf.getvalue().encode())
    atomic_write(paths["png"], plot_sweep(results, summary, title))
    return paths


class RotationSweep:
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
    ) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        score_activation(task)
        self.output_dir = str(output_dir)
        self.spatial_dims = spatial_dims
        self.task = task
        self.views = make_views(spatial_dims, rotations, reflections)
        self.backend = backend
        self.background = float(background)
        self.prefix = prefix
        self.title = title
        self.results: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.paths: dict[str, str] = {}

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.COMPLETED`` (once)."""
        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        self.results = rotation_sweep(
            engine.network,
            engine.data_loader,
            self.spatial_dims,
            self.task,
            views=self.views,
            device=getattr(engine.state, "device", None) or getattr(engine, "device", None),
            backend=self.backend,
            amp=bool(getattr(engine, "amp", False)),
            inferer=getattr(engine, "inferer", None),
            background=self.background,
        )
        self.paths = write_sweep(self.results, self.output_dir, self.prefix, self.title)
        self.summary = summarize_sweep(self.results)
        s = self.summary
        engine.logger.info(
            f"Rotated evaluation ({s['n_rotations']} rotations, {s['n_reflections']} reflections, {s['n_samples']} "
            f"samples): Orig. {s['Orig.']:.4f} Rot. {s['Rot.']:.4f} Ref. {s['Ref.']:.4f} "
            f"gap {s['gap_rot']:+.4f} worst {s['worst_rot']:.4f} -> {self.paths['json']}"
        )
