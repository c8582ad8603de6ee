"""The one datalist reader: MONAI/Decathlon JSON or CSV in, items with resolved paths out, named errors."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from .splits import DATALIST_KEYS, datalist_key, known_split

__all__ = ["read_datalist", "DatalistSplitError", "INFERENCE_KEYS"]

#: lists an inference datalist may hold its images under, in the order they are looked up
INFERENCE_KEYS = ("test", "testing", "data", "validation", "images")


class DatalistSplitError(ValueError):
    """The datalist has no list for the requested split."""


#: how the messages spell the known split names
_KNOWN = "training/validation/test (or train/val; any letter case)"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"datalist {path} is not a UTF-8 text file (byte {err.start}): {err.reason}.") from err


def _json_content(path: Path) -> object:
    """The parsed file; a syntax error or an empty file is a ``ValueError`` naming the file, line and column."""
    text = _text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "is empty" if not text.strip() else f"is not valid JSON ({err.msg})"
        raise ValueError(f"datalist {path} {what} at line {err.lineno}, column {err.colno}.") from None


def _split_list(path: Path, content: dict, split: str) -> tuple[object, str]:
    """The list of ``split`` in a JSON datalist, its key matched in any spelling and letter case."""
    key = datalist_key(split)
    found = [k for k in content if known_split(k) is not None and DATALIST_KEYS[known_split(k)] == key]
    if not found:
        raise DatalistSplitError(f"datalist {path} has no {key!r} list (keys: {sorted(content)}).")
    if len(found) > 1:
        raise ValueError(f"datalist {path} has {len(found)} lists for the {key!r} split ({found}): keep one.")
    return content[found[0]], key


def _json_records(path: Path, split: str | None) -> tuple[object, str]:
    content = _json_content(path)
    if isinstance(content, list):
        return content, split or "items"
    if not isinstance(content, dict):
        raise ValueError(f"datalist {path} must hold a list or a dict of lists, got {type(content).__name__}.")
    if split is not None:
        return _split_list(path, content, split)
    by_lower = {str(k).lower(): k for k in content}
    for key in INFERENCE_KEYS:
        if key in by_lower:
            return content[by_lower[key]], key
    if "image" in content:  # a single item
        return [content], "items"
    raise DatalistSplitError(
        f"datalist {path} must be a list or hold one of the lists {list(INFERENCE_KEYS)}, got keys {sorted(content)}."
    )


def _csv_records(path: Path, split: str | None, fields: Sequence[str]) -> tuple[list[dict], str]:
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    columns = reader.fieldnames or []
    rows = [(reader.line_num, row) for row in reader]
    if not columns:
        raise ValueError(f"CSV datalist {path} is empty: it needs a header line with {list(fields)} columns.")
    if not set(fields) <= set(columns):
        needed = " and ".join(repr(c) for c in fields)
        raise ValueError(f"CSV datalist {path} needs {needed} columns, got {sorted(columns)}.")
    if split is None:
        return [row for _, row in rows], "rows"
    key = datalist_key(split)
    unknown = [(line, row) for line, row in rows if (row.get("split") or "").strip() and known_split(row["split"]) is None]
    if unknown:
        shown = "; ".join(f"line {line} ({row.get('image')!r}): split {row['split']!r}" for line, row in unknown[:5])
        more = f"; and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(
            f"CSV datalist {path}: {len(unknown)} row(s) name an unknown split: {shown}{more}. The known splits are "
            f"{_KNOWN}; an empty split puts a row in every split."
        )
    return [row for _, row in rows if not (row.get("split") or "").strip() or
            DATALIST_KEYS[known_split(row["split"])] == key], key


def read_datalist(
    datalist: str | os.PathLike,
    split: str | None = "training",
    base_dir: str | os.PathLike | None = None,
    fields: Sequence[str] = ("image", "label"),
    path_fields: Sequence[str] = ("image",),
) -> list[dict]:
    """Read one split of a datalist into ``[{"image": path, ...}, ...]``, checking its structure only.

    JSON is MONAI/Decathlon style, ``{"training": [{"image": "a.nii.gz", "label": 0}, ...], "validation": [...],
    "test": [...]}``; CSV has a header with the ``fields`` columns and an optional ``split`` column (rows with an
    empty one belong to every split). Split names, in the argument, as JSON keys and in the CSV column, may be any
    spelling of :data:`~monai_sre.data.splits.SPLIT_NAMES` in any letter case (``"Training"``, ``"VAL"``); a CSV row
    naming another split is an error, never a silently dropped row. With ``split=None`` (inference) a JSON datalist may also be a plain list, or hold
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
        ValueError: unknown split or format; a JSON syntax error or an empty file (naming the file, line and
            column); a CSV row with an unknown split (naming its line and the known splits); two JSON lists for one
            split; or a malformed item (naming the datalist, the list and the item's index).
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
