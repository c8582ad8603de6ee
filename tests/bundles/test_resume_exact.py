"""A real training run killed with SIGKILL in the middle of an epoch and re-run ends bit-identical to an
uninterrupted run with the same seed (weights, optimizer state, metrics, best model, learning rates and the epoch at
which the convergence rule stops it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from bundle_utils import BUNDLES, REPO, TINY

# runs the 3D bundle's train.json in a fresh process; argv: output_dir, data_root, iteration to SIGKILL at (0: none)
RUNNER = """
import os, signal, sys
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
torch.set_num_threads(1)
out, root, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = dict(dataset="adrenalmnist3d", data_root=root, output_dir=out, epochs=3, batch_size=4,
                widths=[4, 4, 4, 4], num_workers=0, progress_bar=False)
for arg in sys.argv[5:]:  # extra config overrides, e.g. augment=True
    key, value = arg.split("=", 1)
    settings[key] = eval(value)
wf = ConfigWorkflow(config_file=sys.argv[4], run_id="training", logging_file=False, workflow_type=None, **settings)
wf.initialize()
if kill_at:
    trainer = wf.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=kill_at), lambda e: os.kill(os.getpid(), signal.SIGKILL))
wf.run()
print("resumed_epoch", wf.parser.get_parsed_content("train#handlers#0").resumed_epoch)
state = wf.parser.get_parsed_content("validate#evaluator").state
print("best", state.best_metric, state.best_metric_epoch)
wf.finalize()
"""


CONFIG = BUNDLES / "sre_r3d" / "configs" / "train.json"


def _train(out, root, kill_at=0, extra=()):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-c", RUNNER, str(out), root, str(kill_at), str(CONFIG), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _metrics(out):
    history = json.loads((out / "history.json").read_text())
    keys = ("epoch", "loss", "lr", "val_acc", "val_auc", "val_loss")
    records = [{k: v for k, v in r.items() if k in keys} for r in history["history"]]
    return records, history["epochs_run"], history["stopped"]


# (recipe, extra config overrides, iteration to kill at, epochs the run trains, why it stops); 4 iterations an epoch
RECIPES = [
    ("default", (), 6, 3, "max_epochs"),
    # random affine, smoothing, ... drawn by MONAI transforms with their own generators
    pytest.param("augment", ("augment=True",), 6, 3, "max_epochs", marks=pytest.mark.extended),
    # every validation after the first fails to improve by min_delta, so the rule stops after epoch 3 of at most 6;
    # lr_patience 0 lowers the learning rate at each of them. Killed in the epoch at which it stops.
    pytest.param("stops_early", ("epochs=6", "patience=2", "lr_patience=0", "min_delta=10.0"), 10, 3, "converged",
                 marks=pytest.mark.extended),
]


@pytest.mark.slow
@pytest.mark.parametrize("recipe,extra,kill_at,epochs,stopped", RECIPES)
def test_killed_training_resumes_bit_identical(tiny_data, tmp_path, recipe, extra, kill_at, epochs, stopped):
    if recipe == "augment" and "augment" not in json.loads(CONFIG.read_text()):
        pytest.skip("train.json has no 'augment' switch")
    assert TINY["num_workers"] == 0
    root = tiny_data["adrenalmnist3d"]  # 16 training samples: 4 iterations of 4 per epoch
    ref = _train(tmp_path / "ref", root, extra=extra)
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert _metrics(tmp_path / "ref")[1:] == (epochs, stopped)

    killed = _train(tmp_path / "run", root, kill_at=kill_at, extra=extra)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved_epoch = (kill_at - 1) // 4  # the last epoch completed before the kill
    last = torch.load(tmp_path / "run" / "models" / "last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 4 * saved_epoch
    resumed = _train(tmp_path / "run", root, extra=extra)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed_epoch {saved_epoch}" in resumed.stdout  # the saved epochs came from the checkpoint

    for name in ("last.pt", "model.pt"):
        a = torch.load(tmp_path / "ref" / "models" / name, weights_only=True)
        b = torch.load(tmp_path / "run" / "models" / name, weights_only=True)
        a, b = (x.get("model", x) for x in (a, b))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ref_last = torch.load(tmp_path / "ref" / "models" / "last.pt", weights_only=True)
    run_last = torch.load(tmp_path / "run" / "models" / "last.pt", weights_only=True)
    for k, v in ref_last["optimizer"]["state"].items():
        assert torch.equal(v["momentum_buffer"], run_last["optimizer"]["state"][k]["momentum_buffer"])
    assert ref_last["best_saver"] == run_last["best_saver"]  # best metric, its epoch and the saved best file
    assert _metrics(tmp_path / "run") == _metrics(tmp_path / "ref")
    assert ref_last["lr_scheduler"] == run_last["lr_scheduler"]
    assert ref_last["training_schedule"] == run_last["training_schedule"]  # early-stopping counter and best loss
    best = [line for line in ref.stdout.splitlines() if line.startswith("best ")]
    assert best and best == [line for line in resumed.stdout.splitlines() if line.startswith("best ")]

    if stopped == "converged":  # the same command on the finished run exits at once, changing nothing
        files = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.suffix in (".pt", ".json")}
        rerun = _train(tmp_path / "run", root, extra=extra)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert f"resumed_epoch {epochs}" in rerun.stdout
        assert files == {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.suffix in (".pt", ".json")}
