"""NIfTI classification datalists (MONAI JSON or CSV) loaded with MONAI's ``LoadImaged`` (nibabel)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from monai.data import Dataset, load_decathlon_datalist
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Orientationd,
    Resized,
    ResizeWithPadOrCropd,
    ScaleIntensityd,
    Spacingd,
)

__all__ = ["load_datalist", "nifti_transforms", "nifti_dataset", "NiftiDataset", "DATALIST_SPLITS"]

#: Accepted split names and the datalist key they map to.
DATALIST_SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation",
                   "test": "test"}


def load_datalist(
    datalist: str | os.PathLike, split: str = "training", base_dir: str | os.PathLike | None = None
) -> list[dict]:
    """Read a datalist into ``[{"image": abs_path, "label": int, ...}, ...]``.

    JSON: MONAI/Decathlon style, ``{"training": [{"image": "a.nii.gz", "label": 0}, ...], "validation": [...],
    "test": [...]}`` (read with :func:`monai.data.load_decathlon_datalist`). CSV: header with ``image`` and
    ``label`` columns (optional ``split`` column holding training/validation/test). Relative paths are resolved
    against ``base_dir`` (default: the datalist's folder).

    Args:
        datalist: ``.json`` or ``.csv`` path.
        split: ``"training"``/``"train"``, ``"validation"``/``"val"`` or ``"test"``.
        base_dir: folder for relative image paths.

    Raises:
        FileNotFoundError: the datalist or one of its images is missing (the message names it).
        ValueError: unknown split or format, or a malformed entry.
    """
    path = Path(datalist)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path.resolve()}")
    if split not in DATALIST_SPLITS:
        raise ValueError(f"split must be one of {sorted(DATALIST_SPLITS)}, got {split!r}.")
    key = DATALIST_SPLITS[split]
    base = Path(base_dir) if base_dir is not None else path.parent
    if path.suffix.lower() == ".json":
        with open(path) as f:
            content = json.load(f)
        if key not in content:
            raise ValueError(f"datalist {path} has no {key!r} list (keys: {sorted(content)}).")
        items = load_decathlon_datalist(str(path), is_segmentation=False, data_list_key=key, base_dir=str(base))
    elif path.suffix.lower() == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"image", "label"} <= set(rows[0]):
            raise ValueError(f"CSV datalist {path} needs 'image' and 'label' columns, got {sorted(rows[0])}.")
        items = [
            {"image": str(base / r["image"]) if not os.path.isabs(r["image"]) else r["image"], "label": r["label"]}
            for r in rows
            if DATALIST_SPLITS.get(r.get("split") or key) == key
        ]
    else:
        raise ValueError(f"datalist must be a .json or .csv file, got {path}.")
    out = []
    for i, item in enumerate(items):
        if "image" not in item or "label" not in item:
            raise ValueError(f"datalist {path} entry {i} of {key!r} needs 'image' and 'label', got {sorted(item)}.")
        if not os.path.isfile(item["image"]):
            raise FileNotFoundError(f"image listed in {path} ({key!r} entry {i}) not found: {item['image']}")
        try:
            label = int(item["label"])
        except (TypeError, ValueError):
            raise ValueError(f"datalist {path} entry {i}: label must be an int, got {item['label']!r}.") from None
        out.append({**item, "label": label})
    return out


def nifti_transforms(
    spatial_size: Sequence[int] | int = (28, 28, 28),
    pixdim: Sequence[float] | float | None = None,
    axcodes: str = "RAS",
    resize: str = "resize",
    keys: Sequence[str] = ("image",),
    extra: Sequence[Callable] = (),
) -> Compose:
    """The loading pipeline: nibabel read, channel first, orientation, optional spacing, resize, [0, 1] scaling.

    Args:
        spatial_size: model input size.
        pixdim: target voxel spacing in mm (None keeps the native spacing).
        axcodes: orientation after loading (``"RAS"``).
        resize: ``"resize"`` (trilinear :class:`~monai.transforms.Resized`) or ``"pad_crop"``
            (:class:`~monai.transforms.ResizeWithPadOrCropd` around the centre).
        keys: image keys.
        extra: dictionary transforms appended at the end (e.g. a fixed rotation for rotated evaluation).

    Returns:
        a :class:`monai.transforms.Compose` usable in Python or referenced from a bundle config.
    """
    if resize not in ("resize", "pad_crop"):
        raise ValueError(f"resize must be 'resize' or 'pad_crop', got {resize!r}.")
    keys = list(keys)
    tfs: list[Callable] = [
        LoadImaged(keys, reader="NibabelReader", image_only=True),
        EnsureChannelFirstd(keys),
        Orientationd(keys, axcodes=axcodes, labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if pixdim is not None:
        tfs.append(Spacingd(keys, pixdim=pixdim, mode="bilinear"))
    if resize == "resize":
        tfs.append(Resized(keys, spatial_size=spatial_size, mode="trilinear", anti_aliasing=False))
    else:
        tfs.append(ResizeWithPadOrCropd(keys, spatial_size=spatial_size))
    tfs.append(ScaleIntensityd(keys, minv=0.0, maxv=1.0))
    tfs.append(EnsureTyped(keys, dtype="float32", track_meta=False))
    return Compose([*tfs, *extra])


class NiftiDataset(Dataset):
    """:class:`monai.data.Dataset` whose loading errors name the offending file."""

    def _transform(self, index: int):
        try:
            return super()._transform(index)
        except Exception as err:
            name = self.data[index].get("image", f"item {index}")
            raise RuntimeError(f"failed to load or transform {name}: {err}") from err


def nifti_dataset(
    datalist: str | os.PathLike,
    split: str = "training",
    spatial_size: Sequence[int] | int = (28, 28, 28),
    pixdim: Sequence[float] | float | None = None,
    base_dir: str | os.PathLike | None = None,
    resize: str = "resize",
    transform: Callable | None = None,
) -> NiftiDataset:
    """A dataset of ``{"image": (1, *spatial_size) float in [0, 1], "label": int}`` from a NIfTI datalist.

    Args:
        datalist: ``.json`` (MONAI style) or ``.csv`` (``image,label``) file, see :func:`load_datalist`.
        split: ``"training"``, ``"validation"`` or ``"test"`` (or ``"train"``/``"val"``).
        spatial_size: model input size.
        pixdim: optional resampling spacing.
        base_dir: folder for relative paths (default: the datalist's folder).
        resize: ``"resize"`` or ``"pad_crop"``.
        transform: dictionary transform applied after the loading pipeline.

    Raises:
        FileNotFoundError: missing datalist or image (named). Corrupt files raise ``RuntimeError`` naming the file
        when the item is read.

    Example:
        >>> ds = nifti_dataset("datalist.json", "training", spatial_size=(28, 28, 28))  # doctest: +SKIP
        >>> ds[0]["image"].shape  # doctest: +SKIP
        torch.Size([1, 28, 28, 28])
    """
    items = load_datalist(datalist, split, base_dir)
    extra = [transform] if transform is not None else []
    return NiftiDataset(items, nifti_transforms(spatial_size, pixdim, resize=resize, extra=extra))
