"""Pure kernel maths for symmetric N-D kernels (rings / shells); torch only."""

from .bands import band_basis, band_index, default_num_bands, expand_kernel

__all__ = ["band_basis", "band_index", "default_num_bands", "expand_kernel"]
