"""Atomic checkpoints and resume-from-last for MONAI/Ignite training.

MONAI's :class:`monai.handlers.CheckpointSaver` writes with ``atomic=False``, so a run killed while saving can leave a
truncated file. :class:`SRECheckpointSaver` keeps MONAI's behaviour and arguments but swaps in
:class:`AtomicDiskSaver` (write to a temporary file in the same folder, then :func:`os.replace`), adds a fixed
filename for the interval checkpoint (``last.pt``) and exposes ``state_dict`` so the best-metric bookkeeping can be
stored inside the last checkpoint. :class:`ResumeFromCheckpoint` restores such a checkpoint when it exists and does
nothing otherwise, so the same config starts fresh or resumes.

:class:`TrainingSettings` saves the settings a network was trained with (network name and arguments, preprocessing)
next to its weights, under the key ``"settings"`` of the checkpoint dict, as plain values that
``torch.load(weights_only=True)`` reads: ``{"model": <state dict>, "settings": {"network_name": ..., ...}}``.
Evaluation and inference take their settings from there (:func:`monai_sre.workflows.trained_settings`), resuming
refuses a run configured otherwise, and a checkpoint that does not fit the network gets a one-line error naming the
file and the setting that differs instead of PyTorch's list of tensors.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.utils.io import atomic_path

DiskSaver, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "DiskSaver")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = [
    "SETTINGS_KEY",
    "AtomicDiskSaver",
    "SRECheckpointSaver",
    "SRECheckpointLoader",
    "ResumeFromCheckpoint",
    "TrainingSettings",
    "read_checkpoint",
    "read_settings",
]

logger = logging.getLogger(__name__)

#: what a truncated or corrupt ``torch.save`` file raises from :func:`torch.load`
_UNREADABLE = (OSError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)


def read_checkpoint(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, weights_only=True)`` whose failure names the file and what to do.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        RuntimeError: if the file cannot be read (truncated by a killed copy or a full disk, or not a checkpoint), or
            is refused because it holds Python objects beyond weights (a pickle that may run code when loaded).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {os.path.abspath(path)}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not _runs_code(err):
            raise _unreadable(path, err) from err
        raise RuntimeError(
            f"checkpoint {os.path.abspath(path)} was refused: it is not loadable with torch.load(weights_only=True), "
            f"it holds Python objects that may run code when loaded. Use a checkpoint saved by this software, or "
            f"re-save only the weights (torch.save(model.state_dict(), path)) where you trust the file."
        ) from None
    except _UNREADABLE as err:
        raise _unreadable(path, err) from err


def _runs_code(err: pickle.UnpicklingError) -> bool:
    """Whether torch's weights-only unpickler refused a global (a class or function the file would import and run),
    as opposed to failing on a truncated file."""
    text = str(err).lower()
    return "weights only load failed" in text and "global" in text


def _unreadable(path: str, err: BaseException) -> RuntimeError:
    return RuntimeError(
        f"checkpoint {os.path.abspath(path)} ({os.path.getsize(path)} bytes) cannot be read, it is probably "
        f"truncated or corrupt ({type(err).__name__}: {err}). Restore a good copy, or delete it to train from scratch."
    )


SETTINGS_KEY = "settings"
_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any, name: str) -> Any:
    """``value`` as JSON-like plain data (tuples become lists), or a ``TypeError`` naming the setting."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{name}.{k}") for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    raise TypeError(f"setting {name!r} must be plain data (str, int, float, bool, None, lists, dicts), got {value!r}.")


class TrainingSettings:
    """The settings a network was trained with, saved in its checkpoints next to the weights.

    Put it in a :class:`SRECheckpointSaver`'s ``save_dict`` under :data:`SETTINGS_KEY` (``"settings"``); its
    ``state_dict`` is a dict of plain values, so ``torch.load(path, weights_only=True)["settings"]`` reads it back.
    In a :class:`ResumeFromCheckpoint`'s ``load_dict`` it makes resuming refuse a run configured otherwise.

    Args:
        settings: e.g. ``{"network_name": "sre_r3d_18", "widths": [16, 32, 64, 128], "intensity_range": [0, 1]}``.

    Raises:
        TypeError: if a value is not plain data (str, int, float, bool, None, lists, dicts).
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = {str(k): _plain(v, str(k)) for k, v in dict(settings).items()}
        self.loaded: dict | None = None

    def state_dict(self) -> dict:
        return dict(self.settings)

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Keep the checkpoint's record in ``loaded`` (the configured ``settings`` stay as they are)."""
        self.loaded = dict(state_dict)


def settings_of(checkpoint: Any) -> dict | None:
    """The :class:`TrainingSettings` record of a loaded checkpoint, or None if it has none (older checkpoints)."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(SETTINGS_KEY), Mapping):
        return dict(checkpoint[SETTINGS_KEY])
    return None


def read_settings(path: str | os.PathLike) -> dict | None:
    """The settings recorded in the checkpoint at ``path``; None if it has no record or does not exist.

    Raises:
        RuntimeError: if the file cannot be read (see :func:`read_checkpoint`).
    """
    return settings_of(read_checkpoint(path, map_location="cpu")) if os.path.isfile(path) else None


def differing(saved: Mapping, current: Mapping) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, current value)}`` for the keys both record with different values (lists and tuples,
    ints and floats compare by value)."""
    return {
        k: (saved[k], current[k])
        for k in current
        if k in saved and _plain(saved[k], k) != _plain(current[k], k)
    }


def trained_versus(diff: Mapping[str, tuple[Any, Any]], verb: str) -> str:
    """``"trained with widths=[16, 32] but this run <verb> widths=[4, 4]"`` for a :func:`differing` result."""
    saved = ", ".join(f"{k}={a!r}" for k, (a, _) in diff.items())
    current = ", ".join(f"{k}={b!r}" for k, (_, b) in diff.items())
    return f"trained with {saved} but this run {verb} {current}"


def _state_of(obj: Any) -> Any:
    return obj.module if isinstance(obj, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)) else obj


def _shape(t: Any) -> tuple:
    return tuple(getattr(t, "shape", ()))


def _tensor_summary(network: torch.nn.Module, weights: Mapping) -> str:
    """How a state dict differs from a network's: counts of tensors with another shape, missing and unexpected
    ones, with the first of each."""
    own = network.state_dict()
    shapes = [k for k in own if k in weights and _shape(own[k]) != _shape(weights[k])]
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} tensors differ in shape (first {k}: checkpoint {list(_shape(weights[k]))}, "
                     f"network {list(_shape(own[k]))})")
    if missing:
        parts.append(f"{len(missing)} network tensors are not in it (first {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} of its tensors are not in the network (first {extra[0]})")
    return ", ".join(parts)


def mismatch_message(
    path: str, load_dict: Mapping, checkpoint: Any, settings: Mapping | None = None, error: str = ""
) -> str:
    """One line saying why the weights in ``checkpoint`` (read from ``path``) do not fit the network of
    ``load_dict``: the recorded settings that differ from ``settings`` (this run's), else a summary of the tensors,
    else the first reason in PyTorch's ``error``."""
    saved = settings_of(checkpoint)
    diff = differing(saved, settings) if saved is not None and settings is not None else {}
    if diff:
        what = "it was " + trained_versus(diff, "has")
        hint = "Use the checkpoint's settings (leave them out, or set them to its values)"
    else:
        nets = [(k, _state_of(v)) for k, v in load_dict.items() if isinstance(_state_of(v), torch.nn.Module)]
        summary = ""
        if nets and isinstance(checkpoint, Mapping):
            key, net = nets[0]
            summary = _tensor_summary(net, checkpoint.get(key, checkpoint))
        reasons = [line.strip() for line in error.splitlines()[1:] if line.strip()]
        what = f"{summary}; it was trained with another network or other widths/features" if summary else (
            reasons[0] if reasons else "its tensors do not load")
        hint = "Configure the network it was trained with (network_name, widths or features)"
    return f"checkpoint {os.path.abspath(path)} does not fit this run's network: {what}. {hint}, or use another checkpoint."


@contextmanager
def _fits(path: str, load_dict: Mapping, checkpoint: Any, settings: Mapping | None) -> Iterator[None]:
    """Turn PyTorch's state-dict mismatch inside the block into the one line of :func:`mismatch_message`."""
    try:
        yield
    except RuntimeError as err:
        if "error(s) in loading state_dict" not in str(err).lower():
            raise
        raise ValueError(mismatch_message(path, load_dict, checkpoint, settings, str(err))) from None


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

    def _save_func(self, checkpoint: Mapping, path: Path, func: Any) -> None:
        """Write through :func:`~monai_sre.utils.io.atomic_path`: on any failure (a full disk may only show when
        the file is flushed) the temporary file is removed and ``path`` is left as it was."""
        with atomic_path(path) as tmp:
            func(checkpoint, tmp, **self.kwargs)


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
    """:class:`monai.handlers.CheckpointLoader` whose errors name the file and what to do: an unreadable (truncated
    or corrupt) or refused file, and weights that do not fit the network (one line naming the setting that differs,
    instead of PyTorch's list of tensors). Loads plain state dicts and checkpoint dicts (``{"model": ...,
    "settings": ...}``) alike.

    Args:
        settings: this run's settings (e.g. from :func:`monai_sre.workflows.trained_settings`), compared with the
            checkpoint's record when the weights do not fit; None summarises the tensors instead.
        args, kwargs: MONAI's :class:`~monai.handlers.CheckpointLoader` arguments.

    Raises:
        FileNotFoundError: when run, if ``load_path`` does not exist.
        RuntimeError: when run, if ``load_path`` cannot be read as a checkpoint.
        ValueError: when run, if its weights do not fit the network.
    """

    def __init__(self, *args: Any, settings: Mapping | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings

    def __call__(self, engine: Engine) -> None:
        checkpoint = read_checkpoint(self.load_path, map_location="cpu")
        with _fits(self.load_path, self.load_dict, checkpoint, self.settings):
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
        settings = self._check_settings(saved, load_dict)
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
        with _fits(self.load_path, load_dict, saved, settings):
            CheckpointLoader(self.load_path, load_dict, map_location=self.map_location)(engine)
        self.resumed_epoch = int(engine.state.epoch)
        for key, t_max in cosines.items():
            self._check_schedule(engine, key, load_dict[key], t_max)
        engine.logger.info(
            f"Resumed from {self.load_path} after epoch {engine.state.epoch} (max_epochs {engine.state.max_epochs})."
        )

    def _check_settings(self, saved: Mapping, load_dict: dict) -> dict | None:
        """Refuse a checkpoint whose recorded :class:`TrainingSettings` differ from this run's; one without a record
        (written by an older version) is resumed with one warning. Returns this run's settings, if configured."""
        keys = [k for k, v in load_dict.items() if isinstance(v, TrainingSettings)]
        configured = load_dict[keys[0]].settings if keys else None
        for key in keys:
            current = load_dict[key].settings
            if key not in saved:
                logger.warning(
                    "%s has no record of the settings it was trained with (written by an older version): resuming "
                    "with this run's settings, which must be the ones it was trained with.", self.load_path)
                del load_dict[key]
                continue
            diff = differing(saved[key], current)
            if diff:
                raise ValueError(
                    f"{self.load_path} was {trained_versus(diff, 'is configured with')}: resume with the settings it "
                    f"was trained with, or start a fresh run (resume=false or another output_dir)."
                )
        return configured

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
