"""Split names: the one map from every accepted spelling to the canonical name and the datalist key.

Spellings are matched case-insensitively and without surrounding blanks: ``"Training"``, ``" VAL "`` and ``"test"``
are all known; ``"valid"`` or ``"holdout"`` are not.
"""

from __future__ import annotations

__all__ = ["SPLIT_NAMES", "DATALIST_KEYS", "DATALIST_SPLITS", "split_name", "datalist_key", "known_split"]

#: accepted spelling (lower case) -> canonical split name (the MedMNIST npz prefix)
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test"}
#: canonical split name -> key of the split's list in a MONAI/Decathlon datalist, in train/val/test order
DATALIST_KEYS = {"train": "training", "val": "validation", "test": "test"}
#: accepted spelling (lower case) -> datalist key
DATALIST_SPLITS = {name: DATALIST_KEYS[canonical] for name, canonical in SPLIT_NAMES.items()}


def known_split(split: object) -> str | None:
    """The canonical name (``"train"``, ``"val"`` or ``"test"``) of any spelling of a split in any letter case, or
    None for a value that is not one (including non-strings)."""
    if not isinstance(split, str):
        return None
    return SPLIT_NAMES.get(split.strip().lower())


def split_name(split: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for any accepted spelling of a split, in any letter case.

    Raises:
        ValueError: ``split`` is not one of :data:`SPLIT_NAMES` (the message names the argument and the value).
    """
    name = known_split(split)
    if name is None:
        raise ValueError(f"split must be one of {sorted(SPLIT_NAMES)} (any letter case), got {split!r}.")
    return name


def datalist_key(split: str) -> str:
    """``"training"``, ``"validation"`` or ``"test"``: the datalist list holding ``split``."""
    return DATALIST_KEYS[split_name(split)]
