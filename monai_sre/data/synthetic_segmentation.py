"""Two tiny, deterministic synthetic 3D segmentation sets, and segmentation datalists.

Every volume holds one **rod** (prolate ellipsoid, label 1) and one **plate** (oblate ellipsoid, label 2).
Intensities overlap between the classes; only the *shape* tells a rod voxel from a plate voxel. Images are uint8 in
``[0, 255]``, labels uint8 in ``{0, 1, 2}``, background exactly 0. Every object lies inside the central sphere, so
the rotations of the evaluation protocol never clip it.

* ``synthetic_seg3d_oriented`` (:data:`ORIENTED_SEGMENTATION`): an orientation prior, like anatomy in a scan
  acquired in a standard position. The rod lies within ``max_tilt`` degrees (15) of axis 0, the plate within
  ``max_tilt`` of the plane of axes 0 and 1 (its normal within ``max_tilt`` of axis 2), one above the other along
  axis 2 (which one is above is random). The objects are thick (rod radius 6-7, plate half-thickness 5-6 voxels at
  48^3, the default size of the bundle), so that resampling their labels on a rotated grid costs little Dice.
* ``synthetic_seg3d`` (:data:`RANDOM_SEGMENTATION`): no orientation prior. Each object has an independent,
  uniformly random 3D orientation; the two lie on opposite sides of the middle along a random direction. Thinner
  objects (rod radius 3.4-4.2, plate half-thickness 2.4-2.9 voxels at 32^3).

:func:`segmentation_datalist` returns MONAI datalists for an embedded set (arrays in memory) or for a NIfTI
datalist JSON (``{"training": [{"image": ..., "label": ...}], "validation": [...], "test": [...]}``);
:func:`segmentation_transforms` the matching preprocessing.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from pathlib import Path

import numpy as np
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    RandRotated,
    ResizeWithPadOrCropd,
    ScaleIntensityd,
)
from scipy import ndimage
from scipy.spatial.transform import Rotation

from monai_sre.utils.io import atomic_write

from .datalist import DatalistSplitError, read_datalist
from .nifti import file_version, image_problem
from .splits import DATALIST_KEYS, datalist_key, split_name
from .synthetic import default_cache

__all__ = [
    "AFFINE_TOLERANCE",
    "ORIENTED_SEGMENTATION",
    "RANDOM_SEGMENTATION",
    "SEGMENTATION_LABELS",
    "SYNTHETIC_SEGMENTATION_SETS",
    "check_segmentation_items",
    "make_synthetic_segmentation",
    "segmentation_datalist",
    "segmentation_transforms",
]

logger = logging.getLogger(__name__)

SEGMENTATION_LABELS = {"0": "background", "1": "rod", "2": "plate"}
RANDOM_SEGMENTATION = "synthetic_seg3d"
ORIENTED_SEGMENTATION = "synthetic_seg3d_oriented"
#: names of the embedded sets, for ``segmentation_datalist`` and the bundle's ``dataset``
SYNTHETIC_SEGMENTATION_SETS = (ORIENTED_SEGMENTATION, RANDOM_SEGMENTATION)
_FORMAT_VERSION = 2


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly (Haar measure): QR of a Gaussian matrix with the sign fixed."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _tilted_rotation(rng: np.random.Generator, axis: int, max_tilt: float) -> np.ndarray:
    """A rotation that moves world axis ``axis`` by at most ``max_tilt`` degrees: a uniformly random spin about that
    axis, then a tilt about a random direction perpendicular to it, uniform over the spherical cap of that radius."""
    normal = np.eye(3)[axis]
    spin = Rotation.from_rotvec(rng.uniform(0.0, 2.0 * math.pi) * normal)
    cos_tilt = rng.uniform(math.cos(math.radians(max_tilt)), 1.0)
    direction = np.cross(normal, rng.normal(size=3))
    direction /= np.linalg.norm(direction)
    return (Rotation.from_rotvec(math.acos(min(cos_tilt, 1.0)) * direction) * spin).as_matrix()


def _ellipsoid(coords: np.ndarray, centre: np.ndarray, frame: np.ndarray, semi: np.ndarray) -> np.ndarray:
    local = np.tensordot(frame, coords - centre.reshape(3, 1, 1, 1), axes=1)
    return np.sqrt(sum((c / a) ** 2 for c, a in zip(local, semi)))


def _random_objects(rng: np.random.Generator, size: int) -> list[tuple]:
    """``(class, centre offset, frame, semi-axes, peak intensity)`` of the rod and the plate of one volume of the
    random set."""
    s = size / 32.0
    # two centres on opposite sides of the middle, along a random direction
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    offset = rng.uniform(6.0, 6.5) * s
    shapes = [
        (1, np.array([rng.uniform(7.5, 8.5), rng.uniform(3.4, 4.2), 0.0])),  # rod: long, two short
        (2, np.array([rng.uniform(6.5, 7.5), rng.uniform(2.4, 2.9), 0.0])),  # plate: two long, one short
    ]
    objects = []
    for (cls, semi), sign in zip(shapes, rng.permutation([-1.0, 1.0])):
        semi = semi * s
        semi[2] = semi[1] if cls == 1 else semi[0] * rng.uniform(0.85, 1.0)
        frame = _random_rotation(rng)
        objects.append((cls, sign * offset * direction, frame, semi, rng.uniform(0.55, 1.0)))
    return objects


def _oriented_objects(rng: np.random.Generator, size: int, max_tilt: float) -> list[tuple]:
    """``(class, centre offset, frame, semi-axes, peak intensity)`` of the rod and the plate of one volume of the
    oriented set.

    A frame's rows are the object's axes in world coordinates: the rod's long axis is its row 0, tilted from world
    axis 0; the plate's normal (its short axis) is its row 2, tilted from world axis 2."""
    s = size / 48.0
    offset = rng.uniform(9.0, 10.0) * s
    rod = np.array([rng.uniform(15.5, 17.0), rng.uniform(7.5, 8.5), 0.0]) * s
    rod[2] = rod[1]
    plate = np.array([rng.uniform(15.5, 16.5), 0.0, rng.uniform(7.5, 8.5)]) * s
    plate[1] = plate[0] * rng.uniform(0.85, 1.0)
    objects = []
    for (cls, semi, axis), sign in zip([(1, rod, 0), (2, plate, 2)], rng.permutation([-1.0, 1.0])):
        centre = sign * offset * np.eye(3)[2] + rng.uniform(-1.0, 1.0, size=3) * s
        objects.append((cls, centre, _tilted_rotation(rng, axis, max_tilt).T, semi, rng.uniform(0.55, 1.0)))
    return objects


def _render(rng: np.random.Generator, size: int, max_tilt: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image and label: the random set's objects (``max_tilt`` None) or the oriented set's, the latter drawn
    again until every labelled voxel lies inside the central sphere."""
    coords = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float64)] * 3, indexing="ij"))
    middle = np.full(3, (size - 1) / 2.0)
    radius = np.sqrt(((coords - middle.reshape(3, 1, 1, 1)) ** 2).sum(0))
    while True:
        objects = _random_objects(rng, size) if max_tilt is None else _oriented_objects(rng, size, max_tilt)
        image = np.zeros((size,) * 3)
        label = np.zeros((size,) * 3, np.uint8)
        for cls, offset, frame, semi, peak in objects:
            r = _ellipsoid(coords, middle + offset, frame, semi)
            label[r <= 1.0] = cls
            soft = 1.0 / (1.0 + np.exp(-(1.0 - r) * semi.min() / 0.6))
            image = np.maximum(image, soft * peak)
        if max_tilt is None or radius[label > 0].max() <= middle[0]:
            break
    noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, image.shape), 1.5)
    image = image * (1.0 + 0.08 * noise / noise.std())
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8), label


def make_synthetic_segmentation(
    root: str | os.PathLike | None = None,
    size: int = 32,
    n_train: int = 64,
    n_val: int = 16,
    n_test: int = 16,
    seed: int = 0,
    overwrite: bool = False,
    name: str = RANDOM_SEGMENTATION,
    max_tilt: float = 15.0,
) -> str:
    """Generate (or reuse) an embedded segmentation set; returns the path of ``<name>_{size}.npz``.

    The file holds ``{train,val,test}_images`` and ``{train,val,test}_labels`` (uint8, ``(N, size, size, size)``)
    and a ``params`` JSON string; it is written atomically and regenerated only when the parameters differ.

    Args:
        root: output folder; default :func:`~monai_sre.data.synthetic.default_cache`.
        size: edge length (>= 16).
        n_train, n_val, n_test: volumes per split (>= 0).
        seed: random seed; the same arguments always give the same data.
        overwrite: regenerate even if a matching file exists.
        name: :data:`RANDOM_SEGMENTATION` (``"synthetic_seg3d"``, no orientation prior; objects scaled by
            ``size / 32``) or :data:`ORIENTED_SEGMENTATION` (``"synthetic_seg3d_oriented"``; scaled by ``size / 48``).
        max_tilt: oriented set: largest angle (degrees, in [0, 90]) between the rod's axis and axis 0, and between
            the plate's normal and axis 2.

    Raises:
        ValueError: bad ``size``, counts, ``name`` or ``max_tilt``.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}.")
    counts = [n_train, n_val, n_test]
    if not all(isinstance(n, int) and n >= 0 for n in counts):
        raise ValueError(f"n_train, n_val and n_test must be ints >= 0, got {counts}.")
    if name not in SYNTHETIC_SEGMENTATION_SETS:
        raise ValueError(f"name must be one of {list(SYNTHETIC_SEGMENTATION_SETS)}, got {name!r}.")
    params = {"version": _FORMAT_VERSION, "size": size, "counts": counts, "seed": int(seed)}
    tilt = None
    if name == ORIENTED_SEGMENTATION:
        if isinstance(max_tilt, bool) or not isinstance(max_tilt, (int, float)) or not 0 <= max_tilt <= 90:
            raise ValueError(f"max_tilt must be a number of degrees in [0, 90], got {max_tilt!r}.")
        tilt = float(max_tilt)
        params.update(name=name, max_tilt=tilt)
    out_dir = Path(root if root is not None else default_cache()).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}_{size}.npz"
    if path.is_file() and not overwrite:
        try:
            with np.load(path) as existing:
                if json.loads(str(existing["params"])) == params:
                    return str(path)
        except (OSError, ValueError, KeyError) as err:
            logger.warning("regenerating unreadable synthetic file %s (%s)", path, err)
    arrays: dict[str, np.ndarray] = {"params": np.array(json.dumps(params, sort_keys=True))}
    for index, (split, n) in enumerate(zip(DATALIST_KEYS, counts)):
        rng = np.random.default_rng([seed, index, size])
        pairs = [_render(rng, size, tilt) for _ in range(n)]
        arrays[f"{split}_images"] = np.stack([p[0] for p in pairs]) if n else np.zeros((0,) + (size,) * 3, np.uint8)
        arrays[f"{split}_labels"] = np.stack([p[1] for p in pairs]) if n else np.zeros((0,) + (size,) * 3, np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(str(path), buf.getvalue())
    logger.info("wrote synthetic segmentation set %s (train/val/test = %s)", path, counts)
    return str(path)


#: largest difference between an image's and its label's affine entries (mm) still counted as the same grid
AFFINE_TOLERANCE = 1e-3


def _spatial_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    while len(shape) > 3 and shape[-1] == 1:  # trailing singleton axes, e.g. (X, Y, Z, 1)
        shape = shape[:-1]
    return shape


def _label_problem(image: str, label: str, num_classes: int | None) -> str | None:
    """Why a label map does not fit its (already checked) image: unreadable, other grid, non-integer or
    out-of-range values. Headers first; the label's voxels are read only when the headers agree."""
    import nibabel as nib

    if not os.path.isfile(label):
        return f"label file not found: {label}"
    try:
        img, lab = nib.load(image), nib.load(label)
    except Exception as err:  # nibabel raises several types for unreadable files
        return f"label {label} cannot be read as NIfTI ({type(err).__name__}: {err})"
    img_shape, lab_shape = _spatial_shape(tuple(img.shape))[:3], _spatial_shape(tuple(lab.shape))
    if len(lab_shape) != 3:
        return f"label {label} (shape {tuple(lab.shape)}) must be one 3D map"
    if lab_shape != img_shape:
        return f"label {label} has shape {lab_shape} but its image {image} has {img_shape}: they must be on one grid"
    gap = float(np.abs(np.asarray(img.affine) - np.asarray(lab.affine)).max())
    if gap > AFFINE_TOLERANCE:
        return (f"label {label} and its image {image} have affines differing by up to {gap:.4g} (tolerance "
                f"{AFFINE_TOLERANCE:g}): resample the label onto the image's grid")
    try:
        values = np.unique(np.asarray(lab.dataobj))
    except Exception as err:
        return f"label {label} cannot be read ({type(err).__name__}: {err})"
    fractional = values[~np.isfinite(values) | (values != np.round(values))] if values.dtype.kind == "f" else []
    if len(fractional):
        shown = ", ".join(f"{v:g}" for v in fractional[:5])
        return f"label {label} holds non-integer values ({shown}): a label map must hold class indices"
    if num_classes is not None:
        outside = values[(values < 0) | (values >= num_classes)]
        if len(outside):
            shown = ", ".join(f"{v:g}" for v in outside[:5])
            return (f"label {label} holds values {shown} outside the classes 0..{num_classes - 1} "
                    f"(num_classes={num_classes})")
    return None


#: results of :func:`_pair_problem` by the versions of both files and the settings checked against
_PAIR_CHECKS: dict[tuple, str | None] = {}


def _pair_problem(image: str, label: str, num_classes: int | None, in_channels: int = 1) -> str | None:
    """Why an image/label pair cannot be trained on: the image fails :func:`~monai_sre.data.nifti.image_problem`
    (unreadable or truncated, not one 3D volume of ``in_channels`` frames, NaN/Inf voxels), or the label does not
    fit it. Remembered per version of the two files, so each pair is read once."""
    if not os.path.isfile(image):
        return f"image file not found: {image}"
    why = image_problem(image, in_channels)
    if why is not None:
        return f"image {image} {why}"
    if not os.path.isfile(label):
        return f"label file not found: {label}"
    key = (file_version(image), file_version(label), num_classes)
    if key not in _PAIR_CHECKS:
        _PAIR_CHECKS[key] = _label_problem(image, label, num_classes)
    return _PAIR_CHECKS[key]


def _raise_problems(where: str, problems: list[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ValueError(f"{where} has {len(problems)} bad entries:\n  {shown}")


def check_segmentation_items(
    items: list[dict], where: str, num_classes: int | None = None, in_channels: int = 1
) -> list[dict]:
    """Check every image/label pair of a segmentation list before training; report all problems at once.

    For each entry: the image passes :func:`~monai_sre.data.nifti.image_problem` (it exists, reads to its end, is
    one 3D volume of ``in_channels`` frames and holds no NaN/Inf voxel); the label is one readable 3D map on the
    image's grid (same spatial shape, affines equal within :data:`AFFINE_TOLERANCE`); its values are integers and,
    with ``num_classes``, in ``0..num_classes - 1``. Each pair is read once per version of its files.

    Args:
        items: ``[{"image": path, "label": path}, ...]``.
        where: the list, for the message (e.g. ``"datalist dl.json, 'training'"``).
        num_classes: number of classes of the model; None skips the range check.
        in_channels: frames per image the model takes.

    Returns:
        ``items``, unchanged.

    Raises:
        ValueError: naming, for each bad entry, its index and the file at fault.
    """
    problems = []
    for i, item in enumerate(items):
        why = _pair_problem(item["image"], item["label"], num_classes, in_channels)
        if why is not None:
            problems.append(f"entry {i}: {why}")
    _raise_problems(where, problems)
    return items


def _checked_datalist(path: Path, num_classes: int | None, in_channels: int) -> dict[str, list[dict]]:
    """Every split of a segmentation datalist, each pair checked; all problems of all splits in one error."""
    content, problems = {}, []
    for key in DATALIST_KEYS.values():
        try:
            items = read_datalist(path, key, path_fields=("image", "label"))
        except DatalistSplitError:
            continue
        content[key] = [{k: str(Path(item[k]).resolve()) for k in ("image", "label")} for item in items]
        for i, item in enumerate(content[key]):
            why = _pair_problem(item["image"], item["label"], num_classes, in_channels)
            if why is not None:
                problems.append(f"{key!r} entry {i}: {why}")
    _raise_problems(f"datalist {path}", problems)
    return content


def segmentation_datalist(
    dataset: str | os.PathLike,
    split: str,
    root: str | os.PathLike | None = None,
    size: int = 32,
    num_classes: int | None = None,
    in_channels: int = 1,
) -> list[dict]:
    """The items of one split: ``[{"image": ..., "label": ...}, ...]``.

    Args:
        dataset: an embedded set, ``"synthetic_seg3d_oriented"`` or ``"synthetic_seg3d"`` (generated on first use
            under ``root``, see :func:`make_synthetic_segmentation`), or the path of a NIfTI datalist JSON
            with ``"training"``, ``"validation"`` and (optionally) ``"test"`` lists; relative paths are resolved
            against the JSON's folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: data folder of the synthetic set.
        size: edge length of the synthetic set.
        num_classes: datalists: label values must be below it (None: only integers are required).
        in_channels: datalists: frames per image the model takes.

    Returns:
        synthetic: channel-first arrays ``(1, S, S, S)`` (image float32 in [0, 1], label uint8); datalist: file paths.
        Whichever split is asked for, every pair of *every* split of a datalist is checked as by
        :func:`check_segmentation_items` (each pair read once per version of its files), so a bad validation or
        test file stops a run before its first epoch.

    Raises:
        ValueError: unknown ``split``, missing datalist file, an empty / malformed split, or bad entries in any split
            (missing, unreadable or truncated files, NaN/Inf image voxels, a 4D image with several frames, label and
            image on different grids, non-integer or out-of-range label values), each named with its split, entry
            and file.
    """
    split = split_name(split)
    if str(dataset) in SYNTHETIC_SEGMENTATION_SETS:
        with np.load(make_synthetic_segmentation(root, size=size, name=str(dataset))) as data:
            images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        return [
            {"image": (img[None] / 255.0).astype(np.float32), "label": lab[None].copy()} for img, lab in zip(images, labels)
        ]
    path = Path(dataset)
    if not path.is_file() or path.suffix.lower() != ".json":
        raise ValueError(f"dataset must be one of {list(SYNTHETIC_SEGMENTATION_SETS)} or a datalist JSON file, got "
                         f"{str(dataset)!r}.")
    key = datalist_key(split)
    read_datalist(path, split, path_fields=("image", "label"))  # a missing list is named before any file is read
    items = _checked_datalist(path, num_classes, int(in_channels)).get(key, [])
    if not items:
        raise ValueError(f"dataset {str(path)!r}: empty {key!r} list.")
    return items


def segmentation_transforms(dataset: str | os.PathLike, size: int = 32, augment: bool = False) -> Compose:
    """Preprocessing for :func:`segmentation_datalist` items.

    Synthetic set: tensors. NIfTI files: load, channel first, intensity scaled to [0, 1] and a centred pad/crop to
    ``size`` cubed (labels stay integers). ``augment``: then, with probability 0.5, a random rotation over the full
    range about every axis, the image interpolated linearly and the label by nearest neighbour. It teaches the
    network the orientations the data lacks, which the protocol (train in the acquired orientation, test rotated)
    leaves out; on the random set (already uniformly oriented) it adds only the interpolation artefacts of off-grid
    rotations.

    Raises:
        ValueError: ``augment`` is not a bool.
    """
    if not isinstance(augment, bool):
        raise ValueError(f"augment must be True or False (bundle command line: --augment true), got {augment!r}.")
    keys = ["image", "label"]
    if str(dataset) in SYNTHETIC_SEGMENTATION_SETS:
        steps = [EnsureTyped(keys=keys, track_meta=False)]
    else:
        steps = [
            LoadImaged(keys=keys, image_only=True),
            EnsureChannelFirstd(keys=keys),
            ScaleIntensityd(keys="image"),
            ResizeWithPadOrCropd(keys=keys, spatial_size=[size] * 3),
            EnsureTyped(keys=keys, track_meta=False),
        ]
    if augment:
        steps.append(RandRotated(keys=keys, range_x=math.pi, range_y=math.pi, range_z=math.pi, prob=0.5,
                                 mode=["bilinear", "nearest"], padding_mode="zeros", keep_size=True))
        steps.append(EnsureTyped(keys=keys, track_meta=False))
    return Compose(steps)
