"""Pure kernel maths for symmetric N-D kernels (rings / shells); torch only."""

from .band_conv import BAND_ORDERS, band_conv, band_conv_costs, band_conv_nd, band_filter, conv_nd
from .bands import BASIS_NORMS, band_basis, band_index, band_sizes, default_num_bands, expand_kernel

__all__ = [
    "BAND_ORDERS",
    "BASIS_NORMS",
    "band_basis",
    "band_conv",
    "band_conv_costs",
    "band_conv_nd",
    "band_filter",
    "band_index",
    "band_sizes",
    "conv_nd",
    "default_num_bands",
    "expand_kernel",
]
