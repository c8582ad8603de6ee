"""Ignite handlers that save, load and resume checkpoints; the files and the run record are
:mod:`monai_sre.checkpoint`'s.

:class:`SRECheckpointSaver` saves through Ignite's :class:`~ignite.handlers.Checkpoint` with atomic writes
(:class:`~monai_sre.checkpoint.FixedNameDiskSaver`): an interval checkpoint under a fixed name (``last.pt``) and
the best one by a key metric (``model.pt``). :class:`ResumeFromCheckpoint` restores ``last.pt`` when it exists and
its run record matches the configured one, refuses in one line when it does not, and starts fresh otherwise, so the
same command starts or resumes a run and never resumes another. :class:`SRECheckpointLoader` is MONAI's loader
whose errors name the file and the setting that differs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from monai.handlers import CheckpointLoader
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.checkpoint import (
    FixedNameDiskSaver,
    RunRecord,
    fits,
    non_finite,
    read_checkpoint,
    record_of,
    remove_stale_temporaries,
    resume_refusal,
)

Checkpoint, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Checkpoint")
idist, _ = optional_import("ignite.distributed", IgniteInfo.OPT_IMPORT_VERSION, min_version)
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["ResumeFromCheckpoint", "SRECheckpointLoader", "SRECheckpointSaver"]

logger = logging.getLogger(__name__)

_BEST_KEYS = ("best_metric", "best_metric_epoch")
_SCALER_KEY = "grad_scaler"


def _scaler_of(engine: Engine) -> dict:
    """``{"grad_scaler": engine.scaler_}`` for a MONAI trainer running with AMP, else ``{}``."""
    scaler = getattr(engine, "scaler_", None)
    return {_SCALER_KEY: scaler} if scaler is not None and hasattr(scaler, "state_dict") else {}


class SRECheckpointSaver:
    """Atomic checkpoints of a MONAI engine: the interval one under a fixed name, the best one by the key metric.

    Both go through Ignite's :class:`~ignite.handlers.Checkpoint` and ``DiskSaver(atomic=True)``
    (:class:`~monai_sre.checkpoint.FixedNameDiskSaver`), so a killed run never leaves a truncated file. The
    handler's ``state_dict`` holds the best-metric bookkeeping, so saved inside the interval checkpoint it lets a
    resumed run keep comparing to the old best.

    When the engine starts, the temporary files a killed write left in ``save_dir`` are removed (the run holds its
    folder's lock, so no other process writes there). Weights with NaN/Inf values are never written: the save
    raises instead, naming the file and the epoch, and the previous file is kept.

    Args:
        save_dir: output folder.
        save_dict: objects to save, e.g. ``{"model": net, "optimizer": opt, "record": run_record}``.
        save_interval: save every this many epochs (0: no interval checkpoint).
        interval_filename: fixed name of the interval checkpoint (e.g. ``"last.pt"``); None keeps Ignite's names.
        save_key_metric: save the model with the best key metric of the engine (an evaluator).
        key_metric_name: the metric; None: the engine's ``state.key_metric_name`` (MONAI evaluators).
        key_metric_negative_sign: lower is better (a loss).
        key_metric_filename: fixed name of the best checkpoint (e.g. ``"model.pt"``).
        engine_key: if given, the engine this handler is attached to (and its AMP grad scaler) is saved too, under
            this key (e.g. ``"trainer"``, to resume epoch and iteration).

    Raises:
        ValueError: if ``engine_key`` is already a key of ``save_dict``, or nothing is to be saved.
        RuntimeError: when saving, if a network of ``save_dict`` holds NaN/Inf values.
        OSError: when saving, if the file cannot be written (the message names it).

    Example:
        >>> saver = SRECheckpointSaver("runs/models", {"model": net}, save_interval=1, interval_filename="last.pt")
        >>> saver.attach(trainer)  # doctest: +SKIP
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping,
        save_interval: int = 0,
        interval_filename: str | None = None,
        save_key_metric: bool = False,
        key_metric_name: str | None = None,
        key_metric_negative_sign: bool = False,
        key_metric_filename: str | None = None,
        engine_key: str | None = None,
    ) -> None:
        self.save_dict = dict(save_dict)
        if engine_key is not None and engine_key in self.save_dict:
            raise ValueError(f"engine_key {engine_key!r} is already a key of save_dict {sorted(self.save_dict)}.")
        if not save_interval and not save_key_metric:
            raise ValueError("nothing to save: set save_interval > 0 or save_key_metric=True.")
        self.save_dir = os.fspath(save_dir)
        self.save_interval = int(save_interval)
        self.interval_filename = interval_filename
        self.save_key_metric = bool(save_key_metric)
        self.key_metric_name = key_metric_name
        self.sign = -1.0 if key_metric_negative_sign else 1.0
        self.key_metric_filename = key_metric_filename
        self.engine_key = engine_key
        self.engine: Engine | None = None
        # built here, on every rank: Ignite's first distributed query (in DiskSaver) is a collective operation
        self.interval = self._checkpoint(interval_filename, _epoch, "epoch") if save_interval else None
        self.best = self._checkpoint(key_metric_filename, self._score, "key_metric") if save_key_metric else None
        self.cleaned = False

    def _checkpoint(self, filename: str | None, score: Callable[[Engine], float], name: str) -> Checkpoint:
        """An Ignite ``Checkpoint`` of the saved objects that keeps one file, atomically under ``filename``."""
        return Checkpoint(self.save_dict, FixedNameDiskSaver(self.save_dir, filename), score_function=score,
                          score_name=name, n_saved=1)

    def _score(self, engine: Engine) -> float:
        name = self.key_metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None:
            raise ValueError("save_key_metric=True needs key_metric_name or an engine with a key metric.")
        return self.sign * float(engine.state.metrics[name])

    def attach(self, engine: Engine) -> None:
        """Save after every ``save_interval`` epochs and/or at the end of each run of ``engine`` (the key metric)."""
        self.engine = engine
        if self.engine_key is not None:
            self.save_dict.update({self.engine_key: engine, **_scaler_of(engine)})
        if not engine.has_event_handler(self.remove_stale, Events.STARTED):
            engine.add_event_handler(Events.STARTED, self.remove_stale)
        for checkpoint, event in ((self.interval, Events.EPOCH_COMPLETED(every=self.save_interval or 1)),
                                  (self.best, Events.EPOCH_COMPLETED)):
            if checkpoint is not None:
                checkpoint.to_save = dict(self.save_dict)
                engine.add_event_handler(event, self._save, checkpoint)

    def remove_stale(self, engine: Engine | None = None) -> None:
        """Remove the temporary files of interrupted writes from ``save_dir``, once, on the saving rank."""
        if not self.cleaned and idist.get_rank() == 0:
            remove_stale_temporaries(self.save_dir)
        self.cleaned = True

    def _save(self, engine: Engine, checkpoint: Checkpoint) -> None:
        """Save through ``checkpoint`` unless a network holds NaN/Inf values."""
        bad = non_finite(checkpoint.to_save)
        if bad:
            names = ", ".join(f"{k!r} ({n} values)" for k, n in bad.items())
            filename = checkpoint.save_handler.filename
            target = os.path.join(self.save_dir, filename) if filename else f"a checkpoint into {self.save_dir}"
            raise RuntimeError(
                f"not saving {target}: the weights of {names} are NaN/Inf after epoch {engine.state.epoch}; the "
                f"previous file is kept. Training diverged: lower --learning_rate, or check the data."
            )
        checkpoint(engine)

    def state_dict(self) -> dict:
        """The best checkpoint's bookkeeping (Ignite's ``Checkpoint`` state) and the engine's ``best_metric`` and
        ``best_metric_epoch`` (MONAI evaluators); ``{}`` without a key metric."""
        if self.best is None:
            return {}
        state = dict(self.best.state_dict())
        engine_state = getattr(self.engine, "state", None)
        for key in _BEST_KEYS:
            if hasattr(engine_state, key):
                state[key] = float(getattr(engine_state, key))
        return state

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore :meth:`state_dict`'s output; an empty dict is ignored."""
        state = dict(state_dict)
        best = {key: state.pop(key) for key in _BEST_KEYS if key in state}
        engine_state = getattr(self.engine, "state", None)
        for key, value in best.items():
            if engine_state is not None:
                setattr(engine_state, key, int(value) if key == "best_metric_epoch" else value)
        if state and self.best is not None:
            self.best.load_state_dict(state)


def _epoch(engine: Engine) -> int:
    return engine.state.epoch


def _flat(record: Any) -> Mapping | None:
    return record.flat if isinstance(record, RunRecord) else record


class SRECheckpointLoader(CheckpointLoader):
    """:class:`monai.handlers.CheckpointLoader` whose errors name the file and what to do: an unreadable (truncated
    or corrupt) or refused file, and weights that do not fit the network (one line naming the setting that differs,
    instead of PyTorch's list of tensors). Loads plain state dicts and checkpoint dicts (``{"model": ...,
    "record": ...}``) alike.

    Args:
        record: this run's settings (a flat dict, e.g. from :func:`monai_sre.workflows.trained_record`, or a
            :class:`~monai_sre.checkpoint.RunRecord`), compared with the checkpoint's record when the weights do not
            fit; None summarises the tensors instead.
        args, kwargs: MONAI's :class:`~monai.handlers.CheckpointLoader` arguments.

    Raises:
        FileNotFoundError: when run, if ``load_path`` does not exist.
        RuntimeError: when run, if ``load_path`` cannot be read as a checkpoint.
        ValueError: when run, if its weights do not fit the network.
    """

    def __init__(self, *args: Any, record: Mapping | RunRecord | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.record = _flat(record)

    def __call__(self, engine: Engine) -> None:
        checkpoint = read_checkpoint(self.load_path, map_location="cpu")
        with fits(self.load_path, self.load_dict, checkpoint, self.record):
            super().__call__(engine)


class ResumeFromCheckpoint:
    """At ``Events.STARTED``: resume from ``load_path`` if it exists and holds the same run, otherwise start fresh.

    The run is the same when the checkpoint's run record (:class:`~monai_sre.checkpoint.RunRecord`, the object of
    ``load_dict`` of that type) equals the configured one, apart from the record's resumable keys. Otherwise the
    handler refuses with one line naming each differing key with both values, and the two ways out (another
    ``--output_dir``, or deleting the run folder). A checkpoint written before the run record was kept is compared
    on the network and preprocessing it records, with one warning.

    Loading goes through :class:`monai.handlers.CheckpointLoader`, which restores the engine's epoch and iteration
    while keeping the configured ``max_epochs``. A resumed run is exact (bit-identical to an uninterrupted one) when
    every random draw of an epoch depends only on the seed and the epoch number, see
    :class:`~monai_sre.handlers.EpochSeeder`. Once the run is started or resumed, the record is written to
    ``<run_dir>/record.json``.

    Args:
        load_path: checkpoint file, typically ``<ckpt_dir>/last.pt`` written by :class:`SRECheckpointSaver`.
        load_dict: objects to restore, same keys as the saver's ``save_dict``.
        enabled: False disables resuming (a fresh run that overwrites old checkpoints).
        map_location: passed to :func:`torch.load`.
        engine_key: if given, the engine this handler is attached to is restored too, under this key (see
            :class:`SRECheckpointSaver`), with its AMP grad scaler when the checkpoint holds one.
        run_dir: the run folder: where ``record.json`` is written, and the folder the refusal says to delete.

    Raises:
        TypeError: if ``load_dict`` is not a non-empty mapping, or ``enabled`` is not a bool.
        RuntimeError: when run, if the checkpoint cannot be read (truncated or corrupt; the message names it).
        ValueError: when run, if the checkpoint holds another run (its record differs), or lacks an object of
            ``load_dict``.
    """

    def __init__(
        self,
        load_path: str,
        load_dict: Mapping,
        enabled: bool = True,
        map_location: Any = None,
        engine_key: str | None = None,
        run_dir: str | None = None,
    ) -> None:
        if not isinstance(load_dict, Mapping) or not load_dict:
            raise TypeError(f"load_dict must be a non-empty mapping of objects to restore, got {load_dict!r}.")
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be True or False, got {enabled!r}.")
        self.load_path = str(load_path)
        self.load_dict = dict(load_dict)
        self.enabled = enabled
        self.map_location = map_location
        self.engine_key = engine_key
        self.run_dir = run_dir
        self.resumed_epoch: int | None = None
        records = [(k, v) for k, v in self.load_dict.items() if isinstance(v, RunRecord)]
        self.record_key, self.record = records[0] if records else (None, None)

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.STARTED`` (once)."""
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if not engine.has_event_handler(self, Events.STARTED):
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if self.enabled and os.path.isfile(self.load_path):
            self._resume(engine)
        elif self.enabled:
            engine.logger.info(f"No checkpoint at {self.load_path}: starting a fresh run.")
        if self.record is not None and self.run_dir is not None:
            self.record.write(self.run_dir)

    def _resume(self, engine: Engine) -> None:
        saved = read_checkpoint(self.load_path, map_location="cpu")
        load_dict = dict(self.load_dict)
        if self.record is not None:
            self._check_record(saved, load_dict)
        missing = sorted(k for k in load_dict if k not in saved)
        if missing:
            raise ValueError(
                f"{self.load_path} has no {missing} (it holds {sorted(saved)}): it was written by a run configured "
                f"differently. Train this run into a new folder (--output_dir <folder>), or delete "
                f"{self.run_dir or os.path.dirname(self.load_path)} to replace that run."
            )
        if self.engine_key is not None and _SCALER_KEY in saved:
            load_dict.update(_scaler_of(engine))
        with fits(self.load_path, load_dict, saved, _flat(self.record)):
            CheckpointLoader(self.load_path, load_dict, map_location=self.map_location)(engine)
        self.resumed_epoch = int(engine.state.epoch)
        engine.logger.info(
            f"Resumed from {self.load_path} after epoch {engine.state.epoch} (max_epochs {engine.state.max_epochs})."
        )

    def _check_record(self, saved: Mapping, load_dict: dict) -> None:
        """Refuse a checkpoint of another run; one without a record or with an older one is checked as far as it
        can be, with one warning."""
        record = record_of(saved)
        if record is None:
            logger.warning(
                "%s has no record of the run it belongs to (written by an older version): resuming with this run's "
                "settings, which must be the ones it was trained with.", self.load_path)
        elif self.record_key not in saved:
            logger.warning(
                "%s records only the network and preprocessing it was trained with (written by an older version): "
                "the data, optimiser, seed and augmentation cannot be checked.", self.load_path)
        if self.record_key not in saved:
            del load_dict[self.record_key]
        refusal = resume_refusal(self.load_path, record, self.record, self.run_dir) if record else None
        if refusal:
            raise ValueError(refusal)
