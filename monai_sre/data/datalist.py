"""The one datalist reader: MONAI/Decathlon JSON or CSV in, items with resolved paths out, named errors."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .splits import DATALIST_SPLITS, datalist_key

__all__ = ["read_datalist", "DatalistSplitError", "INFERENCE_KEYS"]

#: lists an inference datalist may hold its images under, in the order they are looked up
INFERENCE_KEYS = ("test", "testing", "data", "validation", "images")


class DatalistSplitError(ValueError):
    """The datalist has no list for the requested split."""


def _json_records(path: Path, split: str | None) -> tuple[object, str]:
    with open(path) as f:
        content = json.load(f)
    if isinstance(content, list):
        return content, split or "items"
    if not isinstance(content, dict):
        raise ValueError(f"datalist {path} must hold a list or a dict of lists, got {type(content).__name__}.")
    if split is not None:
        key = datalist_key(split)
        if key not in content:
            raise DatalistSplitError(f"datalist {path} has no {key!r} list (keys: {sorted(content)}).")
        return content[key], key
    for key in INFERENCE_KEYS:
        if key in content:
            return content[key], key
    if "image" in content:  # a single item
        return [content], "items"
    raise DatalistSplitError(
        f"datalist {path} must be a list or hold one of the lists {list(INFERENCE_KEYS)}, got keys {sorted(content)}."
    )


def _csv_records(path: Path, split: str | None, fields: Sequence[str]) -> tuple[list[dict], str]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    if not set(fields) <= set(columns):
        needed = " and ".join(repr(c) for c in fields)
        raise ValueError(f"CSV datalist {path} needs {needed} columns, got {sorted(columns)}.")
    if split is None:
        return rows, "rows"
    key = datalist_key(split)
    return [r for r in rows if DATALIST_SPLITS.get(r.get("split") or key) == key], key


def read_datalist(
    datalist: str | os.PathLike,
    split: str | None = "training",
    base_dir: str | os.PathLike | None = None,
    fields: Sequence[str] = ("image", "label"),
    path_fields: Sequence[str] = ("image",),
) -> list[dict]:
    """Read one split of a datalist into ``[{"image": path, ...}, ...]``, checking its structure only.

    JSON is MONAI/Decathlon style, ``{"training": [{"image": "a.nii.gz", "label": 0}, ...], "validation": [...],
    "test": [...]}``; CSV has a header with the ``fields`` columns and an optional ``split`` column (rows without
    one belong to every split). With ``split=None`` (inference) a JSON datalist may also be a plain list, or hold
    its list under one of :data:`INFERENCE_KEYS`, and a CSV gives all its rows. When ``fields`` is ``("image",)``
    an item may be a bare path. Relative paths in ``path_fields`` are joined to ``base_dir`` (default: the
    datalist's folder) and normalised. Whether the files exist is left to the caller.

    Args:
        datalist: ``.json`` or ``.csv`` path.
        split: any spelling accepted by :func:`~monai_sre.data.splits.split_name`, or None (see above).
        base_dir: folder for relative paths.
        fields: keys every item must have.
        path_fields: keys holding file paths.

    Returns:
        the items of the split, each a new dict.

    Raises:
        FileNotFoundError: the datalist does not exist (the message names it).
        DatalistSplitError: a JSON datalist without the split's list.
        ValueError: unknown split or format, or a malformed item (the message names the datalist, the list and
            the item's index).
    """
    path = Path(datalist)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path.resolve()}")
    if split is not None:
        datalist_key(split)  # validates the name before the file is read
    suffix = path.suffix.lower()
    if suffix == ".json":
        records, key = _json_records(path, split)
    elif suffix == ".csv":
        records, key = _csv_records(path, split, fields)
    else:
        raise ValueError(f"datalist must be a .json or .csv file, got {path}.")
    if not isinstance(records, list):
        raise ValueError(f"datalist {path}: {key!r} must be a list of items, got {type(records).__name__}.")
    base = str(base_dir) if base_dir is not None else str(path.parent)
    items = []
    for i, record in enumerate(records):
        if isinstance(record, str) and tuple(fields) == ("image",):
            record = {"image": record}
        if not isinstance(record, dict) or not set(fields) <= set(record):
            needed = " and ".join(repr(c) for c in fields)
            raise ValueError(f"datalist {path} entry {i} of {key!r} needs {needed}, got {record!r}.")
        item = dict(record)
        for name in path_fields:
            if name in item:
                value = item[name]
                if not isinstance(value, str):
                    raise ValueError(f"datalist {path} entry {i} of {key!r}: {name!r} must be a path, got {value!r}.")
                item[name] = value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))
        items.append(item)
    return items
