"""monai_sre: rotation-equivariant SRE convolutions and networks for MONAI."""

from __future__ import annotations

__version__ = "0.1.0"

from .blocks import SREConv, SREConvTranspose
from .layers import band_basis, band_index
from .utils import convert_to_sre, equivariance_error, export_to_conv, grid_symmetries

__all__ = [
    "SREConv",
    "SREConvTranspose",
    "band_basis",
    "band_index",
    "convert_to_sre",
    "equivariance_error",
    "export_to_conv",
    "grid_symmetries",
]
