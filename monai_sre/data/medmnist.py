"""MedMNIST (v2/v3) classification sets as MONAI-style dictionaries, read offline from the official npz files."""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.utils import optional_import
from torch.utils.data import Dataset

from .splits import split_name

medmnist, _has_medmnist = optional_import("medmnist")

__all__ = [
    "BUNDLE_FOR_DIMS",
    "MEDMNIST_FLAGS",
    "MEDMNIST_SIZES",
    "NpzClassificationDataset",
    "MedMNISTDataset",
    "DOWNLOAD_HINT",
    "default_root",
    "fetch_medmnist",
    "read_npz",
    "NPZ_ERRORS",
]

logger = logging.getLogger(__name__)

#: The paper's MedMNIST tasks (2D and 3D), ChestMNIST (multi-label) included.
MEDMNIST_FLAGS = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
    "organmnist3d",
    "nodulemnist3d",
    "adrenalmnist3d",
    "fracturemnist3d",
    "vesselmnist3d",
    "synapsemnist3d",
)
MEDMNIST_SIZES = (28, 64, 128, 224)


def default_root() -> str:
    """Directory searched for MedMNIST npz files: ``$MONAI_SRE_DATA`` if set, else ``~/.medmnist``."""
    return os.environ.get("MONAI_SRE_DATA") or os.path.join(os.path.expanduser("~"), ".medmnist")


#: what :func:`numpy.load` raises for a truncated or corrupt npz file
NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)


def read_npz(path: str | os.PathLike, *keys: str) -> list[np.ndarray]:
    """Arrays ``keys`` of an npz file, with an error naming the file when it is truncated or corrupt.

    Raises:
        RuntimeError: if the file cannot be read or lacks one of ``keys``.
    """
    try:
        with np.load(path) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise RuntimeError(
                    f"npz file {os.path.abspath(path)} has no {missing} (it holds {sorted(npz.files)}): it is not a "
                    f"MedMNIST-format file; put the dataset's own npz there."
                )
            return [npz[k] for k in keys]
    except NPZ_ERRORS as err:
        raise RuntimeError(
            f"npz file {os.path.abspath(path)} cannot be read ({type(err).__name__}: {err}); it is probably truncated "
            f"or corrupt: delete it and download (MedMNIST) or regenerate (synthetic) it again."
        ) from err


def npz_name(flag: str, size: int = 28) -> str:
    """MedMNIST file naming: ``{flag}.npz`` for size 28, ``{flag}_{size}.npz`` otherwise."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


#: how a user fetches a missing MedMNIST file, for the messages that report one
DOWNLOAD_HINT = "or download it with --download true (bundles) or download=True (get_dataset, MedMNISTDataset)"


def fetch_medmnist(name: str, root: str | os.PathLike | None = None, size: int = 28) -> str:
    """Download the MedMNIST npz of ``name`` at ``size`` into ``root`` with the ``medmnist`` package, unless it is
    there already.

    Args:
        name: MedMNIST flag, e.g. ``"adrenalmnist3d"``.
        root: the data folder; default :func:`default_root` (``$MONAI_SRE_DATA`` or ``~/.medmnist``).
        size: 28, 64, 128 or 224.

    Returns:
        the path of the npz file (all three splits).

    Raises:
        ImportError: without the ``medmnist`` package.
        ValueError: unknown name or size.
        RuntimeError: the download failed (the message names the file, the folder and the cause).
    """
    if not _has_medmnist:
        raise ImportError("downloading MedMNIST needs the medmnist package (pip install medmnist).")
    flag = str(name).lower()
    if flag not in medmnist.INFO:
        raise ValueError(f"name must be a MedMNIST flag such as {MEDMNIST_FLAGS[:3]}..., got {name!r}.")
    if size not in MEDMNIST_SIZES:
        raise ValueError(f"size must be one of {MEDMNIST_SIZES}, got {size!r}.")
    root_dir = Path(root if root is not None else default_root()).expanduser()
    path = root_dir / npz_name(flag, size)
    if path.is_file():
        return str(path)
    root_dir.mkdir(parents=True, exist_ok=True)
    data_class = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    logger.info("downloading MedMNIST %s (size %d) into %s", flag, size, root_dir)
    try:
        data_class(split="train", root=str(root_dir), size=size, download=True)
    except Exception as err:  # noqa: BLE001 - medmnist raises plain RuntimeError/URLError/OSError
        raise RuntimeError(f"download of MedMNIST file {path.name!r} into {root_dir.resolve()} failed: {err}") from err
    if not path.is_file():
        raise RuntimeError(f"download of MedMNIST file {path.name!r} into {root_dir.resolve()} wrote no such file.")
    return str(path)


def _to_channel_first(images: np.ndarray, spatial_dims: int) -> np.ndarray:
    """``(N, *spatial)`` gray or ``(N, H, W, 3)`` RGB uint8 -> ``(N, C, *spatial)``."""
    if images.ndim == spatial_dims + 1:
        return images[:, None]
    if images.ndim == spatial_dims + 2:  # channels last (RGB 2D)
        return np.moveaxis(images, -1, 1)
    raise ValueError(f"images of shape {images.shape} do not match spatial_dims={spatial_dims}.")


#: the bundle for each number of spatial dimensions
BUNDLE_FOR_DIMS = {2: "bundles/sre_r18", 3: "bundles/sre_r3d"}


def _check_shape(path: Path, flag: str, split: str, size: int, info: dict, shape: tuple) -> None:
    """Refuse an npz whose images are not ``flag``'s (e.g. a 2D set's file under a 3D set's name), naming the file,
    the shapes found and expected, and the bundle for the data it holds."""
    dims = 3 if flag.endswith("3d") else 2
    channels = int(info["n_channels"])
    expected = ("N",) + (size,) * dims + ((channels,) if channels > 1 else ())
    if len(shape) == len(expected) and tuple(shape[1:]) == expected[1:]:
        return
    found_dims = len(shape) - 2 if len(shape) == 4 and shape[-1] == 3 else len(shape) - 1  # RGB 2D: channels last
    hint = (f"; it looks like {found_dims}D data: use {BUNDLE_FOR_DIMS[found_dims]} and that dataset's name"
            if found_dims in BUNDLE_FOR_DIMS and found_dims != dims else "")
    raise ValueError(
        f"MedMNIST file {path.resolve()} holds {split}_images of shape {tuple(shape)} but {flag} at size {size} has "
        f"{tuple(expected)}: it is another dataset's file{hint}, or put the official {path.name} there."
    )


class NpzClassificationDataset(Dataset):
    """Items of MedMNIST-format arrays as dictionaries ``{"image": (C, *spatial) float in [0, 1], "label": ...}``.

    Args:
        images: ``(N, *spatial)`` or ``(N, H, W, C)`` uint8 (or float) array.
        labels: ``(N, 1)`` integer labels, or ``(N, K)`` multi-hot labels when ``multi_label``.
        spatial_dims: 2 or 3.
        multi_label: return the label as a float multi-hot vector instead of an int.
        transform: optional callable applied to each item dictionary (e.g. a MONAI ``Compose`` of dict transforms).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        spatial_dims: int,
        multi_label: bool = False,
        transform: Callable | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) must have the same length.")
        self.spatial_dims = spatial_dims
        self.images = _to_channel_first(np.asarray(images), spatial_dims)
        labels = np.asarray(labels)
        self.labels = labels.reshape(len(labels), -1) if len(labels) else labels.reshape(0, 1)
        self.multi_label = multi_label
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        img = self.images[index]
        image = torch.from_numpy(np.ascontiguousarray(img)).float()
        if img.dtype == np.uint8:
            image = image / 255.0
        if self.multi_label:
            label = torch.from_numpy(self.labels[index].astype(np.float32))
        else:
            label = int(self.labels[index, 0])
        item = {"image": image, "label": label}
        return self.transform(item) if self.transform is not None else item


class MedMNISTDataset(NpzClassificationDataset):
    """One split of a MedMNIST task, read through the ``medmnist`` package from ``root`` (no network by default).

    Items are MONAI dictionaries: ``image`` is channel-first float in ``[0, 1]`` (``(1, D, H, W)`` for 3D tasks,
    ``(1|3, H, W)`` for 2D), ``label`` an int, or a 14-dim float multi-hot vector for ChestMNIST.

    Args:
        name: MedMNIST flag, e.g. ``"adrenalmnist3d"`` or ``"breastmnist"`` (see :data:`MEDMNIST_FLAGS`).
        split: ``"train"``, ``"val"`` or ``"test"`` (``"training"``/``"validation"`` also accepted).
        root: folder with the npz files; default :func:`default_root` (``$MONAI_SRE_DATA`` or ``~/.medmnist``).
        size: 28, 64, 128 or 224 (file ``{name}.npz`` for 28, ``{name}_{size}.npz`` otherwise).
        transform: callable applied to each item dictionary.
        download: download the file with ``medmnist`` if it is missing (:func:`fetch_medmnist`; needs internet).

    Raises:
        ValueError: unknown name, split or size.
        FileNotFoundError: the npz is not in ``root`` and ``download=False``; the message names the full path.
        RuntimeError: the npz is truncated or corrupt; the message names it.

    Example:
        >>> ds = MedMNISTDataset("adrenalmnist3d", "test", root=os.environ["MONAI_SRE_DATA"])  # doctest: +SKIP
        >>> ds[0]["image"].shape, ds[0]["label"]  # doctest: +SKIP
        (torch.Size([1, 28, 28, 28]), 0)
    """

    def __init__(
        self,
        name: str,
        split: str,
        root: str | os.PathLike | None = None,
        size: int = 28,
        transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        if not _has_medmnist:
            raise ImportError("MedMNISTDataset needs the medmnist package (pip install medmnist).")
        flag = str(name).lower()
        if flag not in medmnist.INFO:
            raise ValueError(f"name must be a MedMNIST flag such as {MEDMNIST_FLAGS[:3]}..., got {name!r}.")
        split = split_name(split)
        if size not in MEDMNIST_SIZES:
            raise ValueError(f"size must be one of {MEDMNIST_SIZES}, got {size!r}.")
        root_dir = Path(root if root is not None else default_root()).expanduser()
        path = root_dir / npz_name(flag, size)
        if download:
            fetch_medmnist(flag, root_dir, size)
        elif not path.is_file():
            raise FileNotFoundError(
                f"MedMNIST file {npz_name(flag, size)!r} not found: expected it at {path.resolve()}. Put the official "
                f"npz there (or set root / MONAI_SRE_DATA), {DOWNLOAD_HINT}."
            )
        info = medmnist.INFO[flag]
        data_class = getattr(medmnist, info["python_class"])
        logger.debug("loading %s split %s from %s", flag, split, path)
        try:
            raw = data_class(split=split, root=str(root_dir), size=size, download=False)
        except NPZ_ERRORS:
            read_npz(path, f"{split}_images", f"{split}_labels")  # raises the error that names the file
            raise
        _check_shape(path, flag, split, size, info, np.shape(raw.imgs))
        self.name, self.size, self.path, self.info = flag, size, path, info
        super().__init__(
            raw.imgs,
            raw.labels,
            spatial_dims=3 if flag.endswith("3d") else 2,
            multi_label=info["task"].startswith("multi-label"),
            transform=transform,
        )
