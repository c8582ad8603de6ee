"""A fixed isotropic Gaussian low-pass, as a module that scripts, traces and exports."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.layers.convutils import gaussian_1d

from monai_sre.layers.band_conv import conv_nd

__all__ = ["GaussianSmoothing"]


class GaussianSmoothing(nn.Module):
    """Smooth every channel of ``(B, C, *spatial)`` with the same fixed Gaussian of ``sigma`` voxels on every axis.

    The 1D kernel is MONAI's ``gaussian_1d`` (erf approximation, ``truncated`` sigmas); the N-D kernel is its outer
    product, so it is symmetric under every rotation by 90 degrees and every flip of the grid, and the layer commutes
    with them exactly. Borders are zero-padded, so the output keeps the input's size.

    MONAI's ``GaussianFilter`` computes the same smoothing but cannot be compiled by ``torch.jit.script`` (needed by
    ``monai.bundle ckpt_export``) and stores sigma as a parameter. Here the kernel is a non-persistent buffer built
    once from ``sigma``: there is nothing to train and nothing in the state dict.

    Args:
        spatial_dims: 1, 2 or 3.
        sigma: standard deviation in voxels, > 0.
        truncated: the kernel reaches ``truncated * sigma`` voxels from its centre.
    """

    def __init__(self, spatial_dims: int, sigma: float, truncated: float = 4.0) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"GaussianSmoothing: spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0.0 < float(sigma) < float("inf"):
            raise ValueError(f"GaussianSmoothing: sigma must be a positive number of voxels, got {sigma!r}.")
        self.spatial_dims = spatial_dims
        self.sigma = float(sigma)
        k1 = gaussian_1d(torch.tensor(self.sigma), truncated=truncated, approx="erf").float()
        kernel = k1
        for _ in range(spatial_dims - 1):
            kernel = kernel.unsqueeze(-1) * k1
        self.padding = [int(k1.numel() // 2)] * spatial_dims
        self.register_buffer("kernel", kernel[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"GaussianSmoothing expects (B, C, *spatial) with {self.spatial_dims + 2} dims, got {list(x.shape)}."
            )
        shape = x.shape
        flat = x.flatten(0, 1).unsqueeze(1)
        ones = [1] * self.spatial_dims
        out = conv_nd(flat, self.kernel.to(x.dtype), None, ones, self.padding, ones, 1)
        return out.reshape(shape)

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}, sigma={self.sigma}"
