"""One entry point for every dataset: synthetic, MedMNIST or a NIfTI datalist."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
from monai.data import partition_dataset_classes
from monai.utils import optional_import
from torch.utils.data import ConcatDataset, Dataset, Subset

from .medmnist import BUNDLE_FOR_DIMS, MedMNISTDataset, NpzClassificationDataset, fetch_medmnist, read_npz
from .nifti import check_datalist, nifti_dataset
from .splits import split_name
from .synthetic import SYNTHETIC_INFO, default_cache, make_synthetic

medmnist, _has_medmnist = optional_import("medmnist")

__all__ = ["get_dataset", "dataset_info", "cross_validation_folds"]

def _is_datalist(name: str) -> bool:
    return str(name).lower().endswith((".json", ".csv"))


def get_dataset(
    name: str | os.PathLike,
    split: str,
    root: str | os.PathLike | None = None,
    size: int = 28,
    transform: Callable | None = None,
    pixdim: Sequence[float] | float | None = None,
    fold: int | None = None,
    num_folds: int = 5,
    num_classes: int | None = None,
    download: bool = False,
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
        fold: cross-validation on the training and validation images: with ``fold=k``, the ``"train"`` and
            ``"val"`` splits are replaced by fold ``k`` of :func:`cross_validation_folds` (``"val"`` is fold ``k``,
            ``"train"`` the other folds). The test split is never pooled and ignores ``fold``. None (default) keeps
            the dataset's own split. MedMNIST and synthetic sets only.
        num_folds: number of folds when ``fold`` is given (at least 2).
        num_classes: datalists only: the number of classes when some have no training images (labels must then be
            below it); None requires the training labels to be 0..K-1 (see :func:`~monai_sre.data.check_datalist`).
        download: MedMNIST only: download the npz with the ``medmnist`` package if it is not in ``root``
            (:func:`~monai_sre.data.fetch_medmnist`).

    Raises:
        ValueError: unknown name or split, an empty split, a datalist that fails
            :func:`~monai_sre.data.check_datalist`, or a bad ``fold`` / ``num_folds`` (named in the message).
        FileNotFoundError: missing MedMNIST file or datalist image (named in the message).
        RuntimeError: a truncated or corrupt npz file (named in the message).
    """
    split = split_name(split)
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}.")
    if download and _has_medmnist and str(name).lower() in medmnist.INFO:
        fetch_medmnist(str(name), root, size)
    if fold is not None and split != "test":
        pooled, folds = cross_validation_folds(name, num_folds, root=root, size=size, transform=transform)
        held_out = folds[_check_fold(fold, num_folds)]
        kept = held_out if split == "val" else [i for k, part in enumerate(folds) if k != fold for i in part]
        return Subset(pooled, kept)
    key = str(name)
    dataset: Dataset
    if key in SYNTHETIC_INFO:
        dims = SYNTHETIC_INFO[key]["spatial_dims"]
        path = make_synthetic(root if root is not None else default_cache(), spatial_dims=dims, size=size)
        images, labels = read_npz(path, f"{split}_images", f"{split}_labels")
        dataset = NpzClassificationDataset(images, labels, spatial_dims=dims, transform=transform)
    elif _is_datalist(key):
        return nifti_dataset(key, split, (size,) * 3, pixdim=pixdim, base_dir=root, transform=transform,
                             num_classes=num_classes)
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


def _check_fold(fold: int, num_folds: int) -> int:
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise ValueError(f"fold must be an int in [0, num_folds={num_folds}), got {fold!r}.")
    return fold


def cross_validation_folds(
    name: str | os.PathLike,
    num_folds: int = 5,
    root: str | os.PathLike | None = None,
    size: int = 28,
    transform: Callable | None = None,
    seed: int = 0,
) -> tuple[Dataset, list[list[int]]]:
    """The training and validation images pooled, and their partition into ``num_folds`` class-stratified folds.

    For choosing settings when the validation split is small (78 images in BreastMNIST, 98 in AdrenalMNIST3D): a
    k-fold run predicts every pooled image once, so a comparison rests on 624 or 1286 predictions instead of 78 or
    98, without reading the test split. The folds come from MONAI's
    :func:`~monai.data.partition_dataset_classes` with a fixed ``seed``, so they are the same in every process;
    each fold keeps the class proportions of the pool.

    Args:
        name: a MedMNIST flag or ``"synthetic2d"``/``"synthetic3d"`` (as in :func:`get_dataset`).
        num_folds: number of folds, at least 2.
        root, size, transform: as in :func:`get_dataset`.
        seed: seed of the partition.

    Returns:
        ``(pooled, folds)``: the ``train`` split followed by the ``val`` split as one dataset, and ``num_folds``
        sorted lists of indices into it that are disjoint and cover it.

    Raises:
        ValueError: ``num_folds`` is not an int >= 2 or exceeds the pool, or ``name`` is a NIfTI datalist.
    """
    if isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 2:
        raise ValueError(f"num_folds must be an int >= 2, got {num_folds!r}.")
    if _is_datalist(str(name)):
        raise ValueError(f"fold: cross-validation folds need a MedMNIST or synthetic set, got the datalist {name!r}.")
    parts = [get_dataset(name, split, root=root, size=size, transform=transform) for split in ("train", "val")]
    labels = np.concatenate([np.asarray(p.labels) for p in parts])  # NpzClassificationDataset: (N, 1) or (N, K)
    if num_folds > len(labels):
        raise ValueError(f"num_folds={num_folds} exceeds the {len(labels)} training and validation images of {name!r}.")
    # single-label sets are stratified by class; multi-label ones (ChestMNIST) by their first label
    folds = partition_dataset_classes(list(range(len(labels))), classes=labels[:, 0].astype(int).tolist(),
                                      num_partitions=num_folds, shuffle=True, seed=seed)
    return ConcatDataset(parts), [sorted(int(i) for i in f) for f in folds]


def dataset_info(
    name: str | os.PathLike,
    root: str | os.PathLike | None = None,
    size: int = 28,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
) -> dict:
    """Shape and label facts of a dataset, without loading its images.

    Args:
        name: as in :func:`get_dataset`.
        root: as in :func:`get_dataset` (only datalists read files here).
        size: as in :func:`get_dataset` (does not change the result).
        num_classes: the number of classes if known (None: from the dataset). A datalist then need not have a
            training image of every class; for the other datasets it must equal theirs.
        spatial_dims: the number of spatial dimensions the caller's network takes (a bundle's 2 or 3), if fixed.

    Returns:
        ``dict(spatial_dims, in_channels, num_classes, task, label_names)``; ``task`` is MedMNIST's wording
        (``"multi-class"``, ``"binary-class"``, ``"multi-label, binary-class"``, ``"ordinal-regression"``).

    Raises:
        ValueError: unknown ``name``, a datalist that fails :func:`~monai_sre.data.check_datalist` (e.g. training
            labels that are not 0..K-1 without ``num_classes``), or a ``num_classes`` or ``spatial_dims`` that
            contradicts the dataset (the message names the bundle for its data).
    """
    facts = _facts(str(name), root, num_classes)
    dims = facts["spatial_dims"]
    if spatial_dims is not None and dims != spatial_dims:
        raise ValueError(
            f"dataset {str(name)!r} holds {dims}D images but this network takes {spatial_dims}D ones: use "
            f"{BUNDLE_FOR_DIMS[dims]} for {dims}D data."
        )
    return facts


def _facts(key: str, root: str | os.PathLike | None, num_classes: int | None) -> dict:
    if _is_datalist(key):
        content = check_datalist(key, root, num_classes=num_classes)
        count = num_classes if num_classes is not None else max(it["label"] for it in content["training"]) + 1
        return {"spatial_dims": 3, "in_channels": 1, "num_classes": count,
                "task": "binary-class" if count == 2 else "multi-class",
                "label_names": [str(i) for i in range(count)]}
    if key in SYNTHETIC_INFO:
        info = SYNTHETIC_INFO[key]
        facts = {"spatial_dims": info["spatial_dims"], "in_channels": 1, "num_classes": 2, "task": "binary-class",
                 "label_names": [info["labels"][str(i)] for i in range(2)]}
    elif _has_medmnist and key.lower() in medmnist.INFO:
        info = medmnist.INFO[key.lower()]
        names = [info["label"][k] for k in sorted(info["label"], key=int)]
        facts = {"spatial_dims": 3 if key.lower().endswith("3d") else 2, "in_channels": info["n_channels"],
                 "num_classes": len(names), "task": info["task"], "label_names": names}
    else:
        raise ValueError(
            f"name must be 'synthetic3d', 'synthetic2d', a MedMNIST flag or a .json/.csv datalist path, got {key!r}."
        )
    if num_classes is not None and num_classes != facts["num_classes"]:
        raise ValueError(
            f"num_classes={num_classes!r} but dataset {key!r} has {facts['num_classes']} classes: leave num_classes "
            f"null (it is only needed for datalists whose training labels miss a class)."
        )
    return facts
