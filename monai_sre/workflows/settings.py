"""Evaluation and inference preprocess like training did: their settings come from the checkpoint.

A bundle's training run saves the settings its network was trained with (network name and arguments, input size,
intensity range, field of view, ...) next to the weights (:class:`~monai_sre.handlers.TrainingSettings`).
``evaluate.json`` and ``inference.json`` leave those ids at :data:`FROM_CHECKPOINT` and resolve them with
:func:`trained_settings`: the checkpoint's value by default, a value given on the command line only if it agrees with
the checkpoint or ``--override_preprocessing true`` says it is meant.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from monai_sre.handlers.checkpoint import differing, read_settings

__all__ = ["FROM_CHECKPOINT", "configured", "trained_settings"]

logger = logging.getLogger(__name__)

#: the value of an evaluation/inference id that is to be taken from the checkpoint
FROM_CHECKPOINT = "checkpoint"


def _unset(value: Any) -> bool:
    return isinstance(value, str) and value == FROM_CHECKPOINT


def configured(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when it is :data:`FROM_CHECKPOINT` (e.g. the network name of the run folder, which
    locates the checkpoint and so cannot come from it)."""
    return default if _unset(value) else value


def trained_settings(
    ckpt_path: str | os.PathLike,
    given: Mapping[str, Any],
    defaults: Mapping[str, Any],
    override: bool = False,
    switch: str = "override_preprocessing",
) -> dict[str, Any]:
    """The settings to evaluate or infer with: the checkpoint's, unless given.

    Args:
        ckpt_path: the checkpoint to be loaded. A missing file (the loader reports it) or one without a record
            (written by an older version, one warning) leaves the given values and ``defaults``.
        given: the configured value of every setting; :data:`FROM_CHECKPOINT` means "not given".
        defaults: the bundle's training defaults, for settings neither given nor recorded.
        override: use given values that differ from the checkpoint's (else they are refused).
        switch: the config id of ``override``, for the message.

    Returns:
        ``{key: value}`` for every key of ``given``.

    Raises:
        ValueError: if a given value differs from the checkpoint's and ``override`` is False; one line naming the
            setting, both values, the checkpoint and how to override.
        RuntimeError: if the checkpoint exists but cannot be read (named in the message).
    """
    path = os.fspath(ckpt_path)
    record = read_settings(path)
    if record is None and os.path.isfile(path):
        logger.warning(
            "checkpoint %s has no record of the settings it was trained with (written by an older version): "
            "using the configured ones (%s), which must be those it was trained with.",
            os.path.abspath(path), ", ".join(f"{k}={configured(v, defaults.get(k))!r}" for k, v in given.items()))
    record = record or {}
    chosen = {k: v for k, v in given.items() if not _unset(v)}
    conflicts = differing(record, chosen)
    if conflicts and not override:
        raise ValueError(
            "; ".join(f"--{k} {b!r} disagrees with checkpoint {os.path.abspath(path)}, trained with {k}={a!r}"
                      for k, (a, b) in conflicts.items())
            + f": leave it out to use the checkpoint's value, or add --{switch} true to use the given value anyway."
        )
    if conflicts:
        logger.warning("%s true: using %s against the checkpoint's %s.", switch,
                       ", ".join(f"{k}={b!r}" for k, (_, b) in conflicts.items()),
                       ", ".join(f"{k}={a!r}" for k, (a, _) in conflicts.items()))
    return {k: chosen[k] if k in chosen else record.get(k, defaults.get(k)) for k in given}
