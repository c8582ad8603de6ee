"""One entry point for every dataset: synthetic, MedMNIST or a NIfTI datalist."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from monai.utils import optional_import
from torch.utils.data import Dataset

from .medmnist import MedMNISTDataset, NpzClassificationDataset, read_npz
from .nifti import check_datalist, nifti_dataset
from .splits import split_name
from .synthetic import SYNTHETIC_INFO, default_cache, make_synthetic

medmnist, _has_medmnist = optional_import("medmnist")

__all__ = ["get_dataset", "dataset_info"]

def _is_datalist(name: str) -> bool:
    return str(name).lower().endswith((".json", ".csv"))


def get_dataset(
    name: str | os.PathLike,
    split: str,
    root: str | os.PathLike | None = None,
    size: int = 28,
    transform: Callable | None = None,
    pixdim: Sequence[float] | float | None = None,
) -> Dataset:
    """Dataset of MONAI dictionaries ``{"image": float (C, *spatial), "label": int | multi-hot}``.

    Args:
        name: ``"synthetic3d"``/``"synthetic2d"`` (generated into ``root`` if missing, see
            :func:`~monai_sre.data.make_synthetic`), a MedMNIST flag such as ``"adrenalmnist3d"`` (read from ``root``,
            default ``$MONAI_SRE_DATA`` or ``~/.medmnist``), or the path of a NIfTI datalist ``.json``/``.csv``.
        split: ``"train"``, ``"val"`` or ``"test"`` (``"training"``/``"validation"`` also accepted).
        root: data folder (synthetic default: ``~/.cache/monai_sre``; datalists: base folder of relative paths).
        size: image size (MedMNIST 28/64/128/224; synthetic any >= 16; datalists: cubic model input size).
        transform: dictionary transform applied to every item.
        pixdim: datalists only: target voxel spacing in mm (MONAI ``Spacingd``) before the resize to ``size``;
            None keeps each volume's spacing.

    Raises:
        ValueError: unknown name or split, an empty split, or a datalist that fails
            :func:`~monai_sre.data.check_datalist`.
        FileNotFoundError: missing MedMNIST file or datalist image (named in the message).
        RuntimeError: a truncated or corrupt npz file (named in the message).
    """
    split = split_name(split)
    key = str(name)
    dataset: Dataset
    if key in SYNTHETIC_INFO:
        dims = SYNTHETIC_INFO[key]["spatial_dims"]
        path = make_synthetic(root if root is not None else default_cache(), spatial_dims=dims, size=size)
        images, labels = read_npz(path, f"{split}_images", f"{split}_labels")
        dataset = NpzClassificationDataset(images, labels, spatial_dims=dims, transform=transform)
    elif _is_datalist(key):
        return nifti_dataset(key, split, (size,) * 3, pixdim=pixdim, base_dir=root, transform=transform)
    elif _has_medmnist and key.lower() in medmnist.INFO:
        dataset = MedMNISTDataset(key, split, root=root, size=size, transform=transform)
    else:
        raise ValueError(
            f"name must be 'synthetic3d', 'synthetic2d', a MedMNIST flag or a .json/.csv datalist path, got {name!r}."
        )
    if len(dataset) == 0:
        raise ValueError(
            f"the {split!r} split of dataset {name!r} is empty: a run needs images in every split it uses."
        )
    return dataset


def dataset_info(name: str | os.PathLike, root: str | os.PathLike | None = None, size: int = 28) -> dict:
    """Shape and label facts of a dataset, without loading its images.

    Args:
        name: as in :func:`get_dataset`.
        root: as in :func:`get_dataset` (only datalists read files here).
        size: as in :func:`get_dataset` (does not change the result).

    Returns:
        ``dict(spatial_dims, in_channels, num_classes, task, label_names)``; ``task`` is MedMNIST's wording
        (``"multi-class"``, ``"binary-class"``, ``"multi-label, binary-class"``, ``"ordinal-regression"``).
    """
    key = str(name)
    if key in SYNTHETIC_INFO:
        info = SYNTHETIC_INFO[key]
        return {"spatial_dims": info["spatial_dims"], "in_channels": 1, "num_classes": 2, "task": "binary-class",
                "label_names": [info["labels"][str(i)] for i in range(2)]}
    if _is_datalist(key):
        num_classes = max(it["label"] for it in check_datalist(key, root)["training"]) + 1
        return {"spatial_dims": 3, "in_channels": 1, "num_classes": num_classes,
                "task": "binary-class" if num_classes == 2 else "multi-class",
                "label_names": [str(i) for i in range(num_classes)]}
    if _has_medmnist and key.lower() in medmnist.INFO:
        info = medmnist.INFO[key.lower()]
        names = [info["label"][k] for k in sorted(info["label"], key=int)]
        return {"spatial_dims": 3 if key.lower().endswith("3d") else 2, "in_channels": info["n_channels"],
                "num_classes": len(names), "task": info["task"], "label_names": names}
    raise ValueError(
        f"name must be 'synthetic3d', 'synthetic2d', a MedMNIST flag or a .json/.csv datalist path, got {name!r}."
    )
