"""monai_sre: rotation-equivariant SRE convolutions and networks for MONAI."""

from __future__ import annotations

__version__ = "0.2.0"

from .blocks import SREConv, SREConvTranspose
from .layers import band_basis, band_index
from .nets import SREResNet, get_model, list_models
from .utils import convert_to_sre, equivariance_error, export_to_conv, grid_symmetries
from .transforms import RotateAxis, RotateAxisd, rotate_batch, rotation_protocol
from .data import MedMNISTDataset, dataset_info, get_dataset, make_synthetic

__all__ = [
    "MedMNISTDataset",
    "RotateAxis",
    "RotateAxisd",
    "dataset_info",
    "get_dataset",
    "make_synthetic",
    "rotate_batch",
    "rotation_protocol",
    "SREConv",
    "SREConvTranspose",
    "SREResNet",
    "band_basis",
    "band_index",
    "convert_to_sre",
    "equivariance_error",
    "export_to_conv",
    "get_model",
    "grid_symmetries",
    "list_models",
]
