"""A tiny, deterministic synthetic classification set in MedMNIST's npz format (the bundles' default data).

Classes are *shape types*, which do not depend on orientation:

* 3D: class 0 = **rod** (prolate ellipsoid: one long semi-axis, two short), class 1 = **plate** (oblate ellipsoid:
  two long semi-axes, one short). Sizes, intensity, centre and noise are random per sample; volumes of the two
  classes overlap, so neither size nor mass gives the class away. Rods are thicker than plates are thin, so a
  rotation-invariant model can tell them apart from local profile alone.
* 2D: class 0 = **bar** (one elongated ellipse), class 1 = **cross** (two perpendicular ellipses).

Like organs in MedMNIST scans, every object is generated in one *canonical pose*: the rod's long axis, the plate's
normal and in-plane axes form a fixed frame that is oblique to the voxel grid (rod along the body diagonal ``(1, 1,
1)``; 2D shapes are tilted by about 27 degrees). Each 3D rotation of the evaluation protocol other than 0/360
degrees therefore shows poses that never occur in training. A plain CNN trained on the single pose is free to learn
pose-specific cues ("long along this diagonal means rod"), which break under rotation; an SRE network, whose
features are (approximately) invariant to rotation, must use the shape itself and keeps its accuracy
(train with ``bundles/sre_r3d/configs/train.json``, with and without ``--network_name r3d_18``, and compare
both with ``configs/evaluate_rotated.json``).

Objects have soft edges (about two voxels) and a smooth multiplicative texture; the background is exactly 0, the
same value rotations pad with, and every object stays inside the central sphere (radius 11.5 of 14 voxels at size
28), so the protocol's rotations neither clip objects nor add corner artefacts.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from monai_sre.utils.io import atomic_write

from .medmnist import NPZ_ERRORS

__all__ = ["SYNTHETIC_NAMES", "SYNTHETIC_INFO", "make_synthetic", "synthetic_name", "default_cache"]

logger = logging.getLogger(__name__)

SYNTHETIC_NAMES = ("synthetic2d", "synthetic3d")
SYNTHETIC_INFO = {
    "synthetic3d": {"spatial_dims": 3, "labels": {"0": "rod", "1": "plate"}},
    "synthetic2d": {"spatial_dims": 2, "labels": {"0": "bar", "1": "cross"}},
}
_DEFAULT_COUNTS = {3: (600, 200, 200), 2: (1000, 300, 300)}
_FORMAT_VERSION = 1


def default_cache() -> str:
    """Default folder for generated data: ``$MONAI_SRE_CACHE`` or ``~/.cache/monai_sre``."""
    return os.environ.get("MONAI_SRE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "monai_sre")


def synthetic_name(spatial_dims: int, size: int = 28) -> str:
    """File name: ``synthetic3d.npz`` / ``synthetic2d.npz`` for size 28, ``synthetic3d_{size}.npz`` otherwise."""
    base = f"synthetic{spatial_dims}d"
    return f"{base}.npz" if size == 28 else f"{base}_{size}.npz"


# Canonical pose: an orthonormal frame whose axes are all oblique to the voxel grid, so that every single-axis
# rotation of the evaluation protocol (including 90 and 180 degrees) moves the object to a pose never seen in
# training. Rows: long axis of rods / in-plane axis of plates, plate normal, second in-plane axis of plates.
_FRAME_3D = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]])
_FRAME_3D /= np.linalg.norm(_FRAME_3D, axis=1, keepdims=True)
_FRAME_2D = np.array([[1.0, 0.5], [-0.5, 1.0]]) / np.sqrt(1.25)


def _soft_ellipsoid(coords: np.ndarray, frame: np.ndarray, semi_axes: np.ndarray) -> np.ndarray:
    """Smooth indicator (edge about two voxels wide) of an ellipsoid with principal directions ``frame`` (rows)."""
    local = np.tensordot(frame, coords, axes=1)
    r = np.sqrt(sum((c / a) ** 2 for c, a in zip(local, semi_axes)))
    return 1.0 / (1.0 + np.exp(-(1.0 - r) * semi_axes.min() / 0.6))


def _render(rng: np.random.Generator, label: int, spatial_dims: int, size: int) -> np.ndarray:
    s = size / 28.0  # shapes are defined for 28 voxels and scale with the size
    centre = (size - 1) / 2.0 + rng.uniform(-1.0, 1.0, spatial_dims) * s
    coords = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float32)] * spatial_dims, indexing="ij"))
    coords = coords - centre.reshape(-1, *[1] * spatial_dims).astype(np.float32)
    if spatial_dims == 3:
        if label == 0:  # rod
            long_ax, short_ax = rng.uniform(8.5, 10.5) * s, rng.uniform(3.6, 5.0) * s
            semi = np.array([long_ax, short_ax, short_ax])
        else:  # plate
            long_ax, short_ax = rng.uniform(6.5, 9.0) * s, rng.uniform(2.0, 2.8) * s
            semi = np.array([long_ax, short_ax, long_ax * rng.uniform(0.85, 1.0)])
        shape = _soft_ellipsoid(coords, _FRAME_3D, semi)
    else:
        long_ax, short_ax = rng.uniform(7.5, 10.5) * s, rng.uniform(2.0, 3.2) * s
        shape = _soft_ellipsoid(coords, _FRAME_2D, np.array([long_ax, short_ax]))
        if label == 1:  # cross: add the perpendicular arm
            arm = np.array([short_ax, long_ax * rng.uniform(0.8, 1.0)])
            shape = np.maximum(shape, _soft_ellipsoid(coords, _FRAME_2D, arm))
    noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape.shape), 1.5)
    # background is exactly 0, like the zero padding of rotations, so rotated corners add no artefact
    img = shape * (rng.uniform(0.55, 1.0) + 0.08 * noise / noise.std())
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _split(seed: int, index: int, n: int, spatial_dims: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, index, spatial_dims, size])
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    images = np.stack([_render(rng, int(lab), spatial_dims, size) for lab in labels]) if n else None
    if images is None:
        images = np.zeros((0,) + (size,) * spatial_dims, np.uint8)
    return images, labels.reshape(-1, 1).astype(np.uint8)


def make_synthetic(
    root: str | os.PathLike | None = None,
    spatial_dims: int = 3,
    size: int = 28,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> str:
    """Generate (or reuse) the synthetic set and return the path of its MedMNIST-format npz.

    The file holds ``{train,val,test}_images`` (uint8, ``(N, *spatial)``) and ``{train,val,test}_labels``
    (uint8, ``(N, 1)``), plus a ``params`` JSON string. It is written atomically and regenerated only when the
    stored parameters differ (or ``overwrite``). The same arguments always give the same bytes of data.

    Args:
        root: output folder (created if needed); default :func:`default_cache`.
        spatial_dims: 3 (rods vs plates) or 2 (bars vs crosses).
        size: edge length of the square/cubic images.
        n_train: training samples (default 600 in 3D, 1000 in 2D); classes are balanced.
        n_val: validation samples (default 200 in 3D, 300 in 2D).
        n_test: test samples (default 200 in 3D, 300 in 2D).
        seed: random seed.
        overwrite: regenerate even if a matching file exists.

    Returns:
        path of ``synthetic{spatial_dims}d[_{size}].npz`` inside ``root``.

    Example:
        >>> path = make_synthetic("/tmp/sre_data", spatial_dims=3, n_train=8, n_val=4, n_test=4)  # doctest: +SKIP
        >>> np.load(path)["train_images"].shape  # doctest: +SKIP
        (8, 28, 28, 28)
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}.")
    defaults = _DEFAULT_COUNTS[spatial_dims]
    counts = [defaults[i] if n is None else int(n) for i, n in enumerate((n_train, n_val, n_test))]
    if min(counts) < 0:
        raise ValueError(f"n_train, n_val and n_test must be >= 0, got {counts}.")
    params = {
        "version": _FORMAT_VERSION,
        "spatial_dims": spatial_dims,
        "size": size,
        "counts": counts,
        "seed": int(seed),
    }
    out_dir = Path(root if root is not None else default_cache()).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / synthetic_name(spatial_dims, size)
    if path.is_file() and not overwrite:
        try:
            with np.load(path) as existing:
                if json.loads(str(existing["params"])) == params:
                    return str(path)
        except NPZ_ERRORS as err:
            logger.warning("regenerating unreadable synthetic file %s (%s: %s)", path, type(err).__name__, err)
    arrays: dict[str, np.ndarray] = {"params": np.array(json.dumps(params, sort_keys=True))}
    for index, (split, n) in enumerate(zip(("train", "val", "test"), counts)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _split(seed, index, n, spatial_dims, size)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())
    logger.info("wrote synthetic %dD set %s (train/val/test = %s)", spatial_dims, path, counts)
    return str(path)
