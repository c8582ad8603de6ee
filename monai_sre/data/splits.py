"""Split names: the one map from every accepted spelling to the canonical name and the datalist key."""

from __future__ import annotations

__all__ = ["SPLIT_NAMES", "DATALIST_KEYS", "DATALIST_SPLITS", "split_name", "datalist_key"]

#: accepted spelling -> canonical split name (the MedMNIST npz prefix)
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test"}
#: canonical split name -> key of the split's list in a MONAI/Decathlon datalist, in train/val/test order
DATALIST_KEYS = {"train": "training", "val": "validation", "test": "test"}
#: accepted spelling -> datalist key
DATALIST_SPLITS = {name: DATALIST_KEYS[canonical] for name, canonical in SPLIT_NAMES.items()}


def split_name(split: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for any accepted spelling of a split.

    Raises:
        ValueError: ``split`` is not one of :data:`SPLIT_NAMES` (the message names the argument and the value).
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {sorted(SPLIT_NAMES)}, got {split!r}.")
    return SPLIT_NAMES[split]


def datalist_key(split: str) -> str:
    """``"training"``, ``"validation"`` or ``"test"``: the datalist list holding ``split``."""
    return DATALIST_KEYS[split_name(split)]
