"""One log line per training epoch: loss, learning rate, validation metrics and time."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.utils.io import atomic_write

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["EpochSummary"]


def _default_loss(output: Any) -> float:
    """Loss from a MONAI engine output: a list of per-sample dicts (decollated) or one dict."""
    if isinstance(output, (list, tuple)) and output:
        output = output[0]
    if isinstance(output, dict):
        output = output.get("loss")
    if output is None:
        return math.nan
    return float(output.item() if hasattr(output, "item") else output)


def _is_scalar(value: Any) -> bool:
    try:
        return not isinstance(value, (str, bytes)) and getattr(value, "ndim", 0) == 0 and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class EpochSummary:
    """Log one line per epoch with the mean training loss, the learning rate and the latest validation metrics.

    Attach it to the trainer *after* the :class:`monai.handlers.ValidationHandler`, so that the line shows the
    metrics of the validation that just ran::

        epoch 3, at most 100 | loss 0.4121 lr 0.02 | val_acc 0.9375 val_loss 0.2113 | best val_loss 0.2113 (epoch 3) | 41.2s

    When it is attached it logs the stopping rule (``rule``), and when the run ends, a last line with the best epoch,
    its validation metrics and where the results are::

        stopped: converged after 12 epochs | best epoch 9: val_loss 0.1032 val_acc 0.9500 | model runs/x/models/model.pt | TensorBoard runs/x/tensorboard

    Args:
        evaluator: the validation engine (its ``state.metrics``, ``best_metric`` and ``best_metric_epoch`` are shown);
            None logs training only.
        optimizer: optimizer whose first param group's ``lr`` is shown; None omits it.
        loss_transform: maps ``engine.state.output`` to a float loss; the default reads ``output[0]["loss"]``.
        name: logger name; None uses ``engine.logger``.
        history_path: if given, every epoch's record (loss, lr, metrics) is written there as JSON (atomically):
            ``{"history": [...], "epochs_run": N, "stopped": ...}``. ``epochs_run`` is the last completed epoch;
            ``stopped`` is None while the run goes on, then ``"converged"`` if a handler ended it through
            ``Engine.terminate`` (the early-stopping rule of :class:`~monai_sre.handlers.TrainingSchedule`) or
            ``"max_epochs"`` if it ran its ``max_epochs``. A resumed run keeps the earlier epochs' records, and a
            finished run started again (no epoch left to train) still writes ``stopped``.
        rule: the stopping rule in force, logged once when the handler is attached (before the run starts), e.g.
            :meth:`~monai_sre.handlers.TrainingSchedule.describe`; None logs none.
        model_path: the best model's checkpoint, named in the last line; None omits it.
        log_dir: the TensorBoard folder, named in the last line; None omits it.

    Raises:
        TypeError: if ``loss_transform`` is not callable.

    Example:
        >>> EpochSummary(evaluator=evaluator, optimizer=opt).attach(trainer)
    """

    def __init__(
        self,
        evaluator: Engine | None = None,
        optimizer: Any = None,
        loss_transform: Callable[[Any], float] = _default_loss,
        name: str | None = None,
        history_path: str | os.PathLike | None = None,
        rule: str | None = None,
        model_path: str | os.PathLike | None = None,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        if not callable(loss_transform):
            raise TypeError(f"loss_transform must be callable, got {type(loss_transform).__name__}.")
        self.history_path = None if history_path is None else Path(history_path)
        # records of an earlier, resumed run: kept for the epochs before the first one logged here
        self._earlier: list[dict[str, float]] = []
        if self.history_path is not None and self.history_path.is_file():
            try:
                self._earlier = list(json.loads(self.history_path.read_text())["history"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"history_path {str(self.history_path)!r} is not a history file written by EpochSummary: {e}") from e
        for arg, value in (("rule", rule), ("model_path", model_path), ("log_dir", log_dir)):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{arg} must be a string, a path or None, got {type(value).__name__}.")
        self.rule = rule
        self.model_path = model_path
        self.log_dir = log_dir
        self.evaluator = evaluator
        self.optimizer = optimizer
        self.loss_transform = loss_transform
        self.name = name
        self._sum = 0.0
        self._count = 0
        self._start = time.perf_counter()
        self.history: list[dict[str, float]] = []

    def attach(self, engine: Engine) -> None:
        """Register the loss accumulator and the epoch log (once), and log the stopping rule."""
        if not engine.has_event_handler(self._reset, Events.EPOCH_STARTED):
            if self.rule:
                self._logger(engine).info(f"stopping rule: {self.rule}")
            engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)
            engine.add_event_handler(Events.COMPLETED, self._completed)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0
        self._start = time.perf_counter()
        self._lr = None if self.optimizer is None else float(self.optimizer.param_groups[0]["lr"])

    def _accumulate(self, engine: Engine) -> None:
        value = self.loss_transform(engine.state.output)
        if not math.isnan(value):
            self._sum += value
            self._count += 1

    def __call__(self, engine: Engine) -> None:
        record: dict[str, float] = {"epoch": float(engine.state.epoch)}
        loss = self._sum / self._count if self._count else math.nan
        record["loss"] = loss
        parts = [f"epoch {engine.state.epoch}, at most {engine.state.max_epochs}", f"loss {loss:.4f}"]
        lr = getattr(self, "_lr", None)
        if lr is not None:  # the rate used during this epoch (schedulers step at its end)
            record["lr"] = lr
            parts[-1] += f" lr {lr:.4g}"
        ev = self.evaluator
        if ev is not None and ev.state is not None and ev.state.metrics:
            metrics = {k: float(v) for k, v in ev.state.metrics.items() if _is_scalar(v)}
            record.update({k: float(v) for k, v in metrics.items()})
            parts.append(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            key = getattr(ev.state, "key_metric_name", None)
            best, best_epoch = getattr(ev.state, "best_metric", None), getattr(ev.state, "best_metric_epoch", -1)
            if key is not None and best is not None and best_epoch is not None and best_epoch > 0:
                parts.append(f"best {key} {float(best):.4f} (epoch {best_epoch})")
        parts.append(f"{time.perf_counter() - self._start:.1f}s")
        self.history.append(record)
        self._write(engine, stopped=None)
        self._logger(engine).info(" | ".join(parts))

    def _logger(self, engine: Engine) -> logging.Logger:
        return engine.logger if self.name is None else logging.getLogger(self.name)

    def _completed(self, engine: Engine) -> None:
        stopped = "converged" if engine.should_terminate else "max_epochs"
        self._write(engine, stopped)
        parts = [f"stopped: {stopped} after {engine.state.epoch} epochs"]
        best = self.best_record()
        if best is not None:
            metrics = " ".join(f"{k} {v:.4f}" for k, v in best.items() if k not in ("epoch", "loss", "lr"))
            parts.append(f"best epoch {int(best['epoch'])}: {metrics}".rstrip())
        if self.model_path is not None:
            parts.append(f"model {os.fspath(self.model_path)}")
        if self.log_dir is not None:
            parts.append(f"TensorBoard {os.fspath(self.log_dir)}")
        self._logger(engine).info(" | ".join(parts))

    def best_record(self) -> dict[str, float] | None:
        """The record of the evaluator's best epoch (its key metric's best), from this run or the resumed one; None
        before any validation or without an evaluator."""
        ev = self.evaluator
        epoch = getattr(getattr(ev, "state", None), "best_metric_epoch", -1)
        if epoch is None or epoch < 1:
            return None
        first = self.history[0]["epoch"] if self.history else math.inf
        records = [r for r in self._earlier if r.get("epoch", 0) < first] + self.history
        return next((r for r in records if int(r["epoch"]) == int(epoch)), None)

    def _write(self, engine: Engine, stopped: str | None) -> None:
        """Write the history file: earlier records up to the first epoch logged here, then this run's."""
        if self.history_path is None:
            return
        first = self.history[0]["epoch"] if self.history else engine.state.epoch + 1
        records = [r for r in self._earlier if r.get("epoch", 0) < first] + self.history
        summary = {"history": records, "epochs_run": int(engine.state.epoch), "stopped": stopped}
        atomic_write(self.history_path, json.dumps(summary, indent=1))
