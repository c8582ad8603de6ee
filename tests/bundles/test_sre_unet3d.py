"""Smoke and property tests of the 3D segmentation bundle ``bundles/sre_unet3d`` on a tiny NIfTI datalist."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest
from bundle_utils import BUNDLES, run_workflow, workflow

CONFIGS = BUNDLES / "sre_unet3d" / "configs"
# inference.json is an overlay on train.json, whose run record it reads
INFERENCE = [CONFIGS / "train.json", CONFIGS / "inference.json"]
TINY = {"epochs": 1, "features": [4, 4, 8, 4], "size": 16, "batch_size": 2, "num_workers": 0, "progress_bar": False}


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    """Four 16^3 image/label NIfTI pairs from the synthetic set: 2 training, 1 validation, 1 test."""
    import nibabel as nib

    from monai_sre.data import make_synthetic_segmentation

    root = tmp_path_factory.mktemp("seg_nifti")
    with np.load(make_synthetic_segmentation(str(root), size=16, n_train=4, n_val=0, n_test=0)) as data:
        images, labels = data["train_images"], data["train_labels"]
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    entries = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        nib.save(nib.Nifti1Image(img.astype(np.float32), affine), str(root / f"img{i}.nii.gz"))
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), affine), str(root / f"lab{i}.nii.gz"))
        entries.append({"image": f"img{i}.nii.gz", "label": f"lab{i}.nii.gz"})
    path = root / "datalist.json"
    path.write_text(json.dumps({"training": entries[:2], "validation": entries[2:3], "test": entries[3:]}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("network_name", ["sre_unet", "plain_unet"])
def test_train_resume_rotated_evaluation_and_inference(network_name, datalist, tmp_path):
    out = tmp_path / "run"
    common = {**TINY, "dataset": str(datalist), "output_dir": str(out), "network_name": network_name}
    run_workflow([CONFIGS / "train.json"], run_id="training", **common)
    assert (out / "models" / "last.pt").is_file() and (out / "models" / "model.pt").is_file()
    events = [f for f in os.listdir(out / "tensorboard") if f.startswith("events.out.tfevents")]
    assert events, "training writes TensorBoard scalars"
    # resume: a longer run continues after the saved epoch
    run_workflow([CONFIGS / "train.json"], run_id="training", **{**common, "epochs": 2})
    history = json.loads((out / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]

    rotated = [CONFIGS / "train.json", CONFIGS / "evaluate.json", CONFIGS / "evaluate_rotated.json"]
    run_workflow(rotated, run_id="evaluating", rotations=[[0, 90], [2, 180], [1, 45]], reflections=[0], **common)
    with open(out / "rotated" / "rotated.csv") as f:
        rows = {r["name"]: float(r["dice"]) for r in csv.DictReader(f)}
    assert set(rows) == {"original", "rot_axis0_90", "rot_axis2_180", "rot_axis1_45", "flip_axis0"}
    assert (out / "rotated" / "rotated.png").is_file() and (out / "rotated" / "rotated_summary.csv").is_file()
    exact = [rows[k] - rows["original"] for k in ("rot_axis0_90", "rot_axis2_180", "flip_axis0")]
    if network_name == "sre_unet":  # grid symmetries: the same Dice, up to float rounding
        assert max(abs(d) for d in exact) < 1e-6, rows

    import nibabel as nib

    image = datalist.parent / "img3.nii.gz"
    run_workflow(INFERENCE, run_id="inferring", input=str(image), output_dir=str(out),
                 features=TINY["features"], size=16, network_name=network_name)
    seg = nib.load(str(out / "inference" / "img3_seg.nii.gz"))
    src = nib.load(str(image))
    assert seg.shape == src.shape and np.allclose(seg.affine, src.affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}


def test_bad_label_stops_training_before_it_starts(datalist, tmp_path):
    """Each entry is checked before the first epoch: here a label map with a value outside the 3 classes."""
    import nibabel as nib

    entries = json.loads(datalist.read_text())
    lab = nib.load(str(datalist.parent / entries["training"][1]["label"]))
    values = np.asarray(lab.dataobj).astype(np.int16)
    values[0, 0, 0] = 5
    nib.save(nib.Nifti1Image(values, lab.affine), str(tmp_path / "bad_label.nii.gz"))
    entries["training"][1]["label"] = str(tmp_path / "bad_label.nii.gz")
    entries = {k: [{key: str(datalist.parent / v) for key, v in e.items()} for e in items]  # absolute paths
               for k, items in entries.items()}
    (tmp_path / "dl.json").write_text(json.dumps(entries))
    with pytest.raises(Exception) as err:
        run_workflow([CONFIGS / "train.json"], run_id="training",
                     **{**TINY, "dataset": str(tmp_path / "dl.json"), "output_dir": str(tmp_path / "run")})
    from monai_sre.data import load_error

    assert re.search(r"dl.json has 1 bad entries:\n  'training' entry 1: label .*bad_label.nii.gz holds values 5 outside "
                     r"the classes 0..2", load_error(err.value)), load_error(err.value)
    assert not list(tmp_path.rglob("*.pt"))  # nothing trained, nothing saved


@pytest.fixture
def untrained(tmp_path):
    """An output folder with an untrained tiny network's checkpoint (inference only needs weights)."""
    import torch

    out = tmp_path / "run"
    overrides = {"features": TINY["features"], "size": 16}
    net = workflow(INFERENCE, run_id="inferring", **overrides).parser.get_parsed_content("network_def")
    (out / "models").mkdir(parents=True)
    torch.save(net.state_dict(), out / "models" / "model.pt")
    return {"output_dir": str(out), **overrides}


def _volume(path, shape=(12, 12, 12), affine=None):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(len(str(path))).random(shape).astype(np.float32)
    nib.save(nib.Nifti1Image(image, np.diag([1.0, 1.5, 2.0, 1.0]) if affine is None else affine), str(path))
    return path


@pytest.mark.slow
def test_inference_keeps_going_past_bad_volumes(untrained, tmp_path, caplog):
    import nibabel as nib

    images = tmp_path / "images"
    good = [_volume(images / "a.nii.gz"), _volume(images / "c.nii.gz", shape=(16, 12, 8))]
    raw = good[0].read_bytes()
    (images / "b.nii.gz").write_bytes(raw[: len(raw) // 2])  # a truncated copy
    nib.save(nib.Nifti1Image(np.ones((12, 12), np.float32), np.eye(4)), str(images / "slice.nii.gz"))  # 2D
    pred_dir = tmp_path / "masks"
    with caplog.at_level("INFO"):
        run_workflow(INFERENCE, run_id="inferring", input=str(images), prediction_dir=str(pred_dir),
                     **untrained)
    for source in good:
        mask = nib.load(str(pred_dir / source.name.replace(".nii.gz", "_seg.nii.gz")))
        src = nib.load(str(source))
        assert mask.shape == src.shape and np.allclose(mask.affine, src.affine)
        assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1, 2}
    assert sorted(p.name for p in pred_dir.iterdir()) == ["a_seg.nii.gz", "c_seg.nii.gz", "segmentations.csv"]
    with open(pred_dir / "segmentations.csv") as f:
        rows = {os.path.basename(r["path"]): r for r in csv.DictReader(f)}
    assert [rows[n]["error"] == "" for n in ("a.nii.gz", "b.nii.gz", "c.nii.gz", "slice.nii.gz")] == [
        True, False, True, False]
    assert "b.nii.gz" in rows["b.nii.gz"]["error"] and "3 spatial axes" in rows["slice.nii.gz"]["error"]
    lines = [r.getMessage() for r in caplog.records]
    failed = [m for m in lines if m.startswith("not segmented: ")]
    assert len(failed) == 2 and all("\n" not in m for m in failed)
    assert any(m.startswith("Segmented 2 of 4 volumes, 2 failed; masks in ") for m in lines), lines[-5:]
    # nothing predictable: the reasons are still listed, and the run fails (non-zero exit of monai.bundle run)
    (images / "a.nii.gz").unlink()
    (images / "c.nii.gz").unlink()
    with pytest.raises(Exception) as err:
        run_workflow(INFERENCE, run_id="inferring", input=str(images),
                     prediction_dir=str(pred_dir), **untrained)
    from monai_sre.data import load_error

    assert "no volume could be segmented: all 2 failed" in load_error(err.value)
    with open(pred_dir / "segmentations.csv") as f:
        assert sorted(os.path.basename(r["path"]) for r in csv.DictReader(f) if r["error"]) == ["b.nii.gz",
                                                                                                "slice.nii.gz"]


@pytest.mark.slow
def test_inference_gives_same_named_inputs_their_own_masks(untrained, tmp_path):
    import nibabel as nib

    first = _volume(tmp_path / "data" / "p1" / "x.nii.gz", shape=(12, 12, 12))
    second = _volume(tmp_path / "data" / "p2" / "x.nii.gz", shape=(16, 8, 12))
    (tmp_path / "list.json").write_text(json.dumps({"test": [str(first), "data/p2/x.nii.gz"]}))
    pred_dir = tmp_path / "masks"
    run_workflow(INFERENCE, run_id="inferring", input=str(tmp_path / "list.json"),
                 prediction_dir=str(pred_dir), **untrained)
    for source, mask in ((first, pred_dir / "p1" / "x_seg.nii.gz"), (second, pred_dir / "p2" / "x_seg.nii.gz")):
        assert nib.load(str(mask)).shape == nib.load(str(source)).shape


def test_inference_takes_the_network_and_window_from_the_checkpoint(tmp_path):
    """Trained with 4-4-8-4 features on 16^3 windows: inference builds that network and window without being told,
    and refuses another window size unless it is meant."""
    import torch

    from monai_sre.data import load_error

    trained = {"features": TINY["features"], "size": 16}
    net = workflow(INFERENCE, run_id="inferring", **trained).parser.get_parsed_content("network_def")
    (tmp_path / "models").mkdir()
    settings = {"network_name": "sre_unet", "sre_kwargs": {"algorithm": "dense"}, "spatial_dims": 3, "in_channels": 1,
                "num_classes": 3, **trained}
    torch.save({"model": net.state_dict(), "settings": settings}, tmp_path / "models" / "model.pt")
    parser = workflow(INFERENCE, run_id="inferring", output_dir=str(tmp_path)).parser
    assert tuple(parser.get_parsed_content("infer#inferer").roi_size) == (16, 16, 16)
    built = parser.get_parsed_content("network_def")
    assert [p.shape for p in built.parameters()] == [p.shape for p in net.parameters()]
    with pytest.raises(Exception) as err:
        workflow(INFERENCE, run_id="inferring", output_dir=str(tmp_path),
                 size=32).parser.get_parsed_content("infer#inferer")
    assert "--size 32 disagrees with checkpoint" in load_error(err.value) and "size=16" in load_error(err.value)
    meant = workflow(INFERENCE, run_id="inferring", output_dir=str(tmp_path), size=32,
                     override_preprocessing=True).parser
    assert tuple(meant.get_parsed_content("infer#inferer").roi_size) == (32, 32, 32)
