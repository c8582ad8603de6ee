"""Input lists for bundle inference: a folder, a single image, or a JSON/CSV datalist of image paths."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from monai_sre.data import NiftiDataset, read_datalist

__all__ = ["IMAGE_SUFFIXES", "image_datalist", "output_names", "export_images", "InferenceDataset"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES)


def image_datalist(source: str | os.PathLike) -> list[dict[str, str]]:
    """Items ``{"image": path, "path": path}`` for MONAI's ``LoadImaged`` from a folder, a file or a datalist.

    Args:
        source: a folder (every image file inside, sorted, not recursive), one image file (``.nii``, ``.nii.gz``,
            ``.png``, ...), a ``.json`` datalist (a list of paths or of ``{"image": path}``, or a dict with a
            ``"test"``/``"data"`` list) or a ``.csv`` with an ``image`` column. Relative paths in a datalist are
            relative to the datalist's folder.

    Returns:
        list of dicts, one per image.

    Raises:
        FileNotFoundError: if ``source`` or a listed image does not exist.
        ValueError: if the folder holds no images or the datalist is malformed.

    Example:
        >>> image_datalist("volumes/")  # doctest: +SKIP
        [{'image': 'volumes/a.nii.gz', 'path': 'volumes/a.nii.gz'}, ...]
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"input {str(source)!r} does not exist (expected a folder, an image or a datalist).")
    if src.is_dir():
        paths = [str(p) for p in sorted(src.iterdir()) if _is_image(p)]
        if not paths:
            raise ValueError(f"input folder {src} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    elif src.suffix.lower() in (".json", ".csv"):
        paths = [item["image"] for item in read_datalist(src, None, fields=("image",))]
        if not paths:
            raise ValueError(f"datalist {src} lists no images.")
    elif _is_image(src):
        paths = [str(src)]
    else:
        raise ValueError(f"input {src} is not a folder, an image ({', '.join(IMAGE_SUFFIXES)}) or a .json/.csv datalist.")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing and len(missing) == len(paths):
        more = " ..." if len(missing) > 3 else ""
        raise FileNotFoundError(f"none of the images listed in {src} exist: {missing[:3]}{more}")
    if missing:  # the others are still predicted; these get an error row
        logger.warning("%d images listed in %s do not exist: %s%s", len(missing), src, missing[:3],
                       " ..." if len(missing) > 3 else "")
    return [{"image": p, "path": p} for p in paths]


def _stem(path: str) -> str:
    """The file name without its image suffix (``.nii.gz`` as a whole)."""
    name = os.path.basename(path)
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def output_names(items: Sequence[dict], postfix: str = "_seg", suffix: str = ".nii.gz", path_key: str = "path",
                 key: str = "output") -> list[dict]:
    """Give every input a distinct output file name: its path relative to the common folder of all inputs, with the
    image suffix replaced by ``postfix + suffix``.

    Inputs of one folder keep flat names (``a.nii.gz`` -> ``a_seg.nii.gz``); same-named inputs of different folders
    mirror their folders (``p1/x.nii.gz`` and ``p2/x.nii.gz`` -> ``p1/x_seg.nii.gz`` and ``p2/x_seg.nii.gz``), so no
    output overwrites another. Names that would still clash (``x.nii`` next to ``x.nii.gz``) get ``_2``, ``_3``, ...

    Args:
        items: e.g. from :func:`image_datalist`.
        postfix: added to the file name.
        suffix: output file type.
        path_key: item key of the input path.
        key: item key receiving the relative output name.

    Returns:
        new items with ``key`` set.
    """
    paths = [os.path.abspath(str(item[path_key])) for item in items]
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    owner: dict[str, str] = {}
    out = []
    for item, path in zip(items, paths):
        base = os.path.join(os.path.relpath(os.path.dirname(path), root), _stem(path) + postfix)
        name, n = os.path.normpath(base + suffix), 1
        while owner.setdefault(name, path) != path:
            n += 1
            name = os.path.normpath(f"{base}_{n}{suffix}")
        out.append({**item, key: name})
    return out


class InferenceDataset(NiftiDataset):
    """:class:`~monai_sre.data.NiftiDataset` for inference that never stops on a bad volume.

    An item that fails to load or transform, comes out with a shape other than ``image_shape``, or holds NaN/Inf
    values is returned as a zero image of ``image_shape`` with its reason, naming the file, in ``item[error_key]``
    (``""`` for good items), so the batch still collates and :class:`~monai_sre.handlers.PredictionWriter` writes an
    error row for it instead of a prediction (:class:`~monai_sre.handlers.SegmentationWriter` lists it instead of
    writing a mask).

    Args:
        data: items, e.g. from :func:`image_datalist`.
        transform: the preprocessing.
        image_shape: ``(C, *spatial)`` of a preprocessed image (the network input of one item).
        image_key: item key of the image.
        path_key: item key of the input path (kept in the error item).
        error_key: item key receiving the error message.
        fixed_size: False accepts any spatial size (sliding-window segmentation of whole volumes, batch size 1):
            only the channel count and the number of spatial axes of ``image_shape`` are then required.

    Example:
        >>> ds = InferenceDataset(image_datalist("volumes/"), nifti_transforms(28), (1, 28, 28, 28))  # doctest: +SKIP
        >>> ds[0]["error"]  # doctest: +SKIP
        ''
    """

    def __init__(
        self,
        data: Sequence[dict],
        transform: Callable,
        image_shape: Sequence[int],
        image_key: str = "image",
        path_key: str = "path",
        error_key: str = "error",
        fixed_size: bool = True,
    ) -> None:
        super().__init__(data, transform)
        self.image_shape = tuple(int(n) for n in image_shape)
        self.image_key, self.path_key, self.error_key = image_key, path_key, error_key
        self.fixed_size = bool(fixed_size)

    def _shape_problem(self, shape: tuple[int, ...]) -> str | None:
        if self.fixed_size and shape != self.image_shape:
            return f"preprocessed image has shape {shape}, the model takes {self.image_shape}"
        if len(shape) != len(self.image_shape) or shape[0] != self.image_shape[0]:
            return (f"preprocessed image has shape {shape}, the model takes {self.image_shape[0]} channel(s) and "
                    f"{len(self.image_shape) - 1} spatial axes")
        return None

    def _transform(self, index: int) -> dict:
        try:
            item = dict(super()._transform(index))
            image = torch.as_tensor(item[self.image_key])
            why = self._shape_problem(tuple(image.shape))
            if why is not None:
                raise ValueError(why)
            n_bad = int((~torch.isfinite(image)).sum())
            if n_bad:
                raise ValueError(f"preprocessed image has {n_bad} NaN/Inf values")
        except Exception as err:
            source = self.data[index]
            reason = self.describe_error(index, err)
            logger.warning("cannot predict: %s", reason)
            return {  # the source's other keys (e.g. an output name) stay, so every item has the same keys
                **{k: v for k, v in source.items() if k != self.image_key},
                self.image_key: torch.zeros(self.image_shape),
                self.path_key: str(source.get(self.path_key, source.get(self.image_key, index))),
                self.error_key: reason,
            }
        item[self.error_key] = ""
        return item


def export_images(
    dataset: str,
    output_dir: str | os.PathLike,
    split: str = "test",
    n: int = 8,
    root: str | os.PathLike | None = None,
    size: int = 28,
) -> list[str]:
    """Write the first ``n`` images of a dataset split as NIfTI files (demo input for ``inference.json``).

    Images are written channel-squeezed (``(H, W)`` or ``(H, W, D)``, float32, identity affine) as
    ``<output_dir>/<split>_<index>_label<label>.nii.gz``; multi-channel (RGB) images keep a trailing channel axis.

    Args:
        dataset: any name accepted by :func:`monai_sre.data.get_dataset` (e.g. ``"synthetic3d"``).
        output_dir: folder to write into (created if needed).
        split: ``"train"``, ``"val"`` or ``"test"``.
        n: number of images.
        root: data root passed to :func:`~monai_sre.data.get_dataset`.
        size: image size passed to :func:`~monai_sre.data.get_dataset`.

    Returns:
        the written paths.

    Raises:
        ValueError: if ``n`` is not a positive int.
    """
    import nibabel as nib
    import numpy as np

    from monai_sre.data import get_dataset

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    ds = get_dataset(dataset, split, root=root, size=size)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(n, len(ds))):
        item = ds[i]
        img = np.asarray(item["image"], dtype=np.float32)
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
        label = np.asarray(item["label"]).reshape(-1)
        tag = "".join(str(int(v)) for v in label)
        path = out / f"{split}_{i:03d}_label{tag}.nii.gz"
        nib.save(nib.Nifti1Image(img, np.eye(4)), str(path))
        paths.append(str(path))
    return paths
