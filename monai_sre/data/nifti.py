"""NIfTI classification datalists (MONAI JSON or CSV) loaded with MONAI's ``LoadImaged`` (nibabel)."""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import Dataset
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Orientationd,
    Resized,
    ResizeWithPadOrCropd,
    ScaleIntensityd,
    Spacingd,
)
from monai.utils import ensure_tuple_rep

from .datalist import DatalistSplitError, read_datalist
from .splits import DATALIST_KEYS, datalist_key

__all__ = [
    "load_datalist",
    "load_error",
    "check_datalist",
    "file_version",
    "image_problem",
    "nifti_transforms",
    "nifti_dataset",
    "NiftiDataset",
]

logger = logging.getLogger(__name__)

def load_datalist(
    datalist: str | os.PathLike, split: str = "training", base_dir: str | os.PathLike | None = None
) -> list[dict]:
    """Read a classification datalist into ``[{"image": path, "label": int, ...}, ...]``.

    JSON: MONAI/Decathlon style, ``{"training": [{"image": "a.nii.gz", "label": 0}, ...], "validation": [...],
    "test": [...]}``. CSV: header with ``image`` and ``label`` columns (optional ``split`` column holding
    training/validation/test). Relative paths are resolved against ``base_dir`` (default: the datalist's folder).
    The file is parsed by :func:`~monai_sre.data.datalist.read_datalist`; this adds the image and label checks.

    Args:
        datalist: ``.json`` or ``.csv`` path.
        split: ``"training"``/``"train"``, ``"validation"``/``"val"`` or ``"test"``.
        base_dir: folder for relative image paths.

    Raises:
        FileNotFoundError: the datalist or one of its images is missing (the message names it).
        ValueError: unknown split or format, or a malformed entry.
    """
    key = datalist_key(split)
    out = []
    for i, item in enumerate(read_datalist(datalist, split, base_dir)):
        if not os.path.isfile(item["image"]):
            raise FileNotFoundError(f"image listed in {datalist} ({key!r} entry {i}) not found: {item['image']}")
        out.append({**item, "label": _label(item["label"], f"datalist {datalist} ({key!r} entry {i}, {item['image']})")})
    return out


def _label(value: object, where: str) -> int:
    """A class index from a JSON number or a CSV string: ``1``, ``1.0`` and ``"1"`` pass; ``1.7``, ``-1`` and
    ``True`` raise ``ValueError`` naming ``where``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None or not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError(
            f"{where}: label must be a non-negative integer class index, got {value!r}. Fix the label in the datalist."
        )
    return int(number)


def _shape_problem(spatial_shape: Sequence[int], channels: int, expected_channels: int = 1) -> str | None:
    """Why an image of this spatial shape and channel count is not one ``expected_channels``-channel 3D volume."""
    if len(spatial_shape) != 3:
        return (
            f"is {len(spatial_shape)}D (shape {tuple(spatial_shape)}) but a 3D volume is expected: stack the slices "
            f"into one volume or leave this file out"
        )
    if channels != expected_channels:
        return (
            f"has {channels} frames/channels (3D shape {tuple(spatial_shape)}) but the model takes "
            f"{expected_channels}: split the series into single 3D volumes (or keep one frame) and list those"
        )
    return None


def _header_problem(img, expected_channels: int) -> str | None:
    """Check a loaded NIfTI header (without reading the voxels): 3D, ``expected_channels`` frames."""
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:  # trailing singleton axes, e.g. (X, Y, Z, 1)
        shape = shape[:-1]
    return _shape_problem(shape[:3], math.prod(shape[3:]), expected_channels)


def _voxel_problem(img) -> str | None:
    """Read every voxel (a truncated or corrupt file fails here) and count the NaN/Inf ones."""
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # truncated gzip, short file, bad scaling: nibabel and numpy raise several types
        return (f"cannot be read to the end ({type(err).__name__}: {err}): the file is truncated or corrupt; "
                f"replace it or leave it out")
    if data.dtype.kind not in "fc":
        return None
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        return (f"has {n_bad} NaN/Inf voxels of {data.size}: repair the file (e.g. replace NaN by the background "
                f"value) or leave it out")
    return None


def file_version(path: str | os.PathLike) -> tuple[str, int, int]:
    """``(real path, size, modification time in ns)``: the key under which a check of the file is remembered."""
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


#: results of :func:`image_problem` by file version and frame count
_IMAGE_CHECKS: dict[tuple, str | None] = {}


def image_problem(image: str | os.PathLike, channels: int = 1) -> str | None:
    """Why a NIfTI file cannot be a model input, or None: it cannot be read (header, or voxels to the end of the
    file), it is not one 3D volume of ``channels`` frames (a 4D series with another frame count, a 2D slice), or it
    holds NaN/Inf voxels.

    Each file is opened and read once per version (:func:`file_version`: path, size, modification time), so
    checking the same lists again, as a bundle does for each split, costs only a ``stat`` per file.

    Returns:
        None, or the reason as a phrase to follow the file's name (``"has 3 NaN/Inf voxels of 21952: ..."``).
    """
    try:
        key = (file_version(image), int(channels))
    except OSError as err:
        return f"cannot be opened ({type(err).__name__}: {err.strerror})"
    if key not in _IMAGE_CHECKS:
        import nibabel as nib

        try:
            img = nib.load(str(image))
        except Exception as err:  # nibabel raises several types for unreadable files
            why = f"cannot be read as NIfTI ({type(err).__name__}: {err}); replace the file or leave it out"
        else:
            why = _header_problem(img, channels) or _voxel_problem(img)
        _IMAGE_CHECKS[key] = why
    return _IMAGE_CHECKS[key]


def _entries(items: list[dict], label: int, shown: int = 3) -> str:
    """``"entries 4 (c.nii.gz), 9 (d.nii.gz) and 2 more"``: the entries of ``items`` carrying ``label``."""
    found = [f"{i} ({item['image']})" for i, item in enumerate(items) if item["label"] == label]
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    return ("entry " if len(found) == 1 else "entries ") + ", ".join(found[:shown]) + more


def _class_count(path: str, training: list[dict], num_classes: int | None) -> int:
    """The number of classes: ``num_classes`` when given, else that of the training labels, which must then be
    exactly 0..K-1 (a gap means a typo or a class without training images, and a silently wider network)."""
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be None (taken from the training labels) or an int >= 1, got "
                             f"{num_classes!r}.")
        return num_classes
    labels = sorted({item["label"] for item in training})
    odd = [label for label in labels if label >= len(labels)]
    if odd:
        where = "; ".join(f"label {label} in {_entries(training, label)}" for label in odd)
        raise ValueError(
            f"datalist {path}: the 'training' labels {labels} are not the class indices 0..{len(labels) - 1} of "
            f"{len(labels)} classes: {where}. Fix the labels, or give the number of classes (num_classes, bundle: "
            f"--num_classes {labels[-1] + 1}) if some classes have no training images."
        )
    return len(labels)


_WARNED: set[tuple] = set()


def _warn_once(path: str, message: str) -> None:
    """Log ``message`` once per datalist version (a bundle reads the datalist several times)."""
    key = (os.path.realpath(path), os.stat(path).st_mtime_ns, message)
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


def _images(n: int, of: str | None = None) -> str:
    """``"1 image is"``, ``"3 images of 'test' are"``."""
    where = "" if of is None else f" of {of!r}"
    return f"1 image{where} is" if n == 1 else f"{n} images{where} are"


def _warn_repeats(path: str, content: dict[str, list[dict]]) -> None:
    """One warning per list naming an image more than once, and one per list sharing images with training."""
    images = {key: [os.path.realpath(item["image"]) for item in items] for key, items in content.items()}
    for key, paths in images.items():
        counts = Counter(paths)
        repeated = [p for p, n in counts.items() if n > 1]
        if repeated:
            extra = sum(counts[p] - 1 for p in repeated)
            _warn_once(path, f"datalist {path}: {_images(len(repeated))} listed more than once in {key!r} "
                             f"({extra} extra entries, e.g. {repeated[0]}); each copy counts as a separate sample.")
    training = set(images.get("training", []))
    for key in ("validation", "test"):
        shared = sorted(training.intersection(images.get(key, [])))
        if shared:
            _warn_once(path, f"datalist {path}: {_images(len(shared), key)} also in 'training' (e.g. "
                             f"{shared[0]}); scores on them are not held out.")


def _checked(path: str, base_dir: str | None, in_channels: int, num_classes: int | None) -> dict[str, list[dict]]:
    content = {}
    for key in DATALIST_KEYS.values():
        try:
            content[key] = load_datalist(path, key, base_dir)
        except DatalistSplitError:
            continue
    training = content.get("training", [])
    if not training:
        raise ValueError(f"datalist {path} has an empty or missing 'training' list: list at least one labelled image.")
    count = _class_count(path, training, num_classes)
    source = "given by num_classes" if num_classes is not None else "of the training list"
    problems = []
    for key, items in content.items():
        for i, item in enumerate(items):
            if item["label"] >= count:
                problems.append(
                    f"{key!r} entry {i} ({item['image']}): label {item['label']} is not one of the {count} "
                    f"classes {source} (0..{count - 1})"
                )
            why = image_problem(item["image"], in_channels)
            if why is not None:
                problems.append(f"{key!r} entry {i} ({item['image']}) {why}")
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ValueError(f"datalist {path} has {len(problems)} bad entries:\n  {shown}")
    _warn_repeats(path, content)
    return content


def check_datalist(
    datalist: str | os.PathLike,
    base_dir: str | os.PathLike | None = None,
    in_channels: int = 1,
    num_classes: int | None = None,
) -> dict[str, list[dict]]:
    """Validate a whole datalist before training and return its splits, as :func:`load_datalist` reads them.

    Checks every listed image of every split (``training``, and ``validation``/``test`` when present) with
    :func:`image_problem`: the file exists, reads to its end, describes one 3D volume with ``in_channels`` frames and
    holds no NaN/Inf voxel (each file is read once per version, however often the datalist is checked); the
    label is a non-negative integer class index. Without ``num_classes`` the training labels must be exactly the
    classes 0..K-1 (``{0, 1, 7}`` or ``{0, 3}`` is refused, naming the odd labels and their entries) and the
    validation and test labels must be among them; with it, every label must be below ``num_classes``. All entry
    problems are reported at once, each with its split, entry index and file. An image listed twice in one list, or
    in both training and validation (or test), is not an error: one warning per list gives the count.

    Args:
        datalist: ``.json`` or ``.csv`` path.
        base_dir: folder for relative image paths (default: the datalist's folder).
        in_channels: frames per image the model takes (a 4D file with this many frames is accepted).
        num_classes: the number of classes, when some have no training images; None takes it from the labels.

    Returns:
        ``{split: items}`` for the splits present.

    Raises:
        FileNotFoundError: the datalist or one of its images is missing.
        ValueError: an empty training list, training labels that are not 0..K-1, a bad label, a 2D or 4D image, an
            unreadable or truncated file, NaN/Inf voxels, or a bad ``num_classes``.
    """
    path = Path(datalist)
    if not path.is_file():
        raise FileNotFoundError(f"datalist not found: {path.resolve()}")
    return _checked(str(path), None if base_dir is None else str(base_dir), int(in_channels), num_classes)


#: spacing ratio (largest / smallest voxel edge) above which a volume counts as far from isotropic
ANISOTROPY_RATIO = 2.0


class _CheckVolume:
    """Raise a ``ValueError`` naming the file for an image that is not one finite 3D volume of ``channels``
    channels, and log once per file a spacing far from isotropic (resampled to ``pixdim``, or distorted by the
    resize when ``pixdim`` is None)."""

    def __init__(self, keys: Sequence[str], channels: int, pixdim: Sequence[float] | float | None) -> None:
        self.keys, self.channels, self.pixdim = list(keys), channels, pixdim
        self._logged: set[str] = set()

    def __call__(self, data: dict) -> dict:
        for key in self.keys:
            img = data[key]
            meta = getattr(img, "meta", {})
            name = str(meta.get("filename_or_obj", key))
            why = _shape_problem(tuple(img.shape[1:]), int(img.shape[0]), self.channels)
            if why is not None:
                raise ValueError(f"image {name} {why}.")
            n_bad = int((~torch.isfinite(torch.as_tensor(img))).sum())
            if n_bad:
                raise ValueError(
                    f"image {name} has {n_bad} NaN/Inf voxels of {img[0].numel()}: no prediction is made from it; "
                    f"repair the file (e.g. replace NaN by the background value) or leave it out."
                )
            spacing = [float(v) for v in getattr(img, "pixdim", [])]
            if spacing and max(spacing) > ANISOTROPY_RATIO * min(spacing) and name not in self._logged:
                self._logged.add(name)
                shown = "x".join(f"{v:g}" for v in spacing)
                if self.pixdim is None:
                    logger.warning(
                        "%s has anisotropic spacing %s mm and pixdim is None: it is resized to a cube without its "
                        "spacing; set pixdim to resample it first", name, shown)
                else:
                    logger.info("%s has anisotropic spacing %s mm: resampling to pixdim %s", name, shown, self.pixdim)
        return data


def nifti_transforms(
    spatial_size: Sequence[int] | int = (28, 28, 28),
    pixdim: Sequence[float] | float | None = None,
    axcodes: str = "RAS",
    resize: str = "resize",
    keys: Sequence[str] = ("image",),
    extra: Sequence[Callable] = (),
    in_channels: int = 1,
) -> Compose:
    """The loading pipeline: nibabel read, channel first, orientation, checks, optional spacing, resize, [0, 1]
    scaling.

    The checks raise a ``ValueError`` naming the file for a 2D image, a 4D series whose frame count is not
    ``in_channels`` and a volume with NaN/Inf voxels; a volume whose spacing is far from isotropic (largest edge
    above :data:`ANISOTROPY_RATIO` times the smallest) is logged once per file.

    Args:
        spatial_size: model input size.
        pixdim: target voxel spacing in mm, resampled with :class:`~monai.transforms.Spacingd` (None keeps the
            native spacing, and ``"resize"`` then stretches anisotropic volumes to a cube).
        axcodes: orientation after loading (``"RAS"``).
        resize: ``"resize"`` (trilinear :class:`~monai.transforms.Resized`) or ``"pad_crop"``
            (:class:`~monai.transforms.ResizeWithPadOrCropd` around the centre).
        keys: image keys.
        extra: dictionary transforms appended at the end (e.g. a fixed rotation for rotated evaluation).
        in_channels: channels (frames) per image the model takes.

    Returns:
        a :class:`monai.transforms.Compose` usable in Python or referenced from a bundle config.
    """
    if resize not in ("resize", "pad_crop"):
        raise ValueError(f"resize must be 'resize' or 'pad_crop', got {resize!r}.")
    keys = list(keys)
    spatial_size = ensure_tuple_rep(spatial_size, 3)
    tfs: list[Callable] = [
        LoadImaged(keys, reader="NibabelReader", image_only=True),
        EnsureChannelFirstd(keys),
        _CheckVolume(keys, in_channels, pixdim),
        Orientationd(keys, axcodes=axcodes, labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if pixdim is not None:
        tfs.append(Spacingd(keys, pixdim=pixdim, mode="bilinear"))
    if resize == "resize":
        tfs.append(Resized(keys, spatial_size=spatial_size, mode="trilinear", anti_aliasing=False))
    else:
        tfs.append(ResizeWithPadOrCropd(keys, spatial_size=spatial_size))
    tfs.append(ScaleIntensityd(keys, minv=0.0, maxv=1.0))
    tfs.append(EnsureTyped(keys, dtype="float32", track_meta=False))
    return Compose([*tfs, *extra])


def load_error(err: BaseException) -> str:
    """The innermost cause of an exception, ``"Type: message"`` (MONAI's ``Compose`` wraps transform errors in a
    ``RuntimeError`` that only names the transform)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"


class NiftiDataset(Dataset):
    """:class:`monai.data.Dataset` whose loading errors name the offending file and the reason."""

    def _transform(self, index: int):
        try:
            return super()._transform(index)
        except Exception as err:
            raise RuntimeError(self.describe_error(index, err)) from err

    def describe_error(self, index: int, err: BaseException) -> str:
        """One line for a failed item: ``"<file> (item <index>) does not exist"``, or ``"failed to load or
        transform <file> (item <index>): <Type>: <message>"`` (for a file no reader can read, the first reader's
        reason instead of MONAI's advice to install readers and their tracebacks)."""
        name = self.data[index].get("image", f"item {index}")
        if isinstance(name, (str, os.PathLike)) and not os.path.exists(name):
            return f"{name} (item {index}) does not exist: check the path"
        return f"failed to load or transform {name} (item {index}): {_one_line(load_error(err))}"


#: the last line of a traceback, e.g. ``nibabel.filebasedimages.ImageFileError: File x is not a gzip file``
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception)): (.*)$")


def _one_line(text: str, limit: int = 300) -> str:
    """A possibly multi-line error text as one line of at most ``limit`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    if "cannot find a suitable reader" in first:
        causes = [m for m in map(_EXCEPTION_LINE.match, text.splitlines()[1:]) if m]
        first = "no image reader can read it" + (f" ({causes[0].group(1)}: {causes[0].group(2)})" if causes else "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def nifti_dataset(
    datalist: str | os.PathLike,
    split: str = "training",
    spatial_size: Sequence[int] | int = (28, 28, 28),
    pixdim: Sequence[float] | float | None = None,
    base_dir: str | os.PathLike | None = None,
    resize: str = "resize",
    transform: Callable | None = None,
    num_classes: int | None = None,
) -> NiftiDataset:
    """A dataset of ``{"image": (1, *spatial_size) float in [0, 1], "label": int}`` from a NIfTI datalist.

    Args:
        datalist: ``.json`` (MONAI style) or ``.csv`` (``image,label``) file, see :func:`load_datalist`.
        split: ``"training"``, ``"validation"`` or ``"test"`` (or ``"train"``/``"val"``).
        spatial_size: model input size.
        pixdim: optional resampling spacing.
        base_dir: folder for relative paths (default: the datalist's folder).
        resize: ``"resize"`` or ``"pad_crop"``.
        transform: dictionary transform applied after the loading pipeline.
        num_classes: the number of classes, see :func:`check_datalist` (None: from the training labels).

    Raises:
        FileNotFoundError: missing datalist or image (named).
        ValueError: before the dataset is built, for a datalist that fails :func:`check_datalist` (bad labels, 2D/4D
            images, unreadable or truncated files, NaN/Inf voxels, empty training list) or an empty ``split``.
        RuntimeError: when an item is read, naming the file, for a volume that cannot be loaded or holds NaN/Inf
            (a file changed after the check).

    Example:
        >>> ds = nifti_dataset("datalist.json", "training", spatial_size=(28, 28, 28))  # doctest: +SKIP
        >>> ds[0]["image"].shape  # doctest: +SKIP
        torch.Size([1, 28, 28, 28])
    """
    key = datalist_key(split)
    items = check_datalist(datalist, base_dir, num_classes=num_classes).get(key, [])
    if not items:
        raise ValueError(
            f"datalist {datalist} has an empty or missing {key!r} list: add images to it (a run needs training and "
            f"validation images)."
        )
    extra = [transform] if transform is not None else []
    return NiftiDataset(items, nifti_transforms(spatial_size, pixdim, resize=resize, extra=extra))
