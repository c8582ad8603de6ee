"""Equivariance checks and model conversion helpers."""

from .convert import ConversionReport, SREConversionError, SREConversionWarning, convert_to_sre
from .export import SREExportError, export_to_conv
from .io import atomic_path, atomic_write
from .plots import plot_sweep
from .equivariance import GridSymmetry, equivariance_error, equivariance_errors, grid_symmetries, invariance_error
from .grid_tta import GridTTA
from .trainability import ActivationRecorder, layer_statistics, tracked_layers

__all__ = [
    "ActivationRecorder",
    "ConversionReport",
    "GridSymmetry",
    "GridTTA",
    "SREConversionError",
    "SREConversionWarning",
    "SREExportError",
    "atomic_path",
    "atomic_write",
    "convert_to_sre",
    "equivariance_error",
    "equivariance_errors",
    "export_to_conv",
    "grid_symmetries",
    "invariance_error",
    "layer_statistics",
    "plot_sweep",
    "tracked_layers",
]
