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
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.utils import IgniteInfo, min_version, optional_import

DiskSaver, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "DiskSaver")
Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["AtomicDiskSaver", "SRECheckpointSaver", "ResumeFromCheckpoint"]

logger = logging.getLogger(__name__)


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
        """Add the engine to the saved objects if ``engine_key`` is set, then attach as MONAI's saver does."""
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
            for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
                if ckpt is not None:
                    ckpt.to_save = {**ckpt.to_save, self.engine_key: engine}
        super().attach(engine)

    def state_dict(self) -> dict:
        """Best-metric bookkeeping (Ignite ``Checkpoint`` state) so a resumed run keeps comparing to the old best."""
        if self._key_metric_checkpoint is None:
            return {}
        return dict(self._key_metric_checkpoint.state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state written by :meth:`state_dict`; an empty dict is ignored."""
        if state_dict:
            super().load_state_dict(state_dict)


class ResumeFromCheckpoint:
    """Load ``load_path`` at ``Events.STARTED`` if it exists (resume), otherwise start fresh.

    Wraps :class:`monai.handlers.CheckpointLoader`, which restores the engine's epoch/iteration while keeping the
    configured ``max_epochs``. Save the trainer itself in the checkpoint to resume at the next epoch.

    Args:
        load_path: checkpoint file, typically ``<ckpt_dir>/last.pt`` written by :class:`SRECheckpointSaver`.
        load_dict: objects to restore, same keys as the saver's ``save_dict``.
        enabled: False disables resuming (a fresh run that overwrites old checkpoints).
        map_location: passed to :func:`torch.load`.
        engine_key: if given, the engine this handler is attached to is restored too, under this key (see
            :class:`SRECheckpointSaver`).

    Raises:
        TypeError: if ``load_dict`` is not a non-empty mapping.
    """

    def __init__(
        self,
        load_path: str,
        load_dict: Mapping,
        enabled: bool = True,
        map_location: Any = None,
        engine_key: str | None = None,
    ) -> None:
        if not isinstance(load_dict, Mapping) or not load_dict:
            raise TypeError(f"load_dict must be a non-empty mapping of objects to restore, got {load_dict!r}.")
        self.load_path = str(load_path)
        self.load_dict = dict(load_dict)
        self.enabled = bool(enabled)
        self.map_location = map_location
        self.engine_key = engine_key
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
        CheckpointLoader(self.load_path, self.load_dict, map_location=self.map_location)(engine)
        self.resumed_epoch = int(engine.state.epoch)
        engine.logger.info(
            f"Resumed from {self.load_path} after epoch {engine.state.epoch} (max_epochs {engine.state.max_epochs})."
        )
