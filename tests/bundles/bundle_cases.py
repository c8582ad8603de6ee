"""Smoke and property tests shared by both bundles (tiny data, 1 epoch, tiny widths).

Each ``tests/bundles/test_<bundle>.py`` defines a ``spec`` fixture (a :class:`BundleSpec`) and imports these tests.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from bundle_utils import BUNDLES, REPO, SCHEMA, TINY, run_workflow, workflow

__all__ = ["BundleSpec", "trained"] + [  # the shared tests, collected in every module that imports them
    "test_metadata_verifies", "test_bundle_root_from_any_working_directory", "test_bundle_root_override",
    "test_baseline_is_one_override", "test_input_smoothing_reaches_the_network",
    "test_train_writes_checkpoints_and_tensorboard", "test_resume_continues_from_last_epoch",
    "test_overlays_compose_with_train", "test_training_stops_by_the_rule_and_a_rerun_trains_nothing",
    "test_evaluate_reports_test_accuracy_and_auc", "test_evaluate_rotated_writes_table_summary_and_plot",
    "test_inference_with_rotation_check", "test_inference_keeps_good_volumes_and_lists_bad_ones",
    "test_ckpt_export_torchscript_matches_checkpoint",
    "test_multi_gpu_config_on_cpu_gloo",
]


@dataclass(frozen=True)
class BundleSpec:
    """What differs between the bundles' tests."""

    name: str
    flag: str
    dims: int
    default_run: str
    baseline: str
    rotation_views: set = field(hash=False)
    exact_rotations: list = field(hash=False)
    prob_columns: tuple = ()

    @property
    def configs(self) -> Path:
        return BUNDLES / self.name / "configs"

    train = property(lambda self: self.configs / "train.json")
    evaluate = property(lambda self: self.configs / "evaluate.json")
    rotated = property(lambda self: self.configs / "evaluate_rotated.json")
    inference = property(lambda self: self.configs / "inference.json")
    multi_gpu = property(lambda self: self.configs / "multi_gpu_train.json")


def _overrides(spec, tiny_data, out):
    return {"dataset": spec.flag, "data_root": tiny_data[spec.flag], "output_dir": str(out), **TINY}


@pytest.fixture(scope="module")
def trained(spec, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"{spec.name}_run")
    wf = run_workflow([spec.train], run_id="training", **_overrides(spec, tiny_data, out))
    return wf, out


def test_metadata_verifies(spec):
    if not SCHEMA.is_file():
        pytest.skip(f"schema not found at {SCHEMA}")
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(spec.configs / "metadata.json"), filepath=str(SCHEMA))  # raises on error


@pytest.mark.parametrize("where", ["repo", "bundle", "elsewhere"])
def test_bundle_root_from_any_working_directory(spec, where, tmp_path, monkeypatch):
    cwd, config = {"repo": (REPO, f"bundles/{spec.name}/configs/train.json"),
                   "bundle": (BUNDLES / spec.name, "configs/train.json"), "elsewhere": (tmp_path, str(spec.train))}[where]
    monkeypatch.chdir(cwd)
    wf = workflow([config], run_id="training", default_output=True)
    assert wf.parser.get_parsed_content("bundle_root") == str(BUNDLES / spec.name)
    assert re.fullmatch(f"{spec.default_run}_[0-9a-f]{{8}}", os.path.basename(wf.parser.get_parsed_content("output_dir")))
    assert os.path.dirname(wf.parser.get_parsed_content("output_dir")) == str(BUNDLES / spec.name / "runs")


def test_bundle_root_override(spec, tmp_path):
    wf = workflow([spec.train], run_id="training", bundle_root=str(tmp_path))
    assert wf.parser.get_parsed_content("bundle_root") == str(tmp_path)
    output_dir = wf.parser.get_parsed_content("output_dir")
    assert re.fullmatch(str(tmp_path / "runs" / spec.default_run) + "_[0-9a-f]{8}", output_dir)


def test_baseline_is_one_override(spec):
    sre = workflow([spec.train], run_id="training").parser.get_parsed_content("network_def")
    base = workflow([spec.train], run_id="training", network_name=spec.baseline).parser.get_parsed_content("network_def")
    n_sre, n_base = (sum(p.numel() for p in m.parameters()) for m in (sre, base))
    assert type(sre) is type(base) and n_sre < n_base  # same class, SRE kernels have fewer parameters


def test_input_smoothing_reaches_the_network(spec):
    from monai_sre.blocks import GaussianSmoothing

    for configs, run_id in (([spec.train], "training"), ([spec.train, spec.inference], "inferring")):
        net = workflow(configs, run_id=run_id).parser.get_parsed_content("network_def")
        assert net.input_smoothing is None and isinstance(net.input_filter, torch.nn.Identity)
        net = workflow(configs, run_id=run_id, input_smoothing=0.7).parser.get_parsed_content("network_def")
        assert isinstance(net.input_filter, GaussianSmoothing) and net.input_filter.sigma == 0.7


@pytest.mark.slow
def test_train_writes_checkpoints_and_tensorboard(trained, spec):
    wf, out = trained
    assert sorted(os.listdir(out / "models")) == ["last.pt", "model.pt"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out / "tensorboard"))
    last = torch.load(out / "models" / "last.pt", weights_only=True)
    assert set(last) == {"model", "optimizer", "lr_scheduler", "training_schedule", "trainer", "best_saver", "record"}
    iters = len(wf.parser.get_parsed_content("train#dataloader"))
    assert last["trainer"]["iteration"] == iters and last["lr_scheduler"]["last_epoch"] == 1
    assert last["training_schedule"]["schedule"] == "plateau" and last["training_schedule"]["reductions"] >= 0
    history = json.loads((out / "history.json").read_text())
    assert history["stopped"] == "max_epochs" and history["epochs_run"] == 1  # TINY caps the run at 1 epoch
    assert history["history"][0]["lr"] == wf.parser.get_parsed_content("learning_rate")
    net = wf.parser.get_parsed_content("network_def")
    best = torch.load(out / "models" / "model.pt", weights_only=True)  # the weights and the record of their run
    assert set(best) == {"model", "record"} and best["record"] == last["record"]
    assert json.loads((out / "record.json").read_text()) == last["record"] and not (out / "train.lock").exists()
    net.load_state_dict(best["model"])
    smoothed = workflow([spec.train], run_id="training", input_smoothing=0.7).parser.get_parsed_content("network_def")
    with pytest.raises(RuntimeError, match="input_smoothing=None"):  # the weights record how they were trained
        smoothed.load_state_dict(best["model"])
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    assert 0.0 <= evaluator.state.metrics["val_acc"] <= 1.0 and "val_auc" in evaluator.state.metrics
    assert isinstance(wf.parser.get_parsed_content("loss").loss, torch.nn.CrossEntropyLoss)
    # val_loss is the training loss of the last epoch's weights on the whole val split
    ds = wf.parser.get_parsed_content("validate#dataset")
    net.load_state_dict(last["model"])
    with torch.no_grad():
        logits = net.eval()(torch.stack([ds[i]["image"] for i in range(len(ds))]))
    labels = torch.stack([torch.as_tensor(ds[i]["label"]) for i in range(len(ds))])
    expected = float(wf.parser.get_parsed_content("loss")(logits, labels))
    assert evaluator.state.metrics["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert history["history"][0]["val_loss"] == evaluator.state.metrics["val_loss"]


@pytest.mark.slow
def test_resume_continues_from_last_epoch(spec, trained, tiny_data, tmp_path):
    _, out = trained
    shutil.copytree(out, tmp_path / "run")
    wf = run_workflow([spec.train], run_id="training", **{**_overrides(spec, tiny_data, tmp_path / "run"), "epochs": 2})
    trainer = wf.parser.get_parsed_content("train#trainer")
    resume = wf.parser.get_parsed_content("train#handlers#0")
    iters = len(wf.parser.get_parsed_content("train#dataloader"))
    assert resume.resumed_epoch == 1  # epoch 1 came from the checkpoint, not re-run
    assert trainer.state.epoch == 2 and trainer.state.iteration == 2 * iters
    last = torch.load(tmp_path / "run" / "models" / "last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2 * iters and last["lr_scheduler"]["last_epoch"] == 2
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history["history"]] == [1, 2] and history["epochs_run"] == 2
    # model.pt holds the weights of the epoch with the lowest validation loss (epoch 1's are the fixture's last.pt)
    losses = [r["val_loss"] for r in history["history"]]
    assert losses[0] != losses[1]
    weights = {1: torch.load(out / "models" / "last.pt", weights_only=True)["model"], 2: last["model"]}
    best = torch.load(tmp_path / "run" / "models" / "model.pt", weights_only=True)["model"]
    expected = weights[1 + losses.index(min(losses))]
    assert all(torch.equal(best[k], expected[k]) for k in expected)
    # the checkpoint records its schedule: resuming it with the other one is refused before any training, in one line
    with pytest.raises(Exception) as err:
        run_workflow([spec.train], run_id="training",
                     **{**_overrides(spec, tiny_data, tmp_path / "run"), "epochs": 3, "schedule": "cosine"})
    from monai_sre.data import load_error

    assert "schedule: 'plateau' in the run, 'cosine' now" in load_error(err.value) and "\n" not in load_error(err.value)


def test_overlays_compose_with_train(spec, tiny_data, tmp_path):
    overrides = {k: v for k, v in _overrides(spec, tiny_data, tmp_path).items() if k != "epochs"}
    paper = workflow([spec.train, spec.configs / "paper_profile.json"], run_id="training", **overrides)
    schedule = paper.parser.get_parsed_content("training_schedule")
    assert schedule.schedule == "cosine" and schedule.lr_scheduler.T_max == 100  # the paper's fixed schedule
    diagnostics = workflow([spec.train, spec.configs / "diagnostics.json"], run_id="training", **overrides)
    handlers = diagnostics.parser.get_parsed_content("train#handlers")
    assert type(handlers[-1]).__name__ == "LayerStatsHandler" and handlers[2] is diagnostics.parser.get_parsed_content(
        "training_schedule")
    default = workflow([spec.train], run_id="training").parser  # the embedded set: a short run
    assert default.get_parsed_content("epochs") == 10 and default.get_parsed_content("lr_patience") == 1
    assert default.get_parsed_content("schedule") == "plateau"
    real = workflow([spec.train], run_id="training", **overrides).parser  # MedMNIST: the full rule
    assert real.get_parsed_content("epochs") == 100 and real.get_parsed_content("lr_patience") == 4


@pytest.mark.slow
def test_training_stops_by_the_rule_and_a_rerun_trains_nothing(spec, tiny_data, tmp_path):
    # every validation after the first "fails to improve" by min_delta 10, so patience 2 stops after epoch 3 of 6
    rule = {**_overrides(spec, tiny_data, tmp_path), "epochs": 6, "patience": 2, "min_delta": 10.0}
    wf = run_workflow([spec.train], run_id="training", **rule)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 3 and wf.parser.get_parsed_content("training_schedule").converged
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["stopped"] == "converged" and history["epochs_run"] == 3 and len(history["history"]) == 3
    last = (tmp_path / "models" / "last.pt").read_bytes()

    again = run_workflow([spec.train], run_id="training", **rule)  # the same command on the finished run
    assert again.parser.get_parsed_content("train#handlers#0").resumed_epoch == 3
    assert again.parser.get_parsed_content("train#trainer").state.epoch == 3
    assert (tmp_path / "models" / "last.pt").read_bytes() == last  # nothing trained, nothing saved
    assert json.loads((tmp_path / "history.json").read_text()) == history


@pytest.mark.slow
def test_evaluate_reports_test_accuracy_and_auc(spec, trained, tiny_data):
    _, out = trained
    wf = run_workflow([spec.train, spec.evaluate], run_id="evaluating", **_overrides(spec, tiny_data, out))
    metrics = wf.parser.get_parsed_content("validate#evaluator").state.metrics
    with open(out / "eval" / "metrics.csv") as f:
        saved = dict(line.split(",") for line in f.read().strip().splitlines())
    assert float(saved["test_acc"]) == pytest.approx(metrics["test_acc"])
    # recompute on the test split with the saved best model
    net = wf.parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(out / "models" / "model.pt", weights_only=True)["model"])
    ds = wf.parser.get_parsed_content("validate#dataset")
    with torch.no_grad():
        pred = [int(net(ds[i]["image"][None]).argmax()) for i in range(len(ds))]
    labels = [int(np.asarray(ds[i]["label"]).reshape(-1)[0]) for i in range(len(ds))]
    assert metrics["test_acc"] == pytest.approx(np.mean(np.array(pred) == np.array(labels)))
    assert 0.0 <= metrics["test_auc"] <= 1.0


@pytest.mark.slow
def test_evaluate_rotated_writes_table_summary_and_plot(spec, trained, tiny_data):
    _, out = trained
    wf = run_workflow([spec.train, spec.evaluate, spec.rotated], run_id="evaluating",
                      **_overrides(spec, tiny_data, out))
    rot = out / "rotated"
    assert sorted(os.listdir(rot)) == ["rotated.csv", "rotated.json", "rotated.png", "rotated_scores.npz",
                                       "rotated_summary.csv"]
    with open(rot / "rotated.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 + len(spec.rotation_views) + spec.dims
    assert {(r["axis"], r["angle"]) for r in rows if r["kind"] == "rotation"} == spec.rotation_views
    summary = json.load(open(rot / "rotated.json"))["summary"]
    test_acc = wf.parser.get_parsed_content("validate#evaluator").state.metrics["test_acc"]
    assert summary["Orig."] == pytest.approx(test_acc)
    # the SRE network is invariant to the grid symmetries: 90-degree rotations and flips keep the accuracy
    for r in rows:
        if r["kind"] == "reflection" or (r["kind"] == "rotation" and float(r["angle"]) % 90 == 0):
            assert float(r["acc"]) == pytest.approx(summary["Orig."])


@pytest.mark.slow
def test_inference_with_rotation_check(spec, trained, tiny_data, tmp_path):
    from monai_sre.workflows import export_images

    _, out = trained
    paths = export_images(spec.flag, tmp_path / "images", split="test", n=3, root=tiny_data[spec.flag])
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"test": [{"image": os.path.relpath(p, tmp_path)} for p in paths[:2]]}))
    sources = [(str(tmp_path / "images"), 3), (str(datalist), 2)]
    if spec.dims == 3:  # a real NIfTI volume shipped with nibabel
        import nibabel

        sources.append((os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii"), 1))
    for i, (source, n) in enumerate(sources):
        pred_file = tmp_path / f"pred_{i}.csv"
        run_workflow([spec.train, spec.inference], run_id="inferring", dataset=spec.flag, output_dir=str(out), input=source,
                     widths=TINY["widths"], prediction_file=str(pred_file), rotations=spec.exact_rotations)
        with open(pred_file) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == n
        for r in rows:
            assert sum(float(r[k]) for k in spec.prob_columns) == pytest.approx(1.0, abs=1e-5)
            assert r["invariant"] == "True" and float(r["max_prob_change"]) < 1e-4  # exact grid rotations


@pytest.mark.slow
def test_inference_keeps_good_volumes_and_lists_bad_ones(spec, trained, tiny_data, tmp_path):
    import nibabel as nib

    from monai_sre.workflows import export_images

    _, out = trained
    good = export_images(spec.flag, tmp_path / "images", split="test", n=1, root=tiny_data[spec.flag])[0]
    img = nib.load(good)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[(0,) * data.ndim] = np.nan  # one NaN voxel
    nib.save(nib.Nifti1Image(data, img.affine), str(tmp_path / "images" / "nan.nii.gz"))
    raw = open(good, "rb").read()
    (tmp_path / "images" / "corrupt.nii.gz").write_bytes(raw[: len(raw) // 2])  # a truncated copy
    bad = {"corrupt.nii.gz", "nan.nii.gz"}
    if spec.dims == 3:
        nib.save(nib.Nifti1Image(np.ones((20, 20), np.float32), np.eye(4)), str(tmp_path / "images" / "slice.nii.gz"))
        bad.add("slice.nii.gz")
    pred_file = tmp_path / "pred.csv"
    kwargs = {"dataset": spec.flag, "output_dir": str(out), "widths": TINY["widths"], "prediction_file": str(pred_file)}
    run_workflow([spec.train, spec.inference], run_id="inferring", input=str(tmp_path / "images"), **kwargs)
    with open(pred_file) as f:
        rows = {os.path.basename(r["path"]): r for r in csv.DictReader(f)}
    assert set(rows) == bad | {os.path.basename(good)}
    assert rows[os.path.basename(good)]["error"] == "" and rows[os.path.basename(good)]["pred"] in ("0", "1")
    for name in bad:  # listed with a reason, never with a prediction
        assert rows[name]["error"] and rows[name]["pred"] == "" and rows[name]["prob_" + spec.prob_columns[0][5:]] == ""
        assert name in rows[name]["error"], rows[name]["error"]  # the reason names the file
    assert "NaN" in rows["nan.nii.gz"]["error"]
    # nothing predictable: the CSV still lists the failures, and the run fails (non-zero exit of monai.bundle run)
    os.remove(good)
    with pytest.raises(RuntimeError) as err:
        run_workflow([spec.train, spec.inference], run_id="inferring", input=str(tmp_path / "images"), **kwargs)
    from monai_sre.data import load_error

    assert "no volume could be predicted: all" in load_error(err.value)
    with open(pred_file) as f:
        assert {os.path.basename(r["path"]) for r in csv.DictReader(f) if r["error"]} == bad


@pytest.mark.slow
def test_ckpt_export_torchscript_matches_checkpoint(spec, trained, tmp_path):
    from monai.bundle import ckpt_export

    _, out = trained
    ts_file = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts_file), ckpt_file=str(out / "models" / "model.pt"),
                meta_file=str(spec.configs / "metadata.json"), config_file=[str(spec.train), str(spec.inference)],
                dataset=spec.flag, output_dir=str(out), key_in_ckpt="model", widths=TINY["widths"])
    scripted = torch.jit.load(str(ts_file))
    wf = workflow([spec.train, spec.inference], run_id="inferring", dataset=spec.flag, output_dir=str(out),
                  widths=TINY["widths"])
    net = wf.parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(out / "models" / "model.pt", weights_only=True)["model"])
    x = torch.rand(2, 1, *([28] * spec.dims))
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.extended
def test_multi_gpu_config_on_cpu_gloo(spec, tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "monai.bundle",
           "run", "training", "--config_file", f"['{spec.train}','{spec.multi_gpu}']", "--logging_file", "False",
           "--dataset", spec.flag, "--data_root", tiny_data[spec.flag], "--output_dir", str(out), "--epochs", "1",
           "--widths", "[4,4,4,4]", "--batch_size", "4", "--progress_bar", "False"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = torch.load(out / "models" / "last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 2  # 16 samples / 2 ranks / batch 4 per rank
    assert not any(k.startswith("module.") for k in last["model"])  # saved unwrapped from DDP
