"""Band geometry of symmetric rotation-equivariant (SRE) kernels.

An SRE kernel assigns every tap of an odd-sized kernel to a concentric band (a ring in 2D, a
spherical shell in 3D) by its distance from the kernel centre, and shares one weight per band.
Everything here is a pure function of the kernel geometry; the modules in
:mod:`monai_sre.blocks` own the parameters.

Band rule. Let ``d`` be the distance of a tap from the centre, in voxels or, with ``spacing``, in
physical units, and let ``R`` be the largest half-extent of the kernel along any axis in the same
units. With ``B`` bands the band width is ``w = R / (B - 1)`` (``w = R`` when ``B == 1`` and the
kernel has extent) and a tap belongs to band ``round(d / w)``. Taps farther than the last band
(the corners of a box) join the last band, or are dropped (band ``-1``) with ``circular=True``.
With the default ``B = max(k) // 2 + 1`` and unit spacing, band ``b`` is exactly the taps whose
distance rounds to ``b`` voxels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["BASIS_NORMS", "PROFILES", "default_num_bands", "band_index", "band_basis", "band_sizes", "expand_kernel"]

#: how the band masks are scaled: ``"orthonormal"`` divides mask ``b`` by ``sqrt(n_b)`` (its tap
#: count), ``"none"`` keeps the 0/1 indicator masks of the original SRE-Conv
BASIS_NORMS = ("orthonormal", "mean", "none")

#: how a tap's weight depends on its distance from the centre: ``"hard"`` gives every tap to one band (the
#: original SRE-Conv); the others are smoother functions of the radius, each still a function of the distance alone
#: (so every grid symmetry is kept): ``"partial"`` splits a tap between bands by the share of its cell (supersampled)
#: in each band, ``"linear"`` interpolates linearly between the two nearest band radii, ``"gaussian"`` weights band
#: ``b`` by a Gaussian of ``d - b w`` with standard deviation ``w / 2`` (Gaussian-smoothed rings)
PROFILES = ("hard", "partial", "linear", "gaussian")

_EPS = 1e-9
_SUPERSAMPLE = 8  # points per axis and tap of the "partial" profile


def _normalise(kernel_size: Sequence[int] | int, spacing: Sequence[float] | float | None, spatial_dims: int | None):
    if isinstance(kernel_size, int):
        if spatial_dims is None:
            raise ValueError("band geometry: give spatial_dims when kernel_size is a single int.")
        kernel_size = (kernel_size,) * spatial_dims
    ks = tuple(int(k) for k in kernel_size)
    if not ks:
        raise ValueError("band geometry: kernel_size must name at least one axis, got ().")
    for k in ks:
        if k < 1 or k % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd and positive on every axis so the kernel has a centre tap, got {ks}."
            )
    if spacing is None:
        sp = (1.0,) * len(ks)
    elif isinstance(spacing, (int, float)):
        sp = (float(spacing),) * len(ks)
    else:
        sp = tuple(float(s) for s in spacing)
    if len(sp) != len(ks):
        raise ValueError(f"spacing must have one value per kernel axis ({len(ks)}), got {tuple(sp)}.")
    if any(not math.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"spacing must be positive and finite on every axis, got {tuple(sp)}.")
    return ks, sp


def default_num_bands(kernel_size: Sequence[int] | int, spatial_dims: int | None = None) -> int:
    """The default band count, ``max(kernel_size) // 2 + 1`` (5 for a 9-tap kernel, 2 for 3 taps)."""
    ks, _ = _normalise(kernel_size, None, spatial_dims)
    return max(ks) // 2 + 1


def band_index(
    kernel_size: Sequence[int] | int,
    num_bands: int | None = None,
    spacing: Sequence[float] | float | None = None,
    circular: bool = False,
    spatial_dims: int | None = None,
) -> torch.Tensor:
    """The band of every kernel tap.

    Args:
        kernel_size: odd kernel size, one per axis (or an int with ``spatial_dims``).
        num_bands: number of bands; ``None`` takes :func:`default_num_bands`.
        spacing: voxel spacing per axis; distances are then physical, so an anisotropic grid gets a
            kernel that is isotropic in millimetres. ``None`` means unit spacing.
        circular: drop the taps beyond the outermost band (the box corners) instead of folding
            them into it, so the kernel support is a disc or a ball.
        spatial_dims: needed only when ``kernel_size`` is an int.

    Returns:
        A ``torch.long`` tensor of shape ``kernel_size``: the band of each tap, ``-1`` for a dropped tap.

    Raises:
        ValueError: for an even or non-positive kernel size, a bad spacing, ``num_bands < 1``, or
            a band that would receive no tap.

    Example::

        >>> band_index(5, spatial_dims=2)
        tensor([[2, 2, 2, 2, 2],
                [2, 1, 1, 1, 2],
                [2, 1, 0, 1, 2],
                [2, 1, 1, 1, 2],
                [2, 2, 2, 2, 2]])
    """
    ks, sp = _normalise(kernel_size, spacing, spatial_dims)
    if num_bands is not None and (isinstance(num_bands, bool) or not isinstance(num_bands, int)):
        raise TypeError(f"num_bands must be an int (or None for the default), got {num_bands!r}.")
    nb = default_num_bands(ks) if num_bands is None else int(num_bands)
    if nb < 1:
        raise ValueError(f"num_bands must be at least 1, got {num_bands}.")
    coords = [(torch.arange(k, dtype=torch.float64) - k // 2) * s for k, s in zip(ks, sp)]
    grids = torch.meshgrid(*coords, indexing="ij")
    dist = torch.sqrt(sum(g * g for g in grids))
    radius = max((k // 2) * s for k, s in zip(ks, sp))
    if radius == 0.0:  # a 1x1x... kernel: one tap, one band
        index = torch.zeros(ks, dtype=torch.long)
    else:
        if nb > 1:
            index = torch.floor(dist / (radius / (nb - 1)) + 0.5 + _EPS).long()
            outside = index > nb - 1
        else:
            index = torch.zeros(ks, dtype=torch.long)
            outside = dist > radius * (1 + _EPS)
        index = torch.where(outside, torch.full_like(index, -1 if circular else nb - 1), index)
    counts = torch.bincount(index[index >= 0].flatten(), minlength=nb)
    empty = [b for b in range(nb) if counts[b] == 0]
    if empty:
        raise ValueError(
            f"num_bands={nb} leaves band(s) {empty} empty for kernel_size={ks}, spacing={sp}: "
            f"use fewer bands (at most {int((counts > 0).sum())} are filled here) or a larger kernel."
        )
    return index


def _soft_masks(index: torch.Tensor, ks: tuple[int, ...], sp: tuple[float, ...], nb: int, circular: bool,
                profile: str) -> torch.Tensor:
    """``(nb, *ks)`` band weights of every tap for a smooth ``profile`` (see :data:`PROFILES`)."""
    radius = max((k // 2) * s for k, s in zip(ks, sp))
    if radius == 0.0 or nb == 1:
        return (index >= 0).to(torch.float64).unsqueeze(0)
    width = radius / (nb - 1)
    centres = torch.arange(nb, dtype=torch.float64) * width
    coords = [(torch.arange(k, dtype=torch.float64) - k // 2) * s for k, s in zip(ks, sp)]
    if profile == "partial":  # each tap's cell sampled on a regular sub-grid
        offsets = (torch.arange(_SUPERSAMPLE, dtype=torch.float64) + 0.5) / _SUPERSAMPLE - 0.5
        coords = [(c.view(-1, 1) + offsets.view(1, -1) * s).flatten() for c, s in zip(coords, sp)]
    dist = torch.sqrt(sum(g * g for g in torch.meshgrid(*coords, indexing="ij")))
    if profile == "partial":
        band = torch.floor(dist / width + 0.5 + _EPS).long()
        band = torch.where(band > nb - 1, torch.full_like(band, -1 if circular else nb - 1), band)
        weights = torch.stack([(band == b).to(torch.float64) for b in range(nb)])
        for axis, k in enumerate(ks):  # average the sub-samples of each tap
            weights = weights.unflatten(axis + 1, (k, _SUPERSAMPLE)).mean(axis + 2)
        return weights
    offset = dist.unsqueeze(0) - centres.view(-1, *([1] * len(ks)))
    if profile == "linear":
        weights = (1.0 - offset.abs() / width).clamp_min(0.0)
        if not circular:  # taps beyond the last band radius (the box corners) keep its weight
            weights[-1] = torch.where(offset[-1] > 0, torch.ones_like(offset[-1]), weights[-1])
        return weights
    weights = torch.exp(-0.5 * (offset / (0.5 * width)) ** 2)  # gaussian
    if circular:
        weights = weights * (dist <= radius * (1 + _EPS) + 0.5 * width).to(torch.float64)
    return weights


def band_basis(
    kernel_size: Sequence[int] | int,
    num_bands: int | None = None,
    spacing: Sequence[float] | float | None = None,
    circular: bool = False,
    spatial_dims: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    norm: str = "none",
    profile: str = "hard",
) -> torch.Tensor:
    """Band masks of shape ``(num_bands, *kernel_size)``; see :func:`band_index`.

    ``norm="none"`` gives the 0/1 indicator of each band. ``norm="orthonormal"`` divides mask ``b``
    by ``sqrt(n_b)``, the number of taps in the band, so the masks are orthonormal: the kernel
    ``K = sum_b W_b M_b`` then has ``||K|| = ||W||``, and a gradient step on ``W`` moves ``K`` by the
    orthogonal projection of the dense kernel's gradient onto the symmetric kernels, whatever the
    band sizes (with indicator masks band ``b`` moves ``n_b`` times faster per tap).

    ``profile`` (:data:`PROFILES`) makes the masks smoother functions of the radius; for a soft mask
    ``"orthonormal"`` divides by its Euclidean norm and ``"mean"`` by its sum (the same as above for
    0/1 masks). Every profile is a function of the distance alone, so the kernel keeps every symmetry
    of the grid.
    """
    if norm not in BASIS_NORMS:
        raise ValueError(f"norm must be one of {BASIS_NORMS}, got {norm!r}.")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}.")
    if profile == "hard":
        index = band_index(kernel_size, num_bands, spacing, circular, spatial_dims)
        nb = int(index.max().item()) + 1
        bands = torch.arange(nb).view(-1, *([1] * index.ndim))
        masks = (index.unsqueeze(0) == bands).to(torch.float64)
    else:  # a smooth profile fills bands that no tap's centre rounds to, so more bands than radii are allowed
        ks, sp = _normalise(kernel_size, spacing, spatial_dims)
        nb = default_num_bands(ks) if num_bands is None else num_bands
        if isinstance(nb, bool) or not isinstance(nb, int) or nb < 1:
            raise ValueError(f"num_bands must be an int >= 1 (or None for the default), got {num_bands!r}.")
        index = band_index(ks, min(nb, default_num_bands(ks)), sp, circular)  # the support (-1: dropped)
        masks = _soft_masks(index, ks, sp, nb, circular, profile)
        empty = [b for b in range(nb) if masks[b].abs().sum() <= _EPS]
        if empty:
            raise ValueError(f"num_bands={nb} leaves band(s) {empty} empty for kernel_size={ks} with "
                             f"profile={profile!r}: use fewer bands.")
    shape = (-1, *([1] * len(masks.shape[1:])))
    if norm == "orthonormal":
        masks = masks / masks.flatten(1).square().sum(1).sqrt().view(shape)
    elif norm == "mean":
        masks = masks / masks.flatten(1).sum(1).view(shape)
    return masks.to(dtype=dtype, device=device)


def band_sizes(basis: torch.Tensor) -> torch.Tensor:
    """Number of taps in each band of a basis from :func:`band_basis` (either norm), shape ``(bands,)``."""
    return (basis.flatten(1) != 0).sum(1)


def expand_kernel(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Expand band weights ``(A, B, bands)`` into a full kernel ``(A, B, *kernel_size)``."""
    shape = [weight.shape[0], weight.shape[1]] + list(basis.shape[1:])
    flat = torch.matmul(weight, basis.reshape(basis.shape[0], -1))
    return flat.reshape(shape)
