"""The run record in the bundle configs: the data fingerprint that names a run, and the one call with which
evaluation, rotated evaluation, TTA and inference read what they need from a checkpoint's record.

A bundle's ``train.json`` lists the record's keys once (a :class:`~monai_sre.checkpoint.RunRecord` under
``run_record``). The evaluation and inference overlays are stacked on ``train.json`` and resolve the network and
preprocessing with :func:`trained_record`: the checkpoint's value of each key, unless a value was given on the
command line (or by an overlay) that differs from it; such a value is refused, or used with
``--override_preprocessing true``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from monai_sre.checkpoint import differing, flat_record, plain, read_record
from monai_sre.data import (
    SYNTHETIC_INFO,
    SYNTHETIC_SEGMENTATION_SETS,
    default_cache,
    default_root,
    make_synthetic,
    make_synthetic_segmentation,
)
from monai_sre.data.medmnist import DOWNLOAD_HINT, fetch_medmnist, npz_name

from .errors import SettingError
from .settings import BUNDLE_FOR, network_kind

__all__ = ["data_fingerprint", "trained_record"]

logger = logging.getLogger(__name__)

_DIGITS = 8  # hex digits of a fingerprint


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def _digest(path: str) -> str:
    st = os.stat(path)
    return _file_digest(os.path.abspath(path), st.st_size, st.st_mtime_ns)


def data_fingerprint(
    dataset: str | os.PathLike, root: str | os.PathLike | None = None, size: int = 28, download: bool = False
) -> str:
    """A short hash of the data a run trains on, by content, for the run folder name and the run record.

    * a NIfTI datalist (``.json``/``.csv``): its bytes and the folder its relative paths resolve against (``root``,
      else the datalist's folder), so two datalists of one name in different folders differ;
    * a MedMNIST flag: the bytes of its npz file (``root``/``$MONAI_SRE_DATA``/``~/.medmnist``, ``size``);
    * a synthetic set: the bytes of its generated npz (generated on first use, as for training).

    Args:
        dataset: as in :func:`monai_sre.data.get_dataset` or :func:`monai_sre.data.segmentation_datalist`.
        root: the data folder.
        size: the image size (it picks the MedMNIST and synthetic files).
        download: a MedMNIST file that is missing is downloaded first (:func:`monai_sre.data.fetch_medmnist`).

    Returns:
        8 hex digits.

    Raises:
        FileNotFoundError: if the datalist or the MedMNIST file does not exist (the message names the path).
        ValueError: for a name that is none of these.

    Example:
        >>> data_fingerprint("/data/a/datalist.json") != data_fingerprint("/data/b/datalist.json")  # doctest: +SKIP
        True
    """
    key = str(dataset)
    if key.lower().endswith((".json", ".csv")):
        if not os.path.isfile(key):
            raise FileNotFoundError(f"dataset: datalist {os.path.abspath(key)} does not exist.")
        base = os.path.abspath(os.fspath(root)) if root is not None else os.path.dirname(os.path.abspath(key))
        text = f"{_digest(key)} {base}"
        return hashlib.blake2b(text.encode(), digest_size=_DIGITS // 2).hexdigest()
    if key in SYNTHETIC_INFO:
        path = make_synthetic(root if root is not None else default_cache(), SYNTHETIC_INFO[key]["spatial_dims"], size)
    elif key in SYNTHETIC_SEGMENTATION_SETS:
        path = make_synthetic_segmentation(root, size=size, name=key)
    elif key.isidentifier():  # a MedMNIST flag
        path = os.path.join(os.fspath(root) if root is not None else default_root(), npz_name(key.lower(), size))
        if download and not os.path.isfile(path):
            path = fetch_medmnist(key, root, size)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"dataset {key!r}: MedMNIST file {os.path.abspath(path)} not found; put the dataset's npz there "
                f"(or set --data_root / MONAI_SRE_DATA), {DOWNLOAD_HINT}.")
    else:
        raise ValueError(f"dataset must be a synthetic set, a MedMNIST flag or a .json/.csv datalist, got {key!r}.")
    return _digest(path)[:_DIGITS]


def _bundle_defaults(bundle_root: str | os.PathLike | None) -> dict[str, Any]:
    """The plain values of ``<bundle_root>/configs/train.json`` (ids holding expressions or references left out)."""
    path = os.path.join(os.fspath(bundle_root), "configs", "train.json") if bundle_root is not None else ""
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        raw = json.load(f)
    return {k: v for k, v in raw.items() if not (isinstance(v, str) and v[:1] in "$@%")}


def _network_of(flat: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(task, spatial_dims)`` of the network a flat record names, or None if it names none this package knows."""
    kind = network_kind(flat["network_name"]) if isinstance(flat.get("network_name"), str) else None
    if kind is None:
        return None
    return kind[0], kind[1] if kind[1] is not None else int(flat.get("spatial_dims", 3))


def _check_task(path: str, saved: Mapping[str, Any], configured: Mapping[str, Any]) -> None:
    """Refuse a checkpoint of another task or dimension than the bundle's, naming the bundle to use."""
    held, wanted = _network_of(saved), _network_of(configured)
    if held is None or wanted is None or held == wanted:
        return
    where = BUNDLE_FOR.get(held)
    raise SettingError(
        f"checkpoint {os.path.abspath(path)} holds a {held[1]}D {held[0]} network ({saved['network_name']!r}), but "
        f"this bundle takes {wanted[1]}D {wanted[0]} networks"
        + (f": use {where} with this checkpoint." if where else ": use a checkpoint this bundle trained.")
    )


def trained_record(
    ckpt_path: str | os.PathLike,
    network: Mapping[str, Any],
    preprocessing: Mapping[str, Any],
    bundle_root: str | os.PathLike | None = None,
    override: bool = False,
    switch: str = "override_preprocessing",
) -> dict[str, Any]:
    """The network and preprocessing to evaluate or infer with: the checkpoint's record, unless given otherwise.

    A configured value counts as given when it differs from the bundle's ``train.json`` default; a value left at
    its default takes the checkpoint's.

    Args:
        ckpt_path: the checkpoint to be loaded. A missing file (the loader reports it) or one without a record
            (written by an older version, one warning) leaves the configured values.
        network: the configured network group of the run record (``@run_record#network``).
        preprocessing: the configured preprocessing group (``@run_record#preprocessing``). Passing the two groups
            rather than the whole record keeps the data out: inference needs no training data.
        bundle_root: the bundle folder, whose ``configs/train.json`` holds the defaults.
        override: use given values that differ from the checkpoint's (else they are refused).
        switch: the config id of ``override``, for the message.

    Returns:
        ``{key: value}`` for every key of ``network`` and ``preprocessing``.

    Raises:
        ValueError: if a given value differs from the checkpoint's and ``override`` is False; one line naming each
            such key, both values, the checkpoint and the switch.
        SettingError: if the checkpoint holds a network of another task or dimension (a segmentation checkpoint
            given to a classification bundle); the message names the checkpoint, what it holds and the bundle to use.
        RuntimeError: if the checkpoint exists but cannot be read (named in the message).
    """
    path = os.fspath(ckpt_path)
    configured = flat_record({name: {str(k): plain(v, str(k)) for k, v in dict(group).items()}
                              for name, group in (("network", network), ("preprocessing", preprocessing))})
    saved = read_record(path)
    if saved is None:
        if os.path.isfile(path):
            logger.warning(
                "checkpoint %s has no record of the run it belongs to (written by an older version): using the "
                "configured %s, which must be those it was trained with.", os.path.abspath(path),
                ", ".join(f"{k}={v!r}" for k, v in configured.items()))
        return configured
    saved_flat = flat_record(saved, written=True)
    _check_task(path, saved_flat, configured)
    defaults = _bundle_defaults(bundle_root)
    diff = differing(saved_flat, configured)
    given = {k: d for k, d in diff.items() if k not in defaults or differing(defaults, configured, [k])}
    if given and not override:
        raise ValueError(
            "; ".join(f"--{k} {b!r} disagrees with checkpoint {os.path.abspath(path)}, trained with {k}={a!r}"
                      for k, (a, b) in given.items())
            + f": leave it out to use the checkpoint's value, or add --{switch} true to use the given value anyway."
        )
    if given:
        logger.warning("%s true: using %s against the checkpoint's %s.", switch,
                       ", ".join(f"{k}={b!r}" for k, (_, b) in given.items()),
                       ", ".join(f"{k}={a!r}" for k, (a, _) in given.items()))
    return {k: configured[k] if k in given or k not in saved_flat else saved_flat[k] for k in configured}
