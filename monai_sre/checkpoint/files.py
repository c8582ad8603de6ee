"""Reading and writing checkpoint files.

Writing goes through Ignite's ``DiskSaver(atomic=True)`` (a temporary file in the same folder, then
:func:`os.replace`), so a run killed while saving never leaves a truncated checkpoint. :class:`FixedNameDiskSaver` gives
the file one fixed name (``last.pt``, ``model.pt``) that is replaced in one step, never deleted first.

Reading (:func:`read_checkpoint`) is ``torch.load(weights_only=True)`` whose failures name the file and what to do,
and :func:`fits` turns PyTorch's list of mismatched tensors into one line naming the setting that differs.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from monai.utils import IgniteInfo, min_version, optional_import

from .record import differing, flat_record, record_of

DiskSaver, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "DiskSaver")

__all__ = [
    "FixedNameDiskSaver",
    "fits",
    "mismatch_message",
    "non_finite",
    "read_checkpoint",
    "read_record",
    "remove_stale_temporaries",
]

logger = logging.getLogger(__name__)

#: the names of the temporary files of ``DiskSaver(atomic=True)`` (``tempfile.NamedTemporaryFile``'s defaults),
#: and of the atomic checkpoint writes of earlier versions (``.tmp_`` + 8 random characters + the checkpoint's
#: name), which a run that an earlier version wrote may hold after a kill
_TEMPORARY = re.compile(r"tmp[a-z0-9_]{8}|\.tmp_[a-z0-9_]{8}.+")

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


def read_record(path: str | os.PathLike) -> dict | None:
    """The run record of a checkpoint file, or of a run folder's ``record.json``; None if there is none.

    Raises:
        RuntimeError: if a checkpoint exists but cannot be read (see :func:`read_checkpoint`).
        ValueError: if a ``.json`` file does not hold a JSON object (the message names it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    if not path.endswith(".json"):
        return record_of(read_checkpoint(path, map_location="cpu"))
    with open(path) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"run record {os.path.abspath(path)} is not valid JSON ({err}).") from None
    if not isinstance(record, dict):
        raise ValueError(f"run record {os.path.abspath(path)} must hold a JSON object, got {type(record).__name__}.")
    return record


class FixedNameDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver(atomic=True)`` that writes one fixed file name, if given.

    Ignite's :class:`~ignite.handlers.Checkpoint` names every file after its score and deletes the superseded one;
    with a fixed ``filename`` the new file replaces the old one atomically instead, so the folder always holds a
    complete checkpoint under that name.

    Args:
        dirname: output folder (created if missing).
        filename: fixed file name, or None to keep Ignite's generated names.

    Example:
        >>> saver = FixedNameDiskSaver("runs/models", "last.pt")  # doctest: +SKIP
        >>> Checkpoint({"model": net}, saver, n_saved=1)  # doctest: +SKIP
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        super().__init__(dirname=os.fspath(dirname), atomic=True, create_dir=True, require_empty=False)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        """Save ``checkpoint`` atomically; if that fails (a full disk may only show when the file is closed or
        moved), the temporary file Ignite leaves is removed and the old checkpoint stays as it was.

        Raises:
            OSError: if the file cannot be written (a full disk, a folder made read-only); the message names the
                file, the free space and that the previous file is kept.
        """
        name = self.filename or filename
        before = set(os.listdir(self.dirname))
        try:
            super().__call__(checkpoint, name, metadata)
        except BaseException as err:
            for left in set(os.listdir(self.dirname)) - before:
                os.remove(os.path.join(self.dirname, left))
            if isinstance(err, (OSError, RuntimeError)):
                raise OSError(_write_failure(os.path.join(self.dirname, name), err)) from err
            raise

    def remove(self, filename: str) -> None:
        if self.filename is None:  # generated names: drop the superseded file
            super().remove(filename)


def _write_failure(path: str, err: BaseException) -> str:
    try:
        free = f"{shutil.disk_usage(os.path.dirname(path)).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    kept = "the previous file is kept" if os.path.isfile(path) else "no previous file existed"
    return (f"checkpoint {os.path.abspath(path)} could not be written ({type(err).__name__}: {err}; {free} on its "
            f"disk): {kept}. Free disk space or make the folder writable, then run the same command to resume.")


def remove_stale_temporaries(dirname: str | os.PathLike) -> list[str]:
    """Remove the temporary files that atomic checkpoint writes (``DiskSaver(atomic=True)``, and the ``.tmp_*``
    files of earlier versions) leave in ``dirname`` when the process is killed while writing; call it only while no
    other process writes into the folder (a run holds its folder's :class:`~monai_sre.checkpoint.RunLock`).

    Returns:
        the paths removed (one warning names them).
    """
    folder = os.fspath(dirname)
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _TEMPORARY.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    if removed:
        logger.warning("removed %d temporary file(s) that an interrupted checkpoint write left: %s", len(removed),
                       ", ".join(removed))
    return removed


def non_finite(objects: Mapping[str, Any]) -> dict[str, int]:
    """``{name: count}`` of the NaN/Inf values in the floating-point tensors of each ``torch.nn.Module`` of
    ``objects`` (the networks a checkpoint saves); names without any are left out."""
    counts = {}
    for key, obj in objects.items():
        if not isinstance(obj, torch.nn.Module):
            continue
        bad = sum(int(t.numel() - torch.isfinite(t).sum()) for t in obj.state_dict().values()
                  if torch.is_tensor(t) and t.is_floating_point())
        if bad:
            counts[key] = bad
    return counts


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
    ``load_dict``: the recorded settings that differ from ``settings`` (this run's, flat), else a summary of the
    tensors, else the first reason in PyTorch's ``error``."""
    saved = record_of(checkpoint)
    diff = differing(flat_record(saved, written=True), settings) if saved is not None and settings is not None else {}
    if diff:
        saved_text = ", ".join(f"{k}={a!r}" for k, (a, _) in diff.items())
        current_text = ", ".join(f"{k}={b!r}" for k, (_, b) in diff.items())
        what = f"it was trained with {saved_text} but this run has {current_text}"
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
    return (f"checkpoint {os.path.abspath(path)} does not fit this run's network: {what}. {hint}, or use another "
            f"checkpoint.")


@contextmanager
def fits(path: str, load_dict: Mapping, checkpoint: Any, settings: Mapping | None = None) -> Iterator[None]:
    """Turn PyTorch's state-dict mismatch inside the block into the one line of :func:`mismatch_message`.

    Raises:
        ValueError: in place of PyTorch's ``RuntimeError`` listing mismatched tensors.
    """
    try:
        yield
    except RuntimeError as err:
        if "error(s) in loading state_dict" not in str(err).lower():
            raise
        raise ValueError(mismatch_message(path, load_dict, checkpoint, settings, str(err))) from None
