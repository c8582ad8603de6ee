"""Atomic checkpoints and resume-from-last for MONAI/Ignite training.

MONAI's :class:`monai.handlers.CheckpointSaver` writes with ``atomic=False``, so a run killed while saving can leave a
truncated file. :class:`SRECheckpointSaver` keeps MONAI's behaviour and arguments but swaps in
:class:`AtomicDiskSaver` (write to a temporary file in the same folder, then :func:`os.replace`), adds a fixed
filename for the interval checkpoint (``last.pt``) and exposes ``state_dict`` so the best-metric bookkeeping can be
stored inside the last checkpoint. :class:`ResumeFromCheckpoint` restores such a checkpoint when it exists and does
nothing otherwise, so the same config starts fresh or resumes.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.utils import IgniteInfo, min_version, optional_import

DiskSaver, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "DiskSaver")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["AtomicDiskSaver", "SRECheckpointSaver", "SRECheckpointLoader", "ResumeFromCheckpoint", "read_checkpoint"]

logger = logging.getLogger(__name__)

#: what a truncated or corrupt ``torch.save`` file raises from :func:`torch.load`
_UNREADABLE = (OSError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)


def read_checkpoint(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)`` whose failure names the file and what to do.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        RuntimeError: if the file cannot be read (truncated by a killed copy or a full disk, or not a checkpoint).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {os.path.abspath(path)}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as err:
        raise RuntimeError(
            f"checkpoint {os.path.abspath(path)} ({os.path.getsize(path)} bytes) cannot be read, it is probably "
            f"truncated or corrupt ({type(err).__name__}: {err}). Restore a good copy, or delete it to train from "
            f"scratch."
        ) from err


class AtomicDiskSaver(DiskSaver):
    """Ignite ``DiskSaver`` that always writes atomically, optionally under one fixed filename.

    With a fixed ``filename`` the previous file is never deleted first: the new file replaces it atomically, so at
    any moment the folder holds a complete checkpoint.

    Args:
        dirname: output folder (created if missing).
        filename: fixed file name, or None to keep Ignite's generated names.
    """

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, atomic=True, create_dir=True, require_empty=False)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        if self.filename is None:  # generated names: drop the superseded file
            super().remove(filename)


class SRECheckpointSaver(CheckpointSaver):
    """:class:`monai.handlers.CheckpointSaver` with atomic writes, a fixed interval filename and a ``state_dict``.

    Args:
        save_dir: output folder.
        save_dict: objects to save, e.g. ``{"model": net, "optimizer": opt, "trainer": trainer}``.
        interval_filename: fixed name of the interval checkpoint (e.g. ``"last.pt"``); None keeps MONAI's
            ``checkpoint_epoch=N.pt`` names.
        engine_key: if given, the engine this handler is attached to is added to the saved objects under this key
            (e.g. ``"trainer"``, to resume epoch and iteration), so a config need not reference the trainer inside
            its own handler list.
        kwargs: every other :class:`~monai.handlers.CheckpointSaver` argument (``save_key_metric``,
            ``key_metric_filename``, ``save_interval``, ``n_saved``, ...).

    Example:
        >>> saver = SRECheckpointSaver("runs/models", {"model": net}, save_interval=1, interval_filename="last.pt")
        >>> saver.attach(trainer)  # writes runs/models/last.pt atomically after every epoch
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: dict,
        interval_filename: str | None = None,
        engine_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        save_dict = dict(save_dict)
        if engine_key is not None and engine_key in save_dict:
            raise ValueError(f"engine_key {engine_key!r} is already a key of save_dict {sorted(save_dict)}.")
        self.engine_key = engine_key
        if interval_filename is not None and kwargs.get("n_saved", None) not in (None, 1):
            raise ValueError(f"interval_filename={interval_filename!r} keeps one file, so n_saved must be 1 or None.")
        if interval_filename is not None:
            kwargs["n_saved"] = 1
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        filenames = {
            "_final_checkpoint": kwargs.get("final_filename"),
            "_key_metric_checkpoint": kwargs.get("key_metric_filename"),
            "_interval_checkpoint": interval_filename,
        }
        for attr, fname in filenames.items():
            ckpt = getattr(self, attr)
            if ckpt is not None:
                ckpt.save_handler = AtomicDiskSaver(save_dir, fname)

    def attach(self, engine: Engine) -> None:
        """Add the engine (and its AMP grad scaler, if any) to the saved objects if ``engine_key`` is set, then
        attach as MONAI's saver does."""
        self._engine = engine
        if self.engine_key is not None:
            extra = {self.engine_key: engine, **_scaler_of(engine)}
            self.save_dict.update(extra)
            for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
                if ckpt is not None:
                    ckpt.to_save = {**ckpt.to_save, **extra}
        super().attach(engine)

    def state_dict(self) -> dict:
        """Best-metric bookkeeping so a resumed run keeps comparing to the old best: the Ignite ``Checkpoint``
        state plus the attached engine's ``best_metric`` and ``best_metric_epoch`` (MONAI evaluators)."""
        if self._key_metric_checkpoint is None:
            return {}
        state = dict(self._key_metric_checkpoint.state_dict())
        engine_state = getattr(getattr(self, "_engine", None), "state", None)
        for key in _BEST_KEYS:
            if hasattr(engine_state, key):
                state[key] = float(getattr(engine_state, key))
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state written by :meth:`state_dict`; an empty dict is ignored."""
        state = dict(state_dict)
        best = {key: state.pop(key) for key in _BEST_KEYS if key in state}
        engine_state = getattr(getattr(self, "_engine", None), "state", None)
        for key, value in best.items():
            if engine_state is not None:
                setattr(engine_state, key, int(value) if key == "best_metric_epoch" else value)
        if state:
            super().load_state_dict(state)


_BEST_KEYS = ("best_metric", "best_metric_epoch")
_SCALER_KEY = "grad_scaler"


def _scaler_of(engine: Engine) -> dict:
    """``{"grad_scaler": engine.scaler_}`` for a MONAI trainer running with AMP, else ``{}``."""
    scaler = getattr(engine, "scaler_", None)
    return {_SCALER_KEY: scaler} if scaler is not None and hasattr(scaler, "state_dict") else {}


def _closed_form_cosine(scheduler: torch.optim.lr_scheduler.CosineAnnealingLR) -> list[float]:
    """Learning rates of a cosine schedule at ``scheduler.last_epoch`` for its current ``T_max``."""
    t, t_max = scheduler.last_epoch, scheduler.T_max
    return [
        scheduler.eta_min + (base - scheduler.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
        for base in scheduler.base_lrs
    ]


class SRECheckpointLoader(CheckpointLoader):
    """:class:`monai.handlers.CheckpointLoader` whose unreadable (truncated or corrupt) file gives an error that
    names the file, instead of torch's bare ``OSError``/``RuntimeError``. Same arguments as MONAI's loader.

    Raises:
        FileNotFoundError: when run, if ``load_path`` does not exist.
        RuntimeError: when run, if ``load_path`` cannot be read as a checkpoint.
    """

    def __call__(self, engine: Engine) -> None:
        read_checkpoint(self.load_path, map_location="cpu")
        super().__call__(engine)


class ResumeFromCheckpoint:
    """Load ``load_path`` at ``Events.STARTED`` if it exists (resume), otherwise start fresh.

    Wraps :class:`monai.handlers.CheckpointLoader`, which restores the engine's epoch/iteration while keeping the
    configured ``max_epochs``. Save the trainer itself in the checkpoint to resume at the next epoch. A resumed run
    is exact (bit-identical to an uninterrupted one) when every random draw of an epoch depends only on the seed and
    the epoch number, see :class:`~monai_sre.handlers.EpochSeeder`.

    A larger ``max_epochs`` than the checkpointed run's (``--epochs 12`` on a run trained with 8) extends a restored
    :class:`~torch.optim.lr_scheduler.CosineAnnealingLR`: its ``T_max`` becomes the configured one and the learning
    rate continues on that longer cosine from the restored epoch, as if the run had been started with the new length
    (the epochs already trained keep the old schedule). Without this the old ``T_max`` would be restored and the
    extra epochs would train at a learning rate of about 0. ``extend_schedule=False`` refuses the change instead.

    Args:
        load_path: checkpoint file, typically ``<ckpt_dir>/last.pt`` written by :class:`SRECheckpointSaver`.
        load_dict: objects to restore, same keys as the saver's ``save_dict``.
        enabled: False disables resuming (a fresh run that overwrites old checkpoints).
        map_location: passed to :func:`torch.load`.
        engine_key: if given, the engine this handler is attached to is restored too, under this key (see
            :class:`SRECheckpointSaver`), with its AMP grad scaler when the checkpoint holds one.
        extend_schedule: stretch a restored cosine schedule to the configured ``T_max`` (True) or raise (False).

    Raises:
        TypeError: if ``load_dict`` is not a non-empty mapping, or ``enabled`` is not a bool.
        RuntimeError: when run, if the checkpoint cannot be read (truncated or corrupt; the message names it).
        ValueError: when run, if the checkpoint lacks an object of ``load_dict`` (written by another configuration),
            or if the configured cosine length differs from the checkpoint's and ``extend_schedule`` is False, or is
            shorter than the epochs already trained.
    """

    def __init__(
        self,
        load_path: str,
        load_dict: Mapping,
        enabled: bool = True,
        map_location: Any = None,
        engine_key: str | None = None,
        extend_schedule: bool = True,
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
        self.extend_schedule = bool(extend_schedule)
        self.resumed_epoch: int | None = None

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.STARTED`` (once)."""
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if not engine.has_event_handler(self, Events.STARTED):
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if not self.enabled:
            return
        if not os.path.isfile(self.load_path):
            engine.logger.info(f"No checkpoint at {self.load_path}: starting a fresh run.")
            return
        saved = read_checkpoint(self.load_path, map_location="cpu")
        load_dict = dict(self.load_dict)
        missing = sorted(k for k in load_dict if k not in saved)
        if missing:
            raise ValueError(
                f"{self.load_path} has no {missing} (it holds {sorted(saved)}): it was written by a run configured "
                f"differently. Resume it with that configuration, or start a fresh run (resume=false or another "
                f"output folder)."
            )
        if self.engine_key is not None and _SCALER_KEY in saved:
            load_dict.update(_scaler_of(engine))
        cosines = {
            k: v.T_max for k, v in load_dict.items() if isinstance(v, torch.optim.lr_scheduler.CosineAnnealingLR)
        }
        CheckpointLoader(self.load_path, load_dict, map_location=self.map_location)(engine)
        self.resumed_epoch = int(engine.state.epoch)
        for key, t_max in cosines.items():
            self._check_schedule(engine, key, load_dict[key], t_max)
        engine.logger.info(
            f"Resumed from {self.load_path} after epoch {engine.state.epoch} (max_epochs {engine.state.max_epochs})."
        )

    def _check_schedule(
        self, engine: Engine, key: str, scheduler: torch.optim.lr_scheduler.CosineAnnealingLR, t_max: int
    ) -> None:
        """Refuse or extend a cosine schedule whose configured length differs from the checkpoint's."""
        saved_t_max = scheduler.T_max
        if saved_t_max == t_max:
            return
        what = (
            f"{key!r} in {self.load_path} is a cosine schedule over T_max={saved_t_max} epochs but the run is "
            f"configured with T_max={t_max} (max_epochs {engine.state.max_epochs})"
        )
        if not self.extend_schedule:
            raise ValueError(f"{what}. Use the checkpoint's length, or set extend_schedule=True to stretch it.")
        if t_max <= scheduler.last_epoch:
            raise ValueError(
                f"{what}, which ends before the {scheduler.last_epoch} epochs already trained. Configure at least "
                f"{scheduler.last_epoch + 1} epochs, or start a fresh run (resume=false or another output folder)."
            )
        scheduler.T_max = t_max
        lrs = _closed_form_cosine(scheduler)
        for group, lr in zip(scheduler.optimizer.param_groups, lrs):
            group["lr"] = lr
        scheduler._last_lr = lrs
        engine.logger.info(f"{what}: extended to T_max={t_max}, learning rate now {lrs[0]:.6g}.")
