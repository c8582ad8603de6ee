from __future__ import annotations

import csv

import pytest
import torch
from ignite.engine import Engine

from monai_sre.handlers import PredictionWriter


class SumNet(torch.nn.Module):
    """Invariant under any permutation of voxels (so under rot90): logits from the image sum."""

    def forward(self, x):
        s = x.flatten(1).sum(1, keepdim=True)
        return torch.cat([s, -s], dim=1)


class CornerNet(torch.nn.Module):
    def forward(self, x):
        c = x.flatten(2)[:, :, 0]
        return torch.cat([c, -c], dim=1)


def _engine(net, images, paths):
    def step(engine, batch):
        logits = net(torch.stack([b["image"] for b in batch]))
        return [{"pred": torch.softmax(l, 0)} for l in logits]

    engine = Engine(step)
    engine.network = net
    engine.state.device = torch.device("cpu")
    batches = [[{"image": img, "path": p}] for img, p in zip(images, paths)]
    return engine, batches


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_rows_probabilities_and_invariance(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 8, 8, 8, generator=g) - 0.5 for _ in range(3)]
    paths = [f"vol{i}.nii.gz" for i in range(3)]
    out = tmp_path / "pred" / "predictions.csv"
    for net, expect_invariant in ((SumNet(), True), (CornerNet(), False)):
        engine, batches = _engine(net, images, paths)
        writer = PredictionWriter(str(out), "binary-class", ["neg", "pos"], rotations=[(0, 90), (2, 180)])
        writer.attach(engine)
        engine.run(batches, max_epochs=1)
        rows = _read(out)
        assert [r["path"] for r in rows] == paths
        for r in rows:
            probs = float(r["prob_neg"]) + float(r["prob_pos"])
            assert probs == pytest.approx(1.0, abs=1e-5)
            assert r["pred_name"] == ["neg", "pos"][int(r["pred"])]
            assert {"pred@axis0_rot90", "prob@axis2_rot180", "invariant", "max_prob_change"} <= set(r)
        if expect_invariant:
            assert all(r["invariant"] == "True" for r in rows)
            assert max(float(r["max_prob_change"]) for r in rows) < 1e-5
        else:
            assert max(float(r["max_prob_change"]) for r in rows) > 1e-3


def test_multilabel_and_bad_rotation(tmp_path):
    with pytest.raises(ValueError, match="rotation"):
        PredictionWriter(str(tmp_path / "p.csv"), "multi-class", rotations=[(0, 90, 1)])
    with pytest.raises(ValueError, match="task"):
        PredictionWriter(str(tmp_path / "p.csv"), "segmentation")
    net = SumNet()
    engine, batches = _engine(net, [torch.ones(1, 4, 4)], ["a.png"])
    engine._process_function = lambda e, b: [{"pred": torch.tensor([0.9, 0.1, 0.7])}]
    writer = PredictionWriter(str(tmp_path / "p.csv"), "multi-label, binary-class", ["x", "y", "z"])
    writer.attach(engine)
    engine.run(batches, max_epochs=1)
    (row,) = _read(tmp_path / "p.csv")
    assert row["pred"] == "101" and row["pred_name"] == "x;z"


def test_failed_volumes_get_an_error_row_and_all_failed_raises(tmp_path):
    images = [torch.ones(1, 4, 4, 4), torch.full((1, 4, 4, 4), float("nan")), torch.zeros(1, 4, 4, 4)]
    engine, batches = _engine(SumNet(), images, ["good.nii", "nan.nii", "corrupt.nii"])
    batches[2][0]["error"] = "EOFError: Compressed file ended"  # set by InferenceDataset
    out = tmp_path / "p.csv"
    PredictionWriter(str(out), "binary-class", ["neg", "pos"]).attach(engine)
    engine.run(batches, max_epochs=1)
    rows = {r["path"]: r for r in _read(out)}
    assert rows["good.nii"]["error"] == "" and rows["good.nii"]["pred"] == "0"
    assert rows["nan.nii"]["pred"] == rows["nan.nii"]["prob_neg"] == "" and "not finite" in rows["nan.nii"]["error"]
    assert rows["corrupt.nii"]["pred"] == "" and rows["corrupt.nii"]["error"].startswith("EOFError")

    engine, batches = _engine(SumNet(), images[1:], ["nan.nii", "corrupt.nii"])
    batches[1][0]["error"] = "EOFError: Compressed file ended"
    PredictionWriter(str(out), "binary-class", ["neg", "pos"]).attach(engine)
    with pytest.raises(RuntimeError, match="no volume could be predicted: all 2 failed"):
        engine.run(batches, max_epochs=1)
    assert [r["path"] for r in _read(out)] == ["nan.nii", "corrupt.nii"]  # the failures are still listed
