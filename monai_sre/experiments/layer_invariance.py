"""Where an SRE layer loses equivariance off the grid: the kernel's band profile against interpolation itself.

For one convolution layer ``f`` (random weights, one input channel, ``channels`` outputs) and a rotation ``R`` by an
angle that is not a multiple of 90 degrees, the equivariance error is

    ``|| R^-1 f(R x) - f(x) || / || f(x) ||``

inside the central disc (ball) of radius ``0.3 * size``, where no voxel comes from outside the image. Both paths of
that comparison interpolate, so even an exactly isotropic kernel does not reach zero: the **floor** of a layer is the
same error with ``f`` after the round trip, ``|| R^-1 R f(x) - f(x) || / || f(x) ||``, and the **input floor** is that of
the input itself. The rest of a layer's error is what its kernel's discretisation adds: the taps of a band sit at
different radii, and the box corners join the outer band.

The layers compared (``VARIANTS``): a plain dense kernel; SRE with the original hard band masks (with and without the
box corners, ``circular``); smoother radial profiles of :func:`monai_sre.layers.band_basis` (``partial``: partial-volume
weights of a supersampled tap; ``linear``: linear interpolation between band radii; ``gaussian``: Gaussian-smoothed
rings); and twice the bands. Inputs are band-limited random fields (Gaussian-filtered noise, where interpolation is
nearly exact, so the kernel's share shows) or a dataset's training images (what the networks see). Rotations use
:func:`monai_sre.transforms.rotate_batch` (bilinear); 3D rotates about axis 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from monai_sre.layers import band_basis, conv_nd, expand_kernel
from monai_sre.transforms import rotate_batch

__all__ = ["VARIANTS", "central_mask", "layer_kernels", "layer_invariance", "smooth_fields", "to_markdown",
           "training_images", "network_invariance"]

#: name -> how its kernel is built (``None``: a plain dense kernel; else :func:`band_basis` arguments)
VARIANTS: dict[str, dict[str, Any] | None] = {
    "plain": None,
    "hard": {"profile": "hard"},
    "hard, circular": {"profile": "hard", "circular": True},
    "partial": {"profile": "partial"},
    "partial, circular": {"profile": "partial", "circular": True},
    "linear, circular": {"profile": "linear", "circular": True},
    "gaussian": {"profile": "gaussian"},
    "hard, one band per radius": {"profile": "hard", "per_radius": True},
}


def smooth_fields(spatial_dims: int, n: int, size: int, sigma: float = 1.5, seed: int = 0) -> torch.Tensor:
    """``(n, 1, size, ...)`` Gaussian-filtered white noise (standard deviation ``sigma`` voxels), unit variance."""
    from monai.networks.layers import GaussianFilter

    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((n, 1) + (size,) * spatial_dims, generator=g, dtype=torch.float64)
    x = GaussianFilter(spatial_dims, sigma).to(torch.float64)(noise)
    return (x / x.std()).float()


def training_images(dataset: str, data_root: str, n: int = 16, size: int = 28) -> torch.Tensor:
    """The first ``n`` training images of a MedMNIST ``dataset`` as ``(n, 1, size, ...)``, zero mean, unit variance
    (the test split is never read)."""
    from monai_sre.data import get_dataset

    data = get_dataset(dataset, "train", root=data_root, size=size)
    x = torch.stack([torch.as_tensor(data[i]["image"], dtype=torch.float32) for i in range(min(n, len(data)))])
    return (x - x.mean()) / x.std()


def central_mask(spatial_dims: int, size: int, fraction: float = 0.3) -> torch.Tensor:
    """The central disc (ball) of radius ``fraction * size`` as a 0/1 mask of the grid."""
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    grids = torch.meshgrid(*([c] * spatial_dims), indexing="ij")
    return (torch.sqrt(sum(g * g for g in grids)) <= fraction * size).float()


def layer_kernels(variant: Mapping[str, Any] | None, spatial_dims: int, kernel_size: int, channels: int,
                  draws: int, seed: int = 0) -> torch.Tensor:
    """``(draws * channels, 1, k, ...)`` kernels of a variant with standard normal weights (per band, or per tap)."""
    g = torch.Generator().manual_seed(seed)
    if variant is None:
        return torch.randn((draws * channels, 1) + (kernel_size,) * spatial_dims, generator=g)
    spec = dict(variant)
    if spec.pop("per_radius", False):  # every distinct tap distance its own band: the finest hard basis
        c = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
        d2 = sum(g * g for g in torch.meshgrid(*([c] * spatial_dims), indexing="ij")).round().long()
        basis = torch.stack([(d2 == v).float() for v in d2.unique()])
        basis = basis / basis.flatten(1).sum(1).sqrt().view(-1, *([1] * spatial_dims))
    else:
        basis = band_basis(kernel_size, spatial_dims=spatial_dims, norm="orthonormal", **spec)
    weight = torch.randn((draws * channels, 1, basis.shape[0]), generator=g)
    return expand_kernel(weight, basis)


def _relative(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-channel ``||a - b|| / ||b||`` inside ``mask``, averaged over the batch: ``(channels,)``."""
    dims = tuple(range(2, a.dim()))
    num = ((a - b) * mask).square().sum(dims).sqrt()
    den = (b * mask).square().sum(dims).sqrt().clamp_min(1e-12)
    return (num / den).mean(0)


def layer_invariance(x: torch.Tensor, angles: Sequence[float] = (15.0, 30.0, 45.0), kernel_size: int = 7,
                     channels: int = 8, draws: int = 4,
                     variants: Mapping[str, Mapping[str, Any] | None] | None = None,
                     seed: int = 0) -> list[dict[str, Any]]:
    """The equivariance error and floor of each variant's layer at each angle, on the images ``x``.

    Args:
        x: ``(n, 1, *spatial)`` inputs, square (cubic).
        angles: rotation angles in degrees.
        kernel_size: odd kernel size of the layer.
        channels: output channels per weight draw.
        draws: independent weight draws (the error is averaged over draws, channels and images).
        variants: ``{name: spec}`` (default :data:`VARIANTS`).
        seed: seed of the weight draws (the same for every variant).

    Returns:
        one row per variant and one ``"input (round trip)"`` row: ``variant`` and, per angle ``a``, ``err_<a>``,
        ``floor_<a>`` (the round trip of the layer's output) and ``excess_<a>`` (error minus floor).

    Raises:
        ValueError: ``x`` not ``(n, 1, *spatial)`` with equal spatial sizes, or an even ``kernel_size``.
    """
    spatial_dims = x.dim() - 2
    if spatial_dims not in (2, 3) or x.shape[1] != 1 or len(set(x.shape[2:])) != 1:
        raise ValueError(f"x must be (n, 1, *spatial) with equal spatial sizes in 2D or 3D, got {tuple(x.shape)}.")
    if kernel_size % 2 == 0 or kernel_size < 1:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}.")
    axis = None if spatial_dims == 2 else 0
    mask = central_mask(spatial_dims, x.shape[-1])

    def rot(t: torch.Tensor, angle: float) -> torch.Tensor:
        return rotate_batch(t, angle, axis)

    rows = [{"variant": "input (round trip)"}]
    for angle in angles:
        value = float(_relative(rot(rot(x, angle), -angle), x, mask).mean())
        rows[0].update({f"err_{angle:g}": value, f"floor_{angle:g}": value, f"excess_{angle:g}": 0.0})
    for name, spec in (VARIANTS if variants is None else variants).items():
        kernels = layer_kernels(spec, spatial_dims, kernel_size, channels, draws, seed)

        def f(t: torch.Tensor) -> torch.Tensor:
            n = t.dim() - 2
            return conv_nd(t, kernels, None, [1] * n, [kernel_size // 2] * n, [1] * n, 1)

        y = f(x)
        row: dict[str, Any] = {"variant": name}
        for angle in angles:
            err = float(_relative(rot(f(rot(x, angle)), -angle), y, mask).mean())
            floor = float(_relative(rot(rot(y, angle), -angle), y, mask).mean())
            row.update({f"err_{angle:g}": err, f"floor_{angle:g}": floor, f"excess_{angle:g}": err - floor})
        rows.append(row)
    return rows


def network_invariance(network: torch.nn.Module, x: torch.Tensor, angles: Sequence[float] = (15.0, 30.0, 45.0),
                       batch: int = 16) -> dict[str, float]:
    """Relative change of an invariant network's outputs (logits) under rotations, against interpolation's floor.

    ``err_<a>`` is the mean over images of ``||f(R x) - f(x)|| / ||f(x)||``; ``floor_<a>`` the same for the round trip
    ``f(R^-1 R x)``, which interpolates twice and turns nothing, so a network whose error stays near its floor loses
    no more to the turn than to the interpolation it brings.
    """
    axis = None if x.dim() == 4 else 0
    network = network.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        for angle in angles:
            err, floor = [], []
            for chunk in x.split(batch):
                y = network(chunk)
                turned = rotate_batch(chunk, angle, axis)
                norm = y.flatten(1).norm(dim=1).clamp_min(1e-12)
                err.append((network(turned) - y).flatten(1).norm(dim=1) / norm)
                floor.append((network(rotate_batch(turned, -angle, axis)) - y).flatten(1).norm(dim=1) / norm)
            out[f"err_{angle:g}"], out[f"floor_{angle:g}"] = float(torch.cat(err).mean()), float(torch.cat(floor).mean())
    return out


def to_markdown(tables: Mapping[str, Sequence[Mapping[str, Any]]], angles: Sequence[float]) -> str:
    """One table per input kind: per variant, the error (and its excess over the floor) at each angle, in %."""
    lines = []
    for title, rows in tables.items():
        head = " | ".join(f"{a:g}°: error (excess)" for a in angles)
        lines += [f"**{title}**", "", f"| layer | {head} |", "|---|" + "---|" * len(angles)]
        for r in rows:
            cells = [f"{100 * r[f'err_{a:g}']:.2f} ({100 * r[f'excess_{a:g}']:+.2f})" for a in angles]
            lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
