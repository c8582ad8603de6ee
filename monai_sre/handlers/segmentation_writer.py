"""Write the masks of a segmentation inference run, one NIfTI file per input volume, and list those that failed."""

from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from monai.data import NibabelWriter
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.handlers.prediction_writer import _items, _ItemWriter
from monai_sre.utils.io import atomic_path, atomic_write

if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["SegmentationWriter"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class SegmentationWriter(_ItemWriter):
    """Save each predicted mask under ``output_dir`` as it comes, and end the run with the failures and a summary.

    Each mask goes to ``output_dir/<item[output_key]>`` (see :func:`~monai_sre.workflows.output_names`: unique names
    that mirror the inputs' folders), in the input's voxel grid and affine (read from the prediction's metadata, as
    MONAI's ``SaveImage`` does), through MONAI's ``NibabelWriter`` into a temporary file that then replaces the
    target, so an interrupted run never leaves a partial mask. A volume that could not be read (its reason in the
    item's ``error_key``, see :class:`~monai_sre.workflows.InferenceDataset`) or whose mask could not be written is
    skipped. At the end, each failure is logged on one line with its reason, ``summary_file`` lists every input with
    its mask or its reason, and one line gives the counts; if no mask at all was written a ``RuntimeError`` makes
    the run fail (non-zero exit of ``monai.bundle run``).

    Args:
        output_dir: folder of the masks.
        pred_key: output key of the mask, ``(1, *spatial)`` class indices after the post-processing.
        output_key: item key of the mask's file name relative to ``output_dir``.
        path_key: item key of the input path.
        error_key: item key holding a loading error (empty or absent for a good item).
        output_dtype: data type of the saved masks.
        summary_file: CSV (``path``, ``output``, ``error``) written atomically into ``output_dir``; None skips it.

    Raises:
        RuntimeError: at the end of the run, if every volume failed.

    Example:
        >>> SegmentationWriter("out/inference").attach(evaluator)  # doctest: +SKIP
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        pred_key: str = "pred",
        output_key: str = "output",
        path_key: str = "path",
        error_key: str = "error",
        output_dtype: Any = np.uint8,
        summary_file: str | None = "segmentations.csv",
    ) -> None:
        self.output_dir = str(output_dir)
        self.pred_key, self.output_key, self.path_key, self.error_key = pred_key, output_key, path_key, error_key
        self.output_dtype = output_dtype
        self.summary_file = None if summary_file is None else os.path.join(self.output_dir, summary_file)
        self.rows = []

    def _write(self, pred: Any, target: str) -> None:
        writer = NibabelWriter(output_dtype=self.output_dtype)
        writer.set_data_array(pred, channel_dim=0)
        writer.set_metadata(getattr(pred, "meta", None), resample=False)
        with atomic_path(target) as tmp:
            writer.write(tmp, verbose=False)

    def _collect(self, engine: Engine) -> None:
        for item, out in zip(_items(engine.state.batch), _items(engine.state.output)):
            path = str(item.get(self.path_key, ""))
            error = _one_line(item.get(self.error_key) or "")
            target = ""
            if not error:
                target = os.path.join(self.output_dir, str(item[self.output_key]))
                try:
                    self._write(out[self.pred_key], target)
                except Exception as err:
                    error = _one_line(f"cannot write the mask of {path} to {target}: {type(err).__name__}: {err}")
                    target = ""
            self.rows.append({"path": path, "output": target, "error": error})

    def __call__(self, engine: Engine) -> None:
        failed = [r for r in self.rows if r["error"]]
        for r in failed:
            engine.logger.warning(f"not segmented: {r['path']}: {r['error']}")
        if self.summary_file is not None and self.rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=["path", "output", "error"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
            atomic_write(self.summary_file, buf.getvalue())
        n_ok = len(self.rows) - len(failed)
        listed = f", listed in {self.summary_file}" if self.summary_file is not None and self.rows else ""
        engine.logger.info(f"Segmented {n_ok} of {len(self.rows)} volumes, {len(failed)} failed; masks in "
                           f"{self.output_dir}{listed}.")
        if not n_ok:
            raise RuntimeError(
                f"no volume could be segmented: all {len(self.rows)} failed (reasons logged above{listed})."
            )
