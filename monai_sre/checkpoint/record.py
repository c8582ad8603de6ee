"""The run record: everything that decides what a training run produces, written once into the run folder and into
every checkpoint.

A record has four groups, each a dict of plain values (str, int, float, bool, None, lists, dicts):

* ``data``: the data by content (:func:`monai_sre.workflows.data_fingerprint`), the fold;
* ``network``: the network name and its arguments;
* ``preprocessing``: what evaluation and inference must apply as training did (size, intensity range, ...);
* ``training``: optimiser, learning rate, batch size, schedule, seed, augmentation switches.

A bundle's ``train.json`` lists the record's keys once, as a :class:`RunRecord`; the keys are its top-level config
ids, so a message can name the switch (``--learning_rate``). ``torch.load(path, weights_only=True)["record"]`` reads
it back from a checkpoint, and :func:`~monai_sre.checkpoint.read_record` from a checkpoint or a run folder's
``record.json``.

A training run resumes only when the record of its last checkpoint equals the configured one, apart from the keys
in ``resumable`` (for example ``epochs``, the maximum number of epochs): :func:`resume_refusal` is the one-line
refusal otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from monai_sre.utils.io import atomic_write

__all__ = [
    "GROUPS",
    "LEGACY_KEY",
    "RECORD_FILE",
    "RENAMED_VALUES",
    "ADDED_KEYS",
    "RECORD_KEY",
    "RunRecord",
    "differing",
    "flat_record",
    "plain",
    "record_of",
    "resume_refusal",
]

#: key of the record in a checkpoint dict
RECORD_KEY = "record"
#: key of the network-and-preprocessing record that versions before the run record wrote (one flat dict)
LEGACY_KEY = "settings"
#: file name of the record in the run folder
RECORD_FILE = "record.json"
#: the groups of a record, in the order they are written
GROUPS = ("data", "network", "preprocessing", "training")

#: values that records of earlier versions hold and that are read as today's: the network names that MONAI's own
#: components also have were renamed (``monai_sre.nets.RENAMED``; a test keeps the two tables equal)
RENAMED_VALUES = {"network_name": {"resnet18": "plain_resnet18", "unet": "plain_unet"}}
#: keys that records gained after runs were written with them, and the value that reproduces what those runs did:
#: a record written by a run (not a legacy one) that lacks such a key is read with this value
ADDED_KEYS = {"sre_kwargs": None}

_PLAIN = (str, int, float, bool, type(None))


def plain(value: Any, name: str) -> Any:
    """``value`` as JSON-like plain data (tuples become lists, numpy/torch scalars numbers).

    Raises:
        TypeError: if ``value`` holds anything else; the message names the setting ``name``.
    """
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{name}.{k}") for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    raise TypeError(f"setting {name!r} must be plain data (str, int, float, bool, None, lists, dicts), got {value!r}.")


def flat_record(record: Mapping | None, written: bool = False) -> dict[str, Any]:
    """``{key: value}`` over the groups of a record (a checkpoint's legacy flat record as it is), with the values of
    :data:`RENAMED_VALUES` under their names of today. ``written``: the record was written by a run (a checkpoint or
    ``record.json``), so the :data:`ADDED_KEYS` it lacks take the values that reproduce that run."""
    if not record:
        return {}
    if not any(g in record and isinstance(record[g], Mapping) for g in GROUPS):
        flat = dict(record)  # legacy: one flat dict
    else:
        flat = {k: v for g in GROUPS for k, v in dict(record.get(g) or {}).items()}
        if written and "network_name" in flat:
            flat = {**ADDED_KEYS, **flat}
    for key, renamed in RENAMED_VALUES.items():
        if isinstance(flat.get(key), str) and flat[key] in renamed:
            flat[key] = renamed[flat[key]]
    return flat


class RunRecord:
    """The record of a training run, saved in its checkpoints and its run folder.

    Put it in the checkpoint savers' ``save_dict`` under :data:`RECORD_KEY` (``"record"``) and in the
    :class:`~monai_sre.handlers.ResumeFromCheckpoint`'s ``load_dict``: its ``state_dict`` is the record as plain data,
    and loading a checkpoint keeps the checkpoint's record in :attr:`loaded` without changing the configured one.

    Args:
        data: the data by content, e.g. ``{"data_fingerprint": "3f2a...", "fold": None}``.
        network: the network name and arguments, e.g. ``{"network_name": "sre_r3d_18", "widths": [16, 32]}``.
        preprocessing: e.g. ``{"size": 28, "intensity_range": [0, 1]}``.
        training: e.g. ``{"optimizer": "torch.optim.SGD", "learning_rate": 0.02, "seed": 0, "augment": False}``.
        resumable: keys of the record that may differ when a run is resumed (e.g. ``["epochs"]``).

    Raises:
        TypeError: if a value is not plain data.
        ValueError: if a key appears in two groups, or ``resumable`` names a key the record does not have.

    Example:
        >>> record = RunRecord(network={"network_name": "sre_r3d_18"}, training={"seed": 0, "epochs": 10},
        ...                    resumable=["epochs"])
        >>> record.flat
        {'network_name': 'sre_r3d_18', 'seed': 0, 'epochs': 10}
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        network: Mapping[str, Any] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        resumable: Sequence[str] = (),
    ) -> None:
        given = dict(zip(GROUPS, (data, network, preprocessing, training)))
        self.groups = {g: {str(k): plain(v, str(k)) for k, v in dict(given[g] or {}).items()} for g in GROUPS}
        seen: dict[str, str] = {}
        for group, values in self.groups.items():
            for key in values:
                if key in seen:
                    raise ValueError(f"record key {key!r} is in both group {seen[key]!r} and group {group!r}.")
                seen[key] = group
        unknown = sorted(set(resumable) - set(seen))
        if unknown:
            raise ValueError(f"resumable names {unknown}, which are not keys of the record ({sorted(seen)}).")
        self.resumable = tuple(resumable)
        self.loaded: dict | None = None

    @property
    def flat(self) -> dict[str, Any]:
        """``{key: value}`` over all groups."""
        return flat_record(self.groups)

    def state_dict(self) -> dict:
        return {g: dict(v) for g, v in self.groups.items()}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Keep the checkpoint's record in :attr:`loaded` (the configured record stays as it is)."""
        self.loaded = dict(state_dict)

    def write(self, run_dir: str | os.PathLike) -> str:
        """Write the record to ``<run_dir>/record.json`` (atomically) and return the path."""
        path = os.path.join(os.fspath(run_dir), RECORD_FILE)
        atomic_write(path, json.dumps(self.state_dict(), indent=2, sort_keys=False) + "\n")
        return path


def record_of(checkpoint: Any) -> dict | None:
    """The record of a loaded checkpoint (a legacy flat record as it is), or None if it has none."""
    if isinstance(checkpoint, Mapping):
        for key in (RECORD_KEY, LEGACY_KEY):
            if isinstance(checkpoint.get(key), Mapping):
                return dict(checkpoint[key])
    return None


def differing(saved: Mapping, current: Mapping, keys: Sequence[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, current value)}`` for the keys (default: those both have) whose values differ; lists and
    tuples, ints and floats compare by value."""
    keys = [k for k in current if k in saved] if keys is None else list(keys)
    return {
        k: (saved.get(k), current.get(k)) for k in keys if plain(saved.get(k), k) != plain(current.get(k), k)
    }


def _values(diff: Mapping[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{k}: {a!r} in the run, {b!r} now" for k, (a, b) in diff.items())


def resume_refusal(
    path: str | os.PathLike, saved: Mapping, record: RunRecord, run_dir: str | os.PathLike | None = None
) -> str | None:
    """One line refusing to resume the checkpoint ``path`` whose record ``saved`` differs from ``record`` outside
    its resumable keys, naming each differing key with both values and the two ways out; None if they match.

    A legacy record (network and preprocessing only) is compared on the keys it has.
    """
    current = record.flat
    saved_flat = flat_record(saved, written=True)
    legacy = saved is not None and not any(g in saved for g in GROUPS)
    keys = [k for k in current if k not in record.resumable and (k in saved_flat or not legacy)]
    keys += [k for k in saved_flat if k not in current and not legacy]
    diff = differing(saved_flat, current, keys)
    if not diff:
        return None
    folder = os.path.abspath(os.fspath(run_dir)) if run_dir is not None else os.path.dirname(os.path.abspath(path))
    return (
        f"refusing to resume {os.path.abspath(path)}: that run was trained with other settings ({_values(diff)}). "
        f"Train this one into a new folder (--output_dir <folder>), or delete {folder} to replace that run."
    )
