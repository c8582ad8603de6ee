"""Unit tests of monai_sre.workflows, the Python helpers called by the bundle configs."""

from __future__ import annotations

import json

import pytest
import torch

from monai_sre.workflows import (
    ClassificationLoss,
    classification_postprocessing,
    find_bundle_root,
    image_datalist,
    output_names,
    run_name,
)

LOSS_CASES = [
    ("multi-class", torch.tensor([[0], [2]]), torch.nn.functional.cross_entropy, torch.tensor([0, 2])),
    ("binary-class", torch.tensor([1, 0]), torch.nn.functional.cross_entropy, torch.tensor([1, 0])),
]


@pytest.mark.parametrize("task, label, ref_fn, ref_label", LOSS_CASES)
def test_single_label_loss_is_cross_entropy(task, label, ref_fn, ref_label):
    logits = torch.randn(2, 3)
    assert torch.allclose(ClassificationLoss(task)(logits, label), ref_fn(logits, ref_label))


def test_multilabel_loss_is_bce_and_postprocessing_is_sigmoid():
    logits, label = torch.randn(2, 4), torch.tensor([[1, 0, 0, 1], [0, 0, 1, 0]])
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, label.float())
    assert torch.allclose(ClassificationLoss("multi-label, binary-class")(logits, label), ref)
    out = classification_postprocessing("multi-label, binary-class")({"pred": logits[0]})
    assert torch.allclose(out["pred"], torch.sigmoid(logits[0]))
    out = classification_postprocessing("multi-class")({"pred": logits[0]})
    assert torch.allclose(out["pred"], torch.softmax(logits[0], 0))
    with pytest.raises(ValueError, match="task"):
        ClassificationLoss("regression")


def test_image_datalist_sources(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("b.nii.gz", "a.nii", "notes.txt"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    folder = image_datalist(tmp_path / "imgs")
    assert [d["image"].rsplit("/", 1)[-1] for d in folder] == ["a.nii", "b.nii.gz"]
    (tmp_path / "list.json").write_text(json.dumps({"test": [{"image": "imgs/a.nii"}, "imgs/b.nii.gz"]}))
    assert [d["path"] for d in image_datalist(tmp_path / "list.json")] == [d["path"] for d in folder]
    (tmp_path / "list.csv").write_text("image\nimgs/a.nii\n")
    assert image_datalist(tmp_path / "list.csv")[0]["image"] == str(tmp_path / "imgs" / "a.nii")
    assert image_datalist(tmp_path / "imgs" / "a.nii") == [folder[0]]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_datalist(tmp_path / "missing")
    (tmp_path / "bad.json").write_text(json.dumps([{"image": "imgs/zzz.nii"}]))
    with pytest.raises(FileNotFoundError, match="none of the images .*zzz.nii"):
        image_datalist(tmp_path / "bad.json")
    (tmp_path / "some.json").write_text(json.dumps(["imgs/a.nii", "imgs/zzz.nii"]))  # the missing one gets an error row
    some = [d["path"] for d in image_datalist(tmp_path / "some.json")]
    assert some == [folder[0]["path"], str(tmp_path / "imgs" / "zzz.nii")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        image_datalist(tmp_path / "empty")


def test_find_bundle_root_errors_and_run_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no_such_bundle"):
        find_bundle_root("no_such_bundle")
    assert run_name("synthetic3d", "sre_r3d_18") == "synthetic3d_sre_r3d_18"
    assert run_name("/data/lists/my_list.json", None) == "my_list"


def test_output_names_are_unique_and_mirror_the_input_folders(tmp_path):
    def names(*paths):
        return [item["output"] for item in output_names([{"image": str(tmp_path / p), "path": str(tmp_path / p)}
                                                         for p in paths])]

    assert names("a/x.nii.gz", "a/y.nii", "a/z.NRRD") == ["x_seg.nii.gz", "y_seg.nii.gz", "z_seg.nii.gz"]
    assert names("p1/x.nii.gz", "p2/sub/x.nii.gz") == ["p1/x_seg.nii.gz", "p2/sub/x_seg.nii.gz"]
    assert names("x.nii", "x.nii.gz", "x.nii") == ["x_seg.nii.gz", "x_seg_2.nii.gz", "x_seg.nii.gz"]
    item = output_names([{"image": "/d/a.nii.gz", "path": "/d/a.nii.gz"}], postfix="_mask", key="out")[0]
    assert item == {"image": "/d/a.nii.gz", "path": "/d/a.nii.gz", "out": "a_mask.nii.gz"}


def test_inference_error_cells_are_one_line_naming_the_file(tmp_path):
    from monai_sre.data import nifti_transforms
    from monai_sre.workflows import InferenceDataset

    (tmp_path / "garbage.nii.gz").write_bytes(bytes(range(256)) * 12)
    items = [{"image": str(tmp_path / name), "path": str(tmp_path / name)} for name in ("gone.nii.gz", "garbage.nii.gz")]
    ds = InferenceDataset(items, nifti_transforms(spatial_size=[8] * 3), (1, 8, 8, 8))
    missing, garbage = ds[0]["error"], ds[1]["error"]
    assert missing == f"{tmp_path / 'gone.nii.gz'} (item 0) does not exist: check the path"
    assert "garbage.nii.gz" in garbage and "\n" not in garbage and len(garbage) < 300
    assert "no image reader can read it (ImageFileError:" in garbage and "install" not in garbage
