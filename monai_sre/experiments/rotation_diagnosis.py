"""Separate the causes of a classifier's accuracy loss on rotated views: the turn, the interpolation blur, the corners.

An off-grid rotation of an image turns its content, low-passes it (linear interpolation) and swaps its corners for
padding. :func:`probes` applies each effect on its own, :func:`diagnose` measures a network's accuracy under each.
``scripts/rotation_diagnosis.py`` is the command line; docs/trainability.md shows what it found for SRE-R18.
"""

from __future__ import annotations

import torch
from monai.networks.layers import GaussianFilter

from monai_sre.transforms.rotation import rotate_batch

__all__ = ["ANGLES", "SIGMAS", "diagnose", "probes"]

ANGLES = (10.0, 30.0, 45.0)
SIGMAS = (0.3, 0.5, 0.7)


def probes(spatial_dims: int, angles=ANGLES, sigmas=SIGMAS, axis: int | None = None) -> dict:
    """``name -> function(x)`` for a batch ``x`` of shape ``(B, C, *spatial)`` with background 0.

    In 3D the turns are about the spatial ``axis`` (default 0); in 2D ``axis`` must be None.
    """
    if spatial_dims == 3 and axis is None:
        axis = 0
    elif spatial_dims == 2 and axis is not None:
        raise ValueError(f"axis must be None for 2D probes, got {axis!r}.")
    out = {"original": lambda x: x}
    for a in angles:
        out[f"rot{a:g}"] = lambda x, a=a: rotate_batch(x, a, axis)
    for a in angles:
        out[f"round_trip{a:g}"] = lambda x, a=a: rotate_batch(rotate_batch(x, a, axis), -a, axis)
    for s in sigmas:
        out[f"blur{s:g}"] = GaussianFilter(spatial_dims, s)  # batched, the kernel of MONAI's GaussianSmooth
    for a in angles:
        out[f"corners{a:g}"] = lambda x, a=a: x * (rotate_batch(torch.ones_like(x[:1]), a, axis) > 0.5)
    return out


def _turns(name: str) -> bool:
    """Whether probe ``name`` depends on the rotation axis (everything but the original and the blurs)."""
    return not (name == "original" or name.startswith("blur"))


@torch.no_grad()
def diagnose(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, spatial_dims: int,
             batch_size: int = 64, axes=None) -> dict[str, float]:
    """Accuracy (%) of ``network`` under every probe of :func:`probes`.

    In 3D the probes that turn the volume are applied about each of ``axes`` (default: all three, as the rotated
    evaluation does) and their accuracies averaged; the original and the blurs, which have no axis, run once.
    """
    if spatial_dims == 2:
        if axes is not None:
            raise ValueError(f"axes must be None for 2D images, got {axes!r}.")
        axes = (None,)
    else:
        axes = (0, 1, 2) if axes is None else tuple(axes)
        if not axes or any(a not in (0, 1, 2) for a in axes):
            raise ValueError(f"axes must be a non-empty subset of (0, 1, 2) for 3D volumes, got {axes!r}.")
    network.eval()
    sums: dict[str, float] = {}
    for i, axis in enumerate(axes):
        for name, probe in probes(spatial_dims, axis=axis).items():
            if i > 0 and not _turns(name):
                continue
            correct = 0
            for start in range(0, len(images), batch_size):
                x = probe(images[start:start + batch_size])
                correct += int((network(x).argmax(1) == labels[start:start + batch_size]).sum())
            sums[name] = sums.get(name, 0.0) + 100.0 * correct / len(images)
    return {name: total / (len(axes) if _turns(name) else 1) for name, total in sums.items()}
