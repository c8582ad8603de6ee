"""How long and at which learning rate a trainer runs: until the training loss has converged (or the validation loss
stops improving), or a fixed cosine."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from monai.handlers import LrScheduleHandler
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.handlers.epoch_summary import _default_loss

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
EarlyStopping, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "EarlyStopping")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["SCHEDULES", "TrainingSchedule"]

SCHEDULES = ("plateau", "cosine")


def _check_number(name: str, value: Any, test: Callable[[float], bool], what: str) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a number (not a bool) that passes ``test``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not test(value):
        raise ValueError(f"{name} must be {what}, got {value!r}.")


class TrainingSchedule:
    """The learning-rate schedule and stopping rule of a classification run, one of two:

    * ``"plateau"`` (train to convergence, the default):

      - after every epoch, :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` (``mode="min"``) watches the epoch's
        mean *training* loss and multiplies the learning rate by ``lr_factor`` once that loss has not gone below its
        minimum by more than ``lr_threshold`` (absolute, in the loss's units) for more than ``lr_patience`` epochs in
        a row;
      - the run has **converged** when the training loss reaches such a plateau again after ``lr_reductions``
        reductions: the optimiser no longer makes progress even at the smallest learning rate, so the run ends;
      - optionally (``patience`` not None), Ignite's :class:`~ignite.handlers.EarlyStopping` ends the run at the
        ``patience``-th validation in a row whose ``metric`` (the validation loss) is not lower than the best by more
        than ``min_delta``: a guard against training on while the model only overfits. The best checkpoint is chosen
        on validation either way;
      - the trainer's ``max_epochs`` caps the run.

      The rule follows the training loss rather than the validation loss because the training loss is an average
      over the whole training split: on small validation splits (78-98 images) the validation loss of a network with
      BatchNorm jumps by a factor of two or more between epochs, and a rule driven by it lowers the learning rate, or
      stops, at the first lucky dip (see ``docs/experiments.md``).
    * ``"cosine"``: :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` over ``max_epochs``, stepped after every
      epoch, and no early stopping (the fixed schedule of the paper). A run resumed with a larger ``max_epochs``
      than it was started with (``--epochs 12`` on a run of 8) stretches the restored cosine: its ``T_max`` becomes
      ``max_epochs`` and the learning rate continues on that longer cosine from the restored epoch, as if the run
      had been started with the new length (the epochs already trained keep the old schedule). Without this the
      extra epochs would train at a learning rate of about 0. ``extend_schedule=False`` refuses the change instead.

    Attach this handler to the trainer; it attaches the validation guard to the evaluator itself, so the config needs
    no trainer reference among the evaluator's handlers.

    Exact resume: save :attr:`lr_scheduler` and this handler (its ``state_dict`` holds the number of reductions, why
    the run stopped, and the early-stopping counter and best score) in the checkpoint. A run that had already stopped
    by the rule and is started again (restored by a handler attached before this one, e.g.
    :class:`~monai_sre.handlers.ResumeFromCheckpoint`) ends at once without training.

    Args:
        optimizer: the trainer's optimizer.
        evaluator: the validation engine whose ``state.metrics[metric]`` is the loss the guard watches
            (``"plateau"``).
        schedule: ``"plateau"`` or ``"cosine"``.
        max_epochs: length of the cosine (``"cosine"``, required there; ignored by ``"plateau"``).
        metric: name of the evaluator's loss metric.
        lr_factor: factor of each learning-rate reduction, in (0, 1).
        lr_patience: epochs without a new minimum of the training loss tolerated before a reduction.
        lr_threshold: how much lower than its minimum the training loss must be to count as a new one.
        lr_reductions: reductions before convergence; the next plateau of the training loss ends the run.
        patience: non-improving validations in a row that end the run (the overfitting guard); None: no guard.
        min_delta: how much lower than the best a validation loss must be to count as an improvement (guard).
        loss_transform: maps the trainer's ``state.output`` to the iteration's loss; the default reads MONAI's
            ``output[0]["loss"]``.
        extend_schedule: ``"cosine"``: stretch a restored cosine to ``max_epochs`` (True) or refuse (False).

    Raises:
        ValueError: for an unknown ``schedule``, a number out of range (the message names it), a ``"plateau"``
            schedule without an evaluator, or a ``"cosine"`` one without ``max_epochs``.
        KeyError: at a validation, if the evaluator did not compute ``metric``.
        ValueError: when the trainer starts, if a restored cosine's length differs from ``max_epochs`` and
            ``extend_schedule`` is False, or ``max_epochs`` ends before the epochs already trained.

    Example:
        >>> schedule = TrainingSchedule(opt, evaluator, "plateau", lr_reductions=2)  # doctest: +SKIP
        >>> schedule.attach(trainer)  # doctest: +SKIP
        >>> to_save = {"lr_scheduler": schedule.lr_scheduler, "training_schedule": schedule}  # doctest: +SKIP
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        evaluator: Engine | None = None,
        schedule: str = "plateau",
        max_epochs: int | None = None,
        metric: str = "val_loss",
        lr_factor: float = 0.2,
        lr_patience: int = 4,
        lr_threshold: float = 1e-3,
        lr_reductions: int = 2,
        patience: int | None = None,
        min_delta: float = 0.0,
        loss_transform: Callable[[Any], float] = _default_loss,
        extend_schedule: bool = True,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a non-empty string, got {metric!r}.")
        if not callable(loss_transform):
            raise TypeError(f"loss_transform must be callable, got {type(loss_transform).__name__}.")
        _check_number("lr_factor", lr_factor, lambda v: 0 < v < 1, "a number in (0, 1)")
        _check_number("lr_patience", lr_patience, lambda v: isinstance(v, int) and v >= 0, "an int >= 0")
        _check_number("lr_reductions", lr_reductions, lambda v: isinstance(v, int) and v >= 0, "an int >= 0")
        _check_number("lr_threshold", lr_threshold, lambda v: v >= 0, "a number >= 0")
        if patience is not None:
            _check_number("patience", patience, lambda v: isinstance(v, int) and v >= 1, "an int >= 1 or None")
        _check_number("min_delta", min_delta, lambda v: v >= 0, "a number >= 0")
        self.schedule = schedule
        self.evaluator = evaluator
        self.metric = metric
        self.patience = patience
        self.lr_reductions = lr_reductions
        self.min_delta = float(min_delta)
        self.loss_transform = loss_transform
        self.max_epochs = max_epochs
        self.extend_schedule = bool(extend_schedule)
        self.reductions = 0  # learning-rate reductions so far
        self.stopped_by: str | None = None  # "training loss" once converged by the plateau rule
        self.stopper: EarlyStopping | None = None  # created by attach, which gives the trainer to stop
        self._pending: dict | None = None  # early-stopping state loaded before attach
        self._sum, self._count = 0.0, 0
        if schedule == "cosine":
            _check_number("max_epochs", max_epochs, lambda v: isinstance(v, int) and v >= 1, "an int >= 1 (cosine)")
            self.lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
            self._lr_handler = LrScheduleHandler(self.lr_scheduler, print_lr=False)
        else:
            if evaluator is None:
                raise ValueError("evaluator is required for schedule='plateau': it validates, and its loss is the guard.")
            self.lr_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=lr_factor, patience=lr_patience, threshold=lr_threshold,
                threshold_mode="abs",
            )

    def describe(self) -> str:
        """The stopping rule in force, in one line, e.g. for the first line of a training's log."""
        cap = "" if self.max_epochs is None else f", at most {self.max_epochs} epochs"
        if self.schedule == "cosine":
            length = "" if self.max_epochs is None else f" over {self.max_epochs} epochs"
            return f"fixed length: a cosine learning rate{length}, no early stopping"
        lr = self.lr_scheduler
        rule = (f"convergence of the training loss: the run ends at its plateau after {self.lr_reductions} "
                f"learning-rate reductions (factor {lr.factor:g}, patience {lr.patience} epochs, threshold "
                f"{lr.threshold:g}){cap}")
        if self.patience is not None:
            rule += f"; or after {self.patience} validations without a lower {self.metric} (min_delta {self.min_delta:g})"
        return rule

    def loss(self, evaluator: Engine) -> float:
        """The evaluator's ``metric``; NaN becomes +inf, so a diverged validation never counts as an improvement."""
        metrics = evaluator.state.metrics
        if self.metric not in metrics:
            raise KeyError(
                f"metric {self.metric!r} was not computed by the evaluator (it has {sorted(metrics)}); add it to the "
                f"evaluator's metrics, e.g. ignite.metrics.Loss as validate#additional_metrics#{self.metric}."
            )
        value = float(metrics[self.metric])
        return math.inf if math.isnan(value) else value

    @property
    def converged(self) -> bool:
        """True once the rule has ended the run (``"plateau"`` only): training-loss convergence or the guard."""
        return self.stopped_by is not None or (
            self.stopper is not None and self.patience is not None and self.stopper.counter >= self.patience
        )

    def attach(self, engine: Engine) -> None:
        """Attach to the trainer ``engine`` (once): the learning-rate step and, for ``"plateau"``, the rule, the guard
        on the evaluator and the check at ``Events.STARTED`` that ends an already converged run."""
        if self.schedule == "cosine":
            if not engine.has_event_handler(self._lr_handler, Events.EPOCH_COMPLETED):
                self._lr_handler.attach(engine)
                engine.add_event_handler(Events.STARTED, self._fit_cosine)
            return
        if engine.has_event_handler(self._stop_if_converged, Events.STARTED):
            return
        if self.patience is not None:
            # the 4th argument is the minimum improvement (``min_delta``; ``threshold`` since Ignite 0.5.5)
            self.stopper = EarlyStopping(self.patience, lambda ev: -self.loss(ev), engine, self.min_delta)
            if self._pending is not None:
                self.stopper.load_state_dict(self._pending)
                self._pending = None
            self.evaluator.add_event_handler(Events.EPOCH_COMPLETED, self._check, engine)
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._step)
        engine.add_event_handler(Events.STARTED, self._stop_if_converged)

    def _fit_cosine(self, engine: Engine) -> None:
        """At the start of a (resumed) run: stretch a restored cosine to ``max_epochs``, or refuse."""
        scheduler = self.lr_scheduler
        if scheduler.T_max == self.max_epochs:
            return
        what = (f"the restored cosine schedule runs over T_max={scheduler.T_max} epochs but the run is configured "
                f"with {self.max_epochs} epochs")
        if not self.extend_schedule:
            raise ValueError(f"{what}. Use the checkpoint's length, or set extend_schedule=True to stretch it.")
        if self.max_epochs <= scheduler.last_epoch:
            raise ValueError(
                f"{what}, which ends before the {scheduler.last_epoch} epochs already trained. Configure at least "
                f"{scheduler.last_epoch + 1} epochs, or train into a new folder (--output_dir)."
            )
        self.stretch(self.max_epochs)
        engine.logger.info(f"{what}: extended to T_max={self.max_epochs}, learning rate now "
                           f"{scheduler.optimizer.param_groups[0]['lr']:.6g}.")

    def stretch(self, t_max: int) -> None:
        """Give the cosine the length ``t_max``, keeping its epoch: the learning rates become the closed form
        ``eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2``, set through the optimizer's parameter
        groups and the scheduler's ``load_state_dict``."""
        scheduler = self.lr_scheduler
        t = scheduler.last_epoch
        lrs = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
               for base in scheduler.base_lrs]
        for group, lr in zip(scheduler.optimizer.param_groups, lrs):
            group["lr"] = lr
        state = scheduler.state_dict()
        state["T_max"] = t_max
        scheduler.load_state_dict(state)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0

    def _accumulate(self, engine: Engine) -> None:
        self._sum += float(self.loss_transform(engine.state.output))
        self._count += 1

    def _step(self, engine: Engine) -> None:
        """End of an epoch: step the plateau scheduler on the mean training loss; converge at the plateau that comes
        after ``lr_reductions`` reductions."""
        mean = self._sum / self._count if self._count else math.nan
        mean = math.inf if math.isnan(mean) else mean
        before = [g["lr"] for g in self.lr_scheduler.optimizer.param_groups]
        self.lr_scheduler.step(mean)
        after = [g["lr"] for g in self.lr_scheduler.optimizer.param_groups]
        if any(a < b for a, b in zip(after, before)):
            self.reductions += 1
            if self.reductions > self.lr_reductions:
                # the run ends here: leave the last learning rate in place, so that the checkpoint shows what it ran at
                for group, lr in zip(self.lr_scheduler.optimizer.param_groups, before):
                    group["lr"] = lr
                self.stopped_by = "training loss"
                engine.logger.info(
                    f"Converged: the training loss ({mean:.6g}) stopped improving after {self.lr_reductions} "
                    f"learning-rate reductions; stopping after epoch {engine.state.epoch}."
                )
                engine.terminate()

    def _check(self, evaluator: Engine, trainer: Engine) -> None:
        if self.converged:  # already ended by the training-loss rule this epoch
            return
        self.stopper(evaluator)
        if self.converged:
            trainer.logger.info(
                f"Stopping: {self.metric} has not improved for {self.stopper.counter} validations (patience "
                f"{self.patience}, best {-self.stopper.best_score:.6g}); stopping after epoch {trainer.state.epoch}."
            )

    def _stop_if_converged(self, engine: Engine) -> None:
        if self.converged:
            engine.logger.info(
                f"Already converged after epoch {engine.state.epoch}: nothing to train. A larger patience or "
                f"lr_reductions trains on; resume=false starts a fresh run."
            )
            engine.terminate()

    def state_dict(self) -> dict:
        """``{"schedule", "reductions", "stopped_by", "early_stop": {"counter", "best_score", ...}}`` (``"cosine"``:
        only ``schedule``)."""
        state: dict[str, Any] = {"schedule": self.schedule}
        if self.schedule == "cosine":
            return state
        state.update(reductions=self.reductions, stopped_by=self.stopped_by)
        if self.stopper is not None:
            state["early_stop"] = dict(self.stopper.state_dict())
        elif self._pending is not None:
            state["early_stop"] = dict(self._pending)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s output. A larger ``lr_reductions`` than the saved run's lets it train on.

        Raises:
            ValueError: if it was written with another ``schedule``.
        """
        saved = state_dict.get("schedule")
        if saved != self.schedule:
            raise ValueError(
                f"the checkpoint was trained with schedule={saved!r} but this run is configured with "
                f"schedule={self.schedule!r}; use the checkpoint's schedule, or start a fresh run (resume=false or "
                f"another output_dir)."
            )
        self.reductions = int(state_dict.get("reductions", 0))
        stopped_by = state_dict.get("stopped_by")
        self.stopped_by = stopped_by if stopped_by is not None and self.reductions > self.lr_reductions else None
        early_stop = state_dict.get("early_stop")
        if early_stop is None:
            return
        if self.stopper is None:
            self._pending = dict(early_stop)
        else:
            self.stopper.load_state_dict(early_stop)
