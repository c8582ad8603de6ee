"""SegmentationWriter on a dummy Ignite engine: masks written atomically, failures listed on one line each."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor

from monai_sre.handlers import SegmentationWriter

AFFINE = np.diag([1.0, 1.5, 2.0, 1.0])


def _good(name: str, output: str, shape=(6, 5, 4)) -> dict:
    pred = MetaTensor(torch.arange(np.prod(shape)).reshape(1, *shape).remainder(3).float(),
                      affine=torch.as_tensor(AFFINE))
    return {"path": name, "output": output, "error": "", "pred": pred}


def _bad(name: str) -> dict:
    return {"path": name, "output": "unused.nii.gz", "error": f"failed to load {name}:\nEOFError: truncated",
            "pred": torch.zeros(1, 2, 2, 2)}


def _run(items, out_dir):
    engine = Engine(lambda e, batch: [{"pred": item["pred"]} for item in batch])
    SegmentationWriter(str(out_dir)).attach(engine)
    engine.run([[item] for item in items], max_epochs=1)
    return engine


def test_masks_are_written_and_failures_listed(tmp_path, caplog):
    items = [_good("p1/x.nii.gz", "p1/x_seg.nii.gz"), _bad("b.nii.gz"), _good("p2/x.nii.gz", "p2/x_seg.nii.gz")]
    with caplog.at_level("INFO"):
        _run(items, tmp_path)
    for name in ("p1", "p2"):
        mask = nib.load(str(tmp_path / name / "x_seg.nii.gz"))
        assert mask.shape == (6, 5, 4) and mask.get_data_dtype() == np.uint8 and np.allclose(mask.affine, AFFINE)
        assert np.array_equal(np.asarray(mask.dataobj), items[0]["pred"][0].numpy())
    assert not list(tmp_path.rglob(".tmp_*")) and not (tmp_path / "unused.nii.gz").exists()
    with open(tmp_path / "segmentations.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == ["p1/x.nii.gz", "b.nii.gz", "p2/x.nii.gz"]
    assert rows[1]["output"] == "" and rows[1]["error"] == "failed to load b.nii.gz: EOFError: truncated"
    assert rows[2]["output"] == str(tmp_path / "p2" / "x_seg.nii.gz")
    messages = [r.getMessage() for r in caplog.records]
    assert "not segmented: b.nii.gz: failed to load b.nii.gz: EOFError: truncated" in messages
    assert any(m.startswith("Segmented 2 of 3 volumes, 1 failed; masks in ") for m in messages)


def test_a_run_with_no_mask_fails_after_listing_the_reasons(tmp_path):
    with pytest.raises(RuntimeError, match="no volume could be segmented: all 2 failed"):
        _run([_bad("a.nii.gz"), _bad("b.nii.gz")], tmp_path)
    with open(tmp_path / "segmentations.csv") as f:
        assert [r["path"] for r in csv.DictReader(f)] == ["a.nii.gz", "b.nii.gz"]
