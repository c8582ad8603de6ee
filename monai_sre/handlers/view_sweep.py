"""The one mechanism behind every rotated evaluation: a dict of Ignite/MONAI metrics over a list of views.

:func:`view_sweep` runs one MONAI :class:`~monai.engines.SupervisedEvaluator` per distinct view (views that show the
same thing, the original and 0/360-degree rotations, share one run; :attr:`monai_sre.transforms.View.key`). The
view is applied in the evaluator's ``prepare_batch``; the metrics are any Ignite ``Metric`` (Ignite's ``Accuracy``,
MONAI's ``ROCAUC``, a MONAI ``IgniteMetricHandler`` around ``DiceMetric``), attached under their names. The data is
read once per distinct view. :func:`write_views` writes the rows, their summary and a plot against angle, all
atomically. :class:`ViewSweep` is the Ignite handler that runs a sweep when an evaluator completes; the
classification (:class:`~monai_sre.handlers.RotationSweep`) and segmentation
(:class:`~monai_sre.handlers.SegmentationRotationSweep`) sweeps are two sets of metrics on it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import PrepareBatch
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.transforms.views import View, make_views
from monai_sre.utils.io import atomic_write
from monai_sre.utils.plots import plot_sweep

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["BACKENDS", "ViewSweep", "check_backend", "view_sweep", "write_views"]

logger = logging.getLogger(__name__)
# the per-view evaluators log here; Ignite's start / epoch / finish lines of 40-odd runs are left out
_view_logger = logging.getLogger(f"{__name__}.view")
_view_logger.setLevel(logging.WARNING)

#: rotation back ends: ``"auto"`` (batched MONAI affine on CUDA, TorchIO per sample on CPU), ``"monai"``, ``"torchio"``
BACKENDS = ("auto", "monai", "torchio")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto', 'monai' or 'torchio', got {backend!r}.")
    return backend


def network_device(network: torch.nn.Module, device: torch.device | str | None = None) -> torch.device:
    """``device``, or that of the network's first parameter (CPU without parameters)."""
    if device is None:
        param = next(iter(network.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    return torch.device(device)


def view_sweep(
    network: torch.nn.Module,
    dataloader: Any,
    views: Sequence[View],
    prepare_batch: Callable[[View], PrepareBatch],
    metrics: Callable[[], Mapping[str, Any]],
    device: torch.device | str | None = None,
    inferer: Callable[[torch.Tensor, torch.nn.Module], torch.Tensor] | None = None,
    postprocessing: Callable | None = None,
    amp: bool = False,
    per_class: Sequence[str] = (),
    label: str = "rotated evaluation",
    keep: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The metrics of ``network`` on every view of the data in ``dataloader``.

    Args:
        network: the network; evaluated in eval mode, its mode restored afterwards.
        dataloader: iterable of batch dicts, re-read for every distinct view.
        views: the views (:func:`monai_sre.transforms.make_views`).
        prepare_batch: ``view -> prepare_batch`` of the evaluator: moves a batch to the device in that view. It
            counts the samples it prepared in ``n_samples``.
        metrics: returns a fresh ``{name: metric}`` per view (Ignite ``Metric`` instances, attached by name).
        device: device of the network input; default the network's.
        inferer: ``(inputs, network) -> outputs``; default ``network(inputs)``.
        postprocessing: the evaluator's ``postprocessing``.
        amp: autocast on CUDA.
        per_class: metrics whose value is a vector (one per class): the row gets their mean under the name and
            ``<name>_<c>`` for class ``c = 1, 2, ...``. Other vectors are averaged.
        label: the start of each log line.
        keep: metrics whose value the row keeps whole, as the tensor the metric computed (e.g. per-sample scores).

    Returns:
        one dict per view, in order: ``name``, ``kind``, ``axis``, ``angle``, a float per metric (the tensor for a
        metric in ``keep``), ``n``.

    Raises:
        ValueError: for an empty dataloader.
    """
    if hasattr(dataloader, "__len__") and len(dataloader) == 0:
        raise ValueError("dataloader yielded no batches.")
    device = network_device(network, device)
    done: dict[str, dict[str, Any]] = {}
    results = []
    was_training = network.training
    network.eval()  # also for what prepare_batch computes with it (the evaluator sets eval mode after that)
    try:
        for i, view in enumerate(views, start=1):
            if view.key not in done:
                prepare = prepare_batch(view)
                evaluator = SupervisedEvaluator(
                    device=device, val_data_loader=dataloader, network=network, prepare_batch=prepare,
                    inferer=inferer, postprocessing=postprocessing, amp=amp and device.type == "cuda",
                )
                for name, metric in metrics().items():
                    metric.attach(evaluator, name)
                evaluator.logger = _view_logger  # one line per view below instead of Ignite's
                evaluator.run()
                if prepare.n_samples == 0:
                    raise ValueError("dataloader yielded no batches.")
                row: dict[str, Any] = {}
                for name, value in evaluator.state.metrics.items():
                    if name in keep:
                        row[name] = torch.as_tensor(value)
                        continue
                    value = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
                    row[name] = float(value.mean())
                    if name in per_class:
                        row.update({f"{name}_{c + 1}": float(v) for c, v in enumerate(value)})
                done[view.key] = {**row, "n": prepare.n_samples}
                shown = " ".join(f"{k} {v:.4f}" for k, v in row.items()
                                 if k in evaluator.state.metrics and k not in keep)
                logger.info(f"{label}: view {view.name} ({i}/{len(views)}): {shown}")
            results.append({"name": view.name, "kind": view["kind"], "axis": view["axis"], "angle": view["angle"],
                            **done[view.key]})
    finally:
        network.train(was_training)
    return results


def _csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _no_nan(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def write_views(
    results: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    output_dir: str,
    prefix: str,
    panels: Sequence[Mapping[str, Any]],
    metric: str | Sequence[str],
    ylabel: str | Sequence[str],
) -> dict[str, str]:
    """Write ``<prefix>.csv`` (one row per view), ``<prefix>_summary.csv``, ``<prefix>.json`` (summary and views,
    NaN as null) and ``<prefix>.png`` (:func:`monai_sre.utils.plot_sweep` of ``panels``, one row of plots per
    ``metric``), each atomically.

    Returns:
        mapping from ``"json"``, ``"csv"``, ``"summary"`` and ``"png"`` to the written paths.
    """
    paths = {k: os.path.join(output_dir, f"{prefix}{s}") for k, s in
             {"json": ".json", "csv": ".csv", "summary": "_summary.csv", "png": ".png"}.items()}
    atomic_write(paths["csv"], _csv(results))
    atomic_write(paths["summary"], _csv([summary]))
    document = {"summary": _no_nan(summary), "views": [_no_nan(r) for r in results]}
    atomic_write(paths["json"], json.dumps(document, indent=2).encode())
    atomic_write(paths["png"], plot_sweep(panels, metric=metric, ylabel=ylabel))
    return paths


class ViewSweep:
    """Ignite handler: when an evaluator completes, run a sweep on its network, data loader, inferer and AMP
    setting (so it sees the weights the evaluator used, e.g. restored by a ``CheckpointLoader``), then write it.

    Subclasses give the sweep (:meth:`sweep`), its summary (``summarize``), the writer (``writer``, called with
    ``(results, output_dir, prefix, title)``) and the log line (:meth:`describe`); after a run ``results``,
    ``summary`` and ``paths`` hold what was measured and written.

    Args:
        output_dir: folder of the outputs.
        spatial_dims: 2 or 3.
        rotations: ``(axis, angle)`` pairs; None uses the paper's protocol (39 views in 3D, 37 in 2D).
        reflections: axes to flip; None flips every spatial axis.
        backend: rotation back end (``"auto"``, ``"monai"``, ``"torchio"``).
        prefix: output file prefix.
        title: plot title.
    """

    summarize: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]
    writer: Callable[..., dict[str, str]]

    def __init__(self, output_dir: str, spatial_dims: int, rotations: Sequence[tuple[int | None, float]] | None,
                 reflections: Sequence[int] | None, backend: str, prefix: str, title: str) -> None:
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        self.output_dir, self.spatial_dims = str(output_dir), spatial_dims
        self.views = make_views(spatial_dims, rotations, reflections)
        self.backend, self.prefix, self.title = check_backend(backend), prefix, title
        self.results: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.paths: dict[str, str] = {}

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.COMPLETED`` (once)."""
        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        kwargs = {"device": getattr(engine.state, "device", None) or getattr(engine, "device", None),
                  "inferer": getattr(engine, "inferer", None), "amp": bool(getattr(engine, "amp", False))}
        self.results = self.sweep(engine.network, engine.data_loader, **kwargs)
        self.summary = self.summarize(self.results)
        self.paths = self.writer(self.results, self.output_dir, self.prefix, self.title)
        engine.logger.info(f"{self.describe(self.summary)} -> {self.paths['csv']}")

    def sweep(self, network: torch.nn.Module, dataloader: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def describe(self, summary: Mapping[str, Any]) -> str:
        raise NotImplementedError
