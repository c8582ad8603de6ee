"""Datasets: MedMNIST (offline npz), NIfTI datalists and the embedded synthetic 2D/3D sets."""

from __future__ import annotations

from .datasets import cross_validation_folds, dataset_info, get_dataset
from .medmnist import (
    BUNDLE_FOR_DIMS,
    DOWNLOAD_HINT,
    MEDMNIST_FLAGS,
    MEDMNIST_SIZES,
    MedMNISTDataset,
    NpzClassificationDataset,
    default_root,
    fetch_medmnist,
)
from .datalist import read_datalist
from .nifti import (
    NiftiDataset,
    check_datalist,
    file_version,
    image_problem,
    load_datalist,
    load_error,
    nifti_dataset,
    nifti_transforms,
)
from .synthetic_segmentation import (
    AFFINE_TOLERANCE,
    ORIENTED_SEGMENTATION,
    RANDOM_SEGMENTATION,
    SEGMENTATION_LABELS,
    SYNTHETIC_SEGMENTATION_SETS,
    check_segmentation_items,
    make_synthetic_segmentation,
    segmentation_datalist,
    segmentation_transforms,
)
from .splits import DATALIST_KEYS, DATALIST_SPLITS, SPLIT_NAMES, datalist_key, split_name
from .synthetic import SYNTHETIC_INFO, SYNTHETIC_NAMES, default_cache, make_synthetic, synthetic_name

__all__ = [
    "AFFINE_TOLERANCE",
    "BUNDLE_FOR_DIMS",
    "DATALIST_KEYS",
    "DATALIST_SPLITS",
    "MEDMNIST_FLAGS",
    "MEDMNIST_SIZES",
    "MedMNISTDataset",
    "NiftiDataset",
    "NpzClassificationDataset",
    "ORIENTED_SEGMENTATION",
    "RANDOM_SEGMENTATION",
    "SEGMENTATION_LABELS",
    "SPLIT_NAMES",
    "SYNTHETIC_INFO",
    "SYNTHETIC_NAMES",
    "SYNTHETIC_SEGMENTATION_SETS",
    "check_datalist",
    "check_segmentation_items",
    "cross_validation_folds",
    "datalist_key",
    "dataset_info",
    "default_cache",
    "default_root",
    "fetch_medmnist",
    "DOWNLOAD_HINT",
    "file_version",
    "get_dataset",
    "image_problem",
    "load_datalist",
    "load_error",
    "make_synthetic",
    "make_synthetic_segmentation",
    "nifti_dataset",
    "nifti_transforms",
    "read_datalist",
    "segmentation_datalist",
    "segmentation_transforms",
    "split_name",
    "synthetic_name",
]
