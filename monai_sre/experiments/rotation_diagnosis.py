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


def probes(spatial_dims: int, angles=ANGLES, sigmas=SIGMAS) -> dict:
    """``name -> function(x)`` for a batch ``x`` of shape ``(B, C, *spatial)`` with background 0."""
    axis = 0 if spatial_dims == 3 else None
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


@torch.no_grad()
def diagnose(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, spatial_dims: int,
             batch_size: int = 64) -> dict[str, float]:
    """Accuracy (%) of ``network`` under every probe of :func:`probes`."""
    network.eval()
    result = {}
    for name, probe in probes(spatial_dims).items():
        correct = 0
        for start in range(0, len(images), batch_size):
            x = probe(images[start:start + batch_size])
            correct += int((network(x).argmax(1) == labels[start:start + batch_size]).sum())
        result[name] = 100.0 * correct / len(images)
    return result
