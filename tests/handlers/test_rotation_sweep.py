from __future__ import annotations

import csv
import json
import math
import os

import pytest
import torch
from ignite.engine import Engine
from monai.data import DataLoader

from monai_sre.handlers import RotationSweep, rotation_sweep, summarize_sweep, write_sweep
from monai_sre.transforms import make_views



class PooledNet(torch.nn.Module):
    """Rotation/flip-invariant classifier: per-channel global mean and max -> linear."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.fc = torch.nn.Linear(2, num_classes)

    def forward(self, x):
        flat = x.flatten(2)
        return self.fc(torch.cat([flat.mean(-1), flat.amax(-1)], dim=1))


class CornerNet(torch.nn.Module):
    """Not invariant: reads one corner voxel (and its mirror), so rotations change its output."""

    def forward(self, x):
        c = x.flatten(2)[..., 0]
        return torch.cat([c, -c], dim=1)


def _data(spatial_dims, n=8, size=16):
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        img = torch.rand((1,) + (size,) * spatial_dims, generator=g) * 0.1
        label = i % 2
        if label:  # a bright central blob: class 1 has a higher max and mean
            sl = (slice(None),) + (slice(size // 2 - 2, size // 2 + 2),) * spatial_dims
            img[sl] = 1.0
        items.append({"image": img, "label": torch.tensor([label])})
    return items


def test_invariant_net_exact_at_right_angles_and_flips():
    torch.manual_seed(0)
    net = PooledNet()
    with torch.no_grad():  # class 1 <=> larger max: a sensible fixed classifier
        net.fc.weight.copy_(torch.tensor([[0.0, -5.0], [0.0, 5.0]]))
        net.fc.bias.copy_(torch.tensor([2.5, -2.5]))
    loader = DataLoader(_data(3), batch_size=4)
    views = make_views(3, rotations=[(0, 90), (1, 180), (2, 270), (2, 30)])
    rows = rotation_sweep(net, loader, 3, "binary-class", views=views, backend="monai")
    by_name = {r["name"]: r for r in rows}
    assert by_name["original"]["acc"] == 1.0
    for name in ("rot_axis0_90", "rot_axis1_180", "rot_axis2_270", "flip_axis0", "flip_axis1", "flip_axis2"):
        assert by_name[name]["acc"] == by_name["original"]["acc"]
        assert by_name[name]["auc"] == by_name["original"]["auc"]
    summary = summarize_sweep(rows)
    assert summary["gap_ref"] == 0.0 and summary["n_rotations"] == 4 and summary["n_samples"] == 8


def test_turned_rotations_leave_out_the_views_that_are_the_original():
    rows = [{"kind": "original", "axis": None, "angle": 0.0, "acc": 0.9, "auc": 0.8, "n": 10}]
    rows += [{"kind": "rotation", "axis": 0, "angle": a, "acc": acc, "auc": 0.7, "n": 10}
             for a, acc in ((0.0, 0.9), (90.0, 0.6), (180.0, 0.3), (360.0, 0.9))]
    summary = summarize_sweep(rows)
    assert summary["Rot."] == pytest.approx(0.675) and summary["Rot. turned"] == pytest.approx(0.45)
    assert summary["n_rotations"] == 4 and summary["n_turned"] == 2


def test_non_invariant_net_shows_a_gap():
    loader = DataLoader(_data(2, n=16), batch_size=8)
    rows = rotation_sweep(CornerNet(), loader, 2, "binary-class", views=make_views(2, [(None, 90)], []))
    # the corner voxel of a rotated image is a different voxel: scores change, so AUC changes
    assert rows[0]["auc"] != rows[1]["auc"]


class VoxelWeightNet(torch.nn.Module):
    """Invariant to no voxel permutation: the score is a fixed random weight per voxel times the image. Voxels
    outside the central ball (where a rotation pads) have weight 0, so both back ends see the same voxels."""

    def __init__(self, shape):
        super().__init__()
        w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        centre = [(n - 1) / 2 for n in shape[1:]]
        grid = torch.meshgrid(*[torch.arange(n) - c for n, c in zip(shape[1:], centre)], indexing="ij")
        inside = sum(g**2 for g in grid) <= (min(shape[1:]) / 2 - 1.5) ** 2
        self.register_buffer("w", w * inside)

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1, keepdim=True)
        return torch.cat([-s, s], dim=1)


# fixed spatial axis -> dims of torch.rot90 that turn a (B, C, *spatial) batch by +90 degrees (README convention)
ROT90_DIMS = {(2, None): (2, 3), (3, 0): (3, 4), (3, 1): (2, 4), (3, 2): (2, 3)}


def _row(net, images, labels, spatial_dims):
    """The 'original' row of a sweep over ``images`` (already transformed by the test itself)."""
    loader = DataLoader([{"image": i, "label": y} for i, y in zip(images, labels)], batch_size=8)
    return rotation_sweep(net, loader, spatial_dims, "binary-class", views=make_views(spatial_dims, [], []))[0]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_both_backends_rotate_like_rot90_and_agree_off_grid(spatial_dims):
    size = 16 if spatial_dims == 2 else 10
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool3d(torch.rand(16, 1, *([size + 2] * 3), generator=g), 3, 1).squeeze(-1)
    x = x[..., 0] if spatial_dims == 2 else x  # smooth images: both back ends resample them alike
    x = x[:, :, :size, :size] if spatial_dims == 2 else x
    net = VoxelWeightNet(x.shape[1:])
    score = net(x)[:, 1]
    labels = (score > score.median()).long().unsqueeze(1)  # the original view has AUC 1
    axes = [None] if spatial_dims == 2 else [0, 1, 2]
    views = make_views(spatial_dims, [(a, t) for a in axes for t in (30, 90)], [])
    loader = DataLoader([{"image": i, "label": y} for i, y in zip(x, labels)], batch_size=8)
    rows = {b: {r["name"]: r for r in rotation_sweep(net, loader, spatial_dims, "binary-class", views=views,
                                                     backend=b)} for b in ("torchio", "monai")}
    for axis in axes:
        dims = ROT90_DIMS[(spatial_dims, axis)]
        plus, minus = (_row(net, torch.rot90(x, k, dims=dims), labels, spatial_dims) for k in (1, -1))
        assert plus["auc"] != minus["auc"]  # the data tell the two senses of rotation apart
        name = f"rot_{'' if axis is None else f'axis{axis}_'}"
        for backend in ("torchio", "monai"):
            assert rows[backend][name + "90"]["auc"] == plus["auc"], (backend, axis)
            assert rows[backend][name + "90"]["acc"] == plus["acc"], (backend, axis)
        assert rows["torchio"][name + "30"]["auc"] == rows["monai"][name + "30"]["auc"], axis
        assert rows["torchio"][name + "30"]["auc"] < 1.0  # the 30-degree view changed the scores


def test_write_sweep_outputs(tmp_path):
    rows = [
        {"kind": "original", "axis": None, "angle": 0.0, "name": "original", "acc": 0.9, "auc": 0.95, "n": 10},
        {"kind": "rotation", "axis": 0, "angle": 0.0, "name": "rot_axis0_0", "acc": 0.9, "auc": 0.95, "n": 10},
        {"kind": "rotation", "axis": 0, "angle": 30.0, "name": "rot_axis0_30", "acc": 0.7, "auc": 0.8, "n": 10},
        {"kind": "rotation", "axis": 1, "angle": 30.0, "name": "rot_axis1_30", "acc": 0.5, "auc": math.nan, "n": 10},
        {"kind": "reflection", "axis": 0, "angle": None, "name": "flip_axis0", "acc": 0.8, "auc": 0.9, "n": 10},
    ]
    paths = write_sweep(rows, str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["rotated.csv", "rotated.json", "rotated.png", "rotated_summary.csv"]
    with open(paths["csv"]) as f:
        assert [r["name"] for r in csv.DictReader(f)] == [r["name"] for r in rows]
    data = json.load(open(paths["json"]))
    assert data["summary"]["Orig."] == 0.9
    assert data["summary"]["Rot."] == pytest.approx(0.7)
    assert data["summary"]["Ref."] == pytest.approx(0.8)
    assert data["summary"]["gap_rot"] == pytest.approx(0.2)
    assert data["summary"]["worst_rot"] == 0.5
    assert data["views"][3]["auc"] is None  # NaN written as JSON null
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_handler_on_dummy_evaluator(tmp_path):
    net = PooledNet()
    engine = Engine(lambda e, b: None)
    engine.network = net
    engine.data_loader = DataLoader(_data(2), batch_size=4)
    handler = RotationSweep(str(tmp_path), 2, "binary-class", rotations=[(None, 0), (None, 90)], reflections=[1])
    handler.attach(engine)
    handler.attach(engine)
    engine.run([0], max_epochs=1)
    assert len(handler.results) == 4
    assert os.path.isfile(handler.paths["png"])
    assert set(handler.summary) >= {"Orig.", "Rot.", "Ref.", "gap_rot"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        RotationSweep("x", 4, "binary-class")
    with pytest.raises(ValueError, match="task"):
        RotationSweep("x", 2, "regression")
    with pytest.raises(ValueError, match="backend"):
        rotation_sweep(PooledNet(), [], 2, "binary-class", backend="scipy")
    with pytest.raises(ValueError, match="no batches"):
        rotation_sweep(PooledNet(), [], 2, "binary-class")
    with pytest.raises(ValueError, match="original"):
        summarize_sweep([])


class LogitsNet(torch.nn.Module):
    """Returns the first ``k`` voxels of the image as logits, so a test can choose every score."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.flatten(1)[:, : self.k]


# (task, number of outputs, labels of sample i, as a list): a fixed case per MedMNIST task type
METRIC_CASES = [
    ("binary-class", 2, lambda g, n: torch.randint(0, 2, (n, 1), generator=g)),
    ("multi-class", 4, lambda g, n: torch.randint(0, 4, (n, 1), generator=g)),
    ("ordinal-regression", 5, lambda g, n: torch.randint(0, 5, (n, 1), generator=g)),
    ("multi-label, binary-class", 3, lambda g, n: torch.randint(0, 2, (n, 3), generator=g)),
]


@pytest.mark.parametrize("task,k,make_labels", METRIC_CASES)
def test_accuracy_and_auc_equal_medmnist_evaluator(task, k, make_labels):
    evaluator = pytest.importorskip("medmnist.evaluator")
    g = torch.Generator().manual_seed(0)
    n = 40
    logits = torch.randn(n, k, generator=g) * 2
    labels = make_labels(g, n)
    images = torch.zeros(n, 1, 8, 8)
    images.view(n, -1)[:, :k] = logits
    loader = DataLoader([{"image": i, "label": y} for i, y in zip(images, labels)], batch_size=16)
    row = rotation_sweep(LogitsNet(k), loader, 2, task, views=make_views(2, [], []))[0]
    scores = torch.sigmoid(logits) if task.startswith("multi-label") else torch.softmax(logits, dim=1)
    y = labels.numpy() if task.startswith("multi-label") else labels.numpy().reshape(-1)
    assert row["n"] == n
    assert row["acc"] == pytest.approx(evaluator.getACC(y, scores.numpy(), task), abs=1e-12)
    assert row["auc"] == pytest.approx(evaluator.getAUC(y, scores.numpy(), task), abs=1e-12)


def test_per_sample_scores_reproduce_each_views_accuracy(tmp_path):
    """The scores file holds, per view, every sample's scores in the loader's order: their argmax against the stored
    labels gives that view's accuracy, and the labels are the loader's."""
    import numpy as np

    items = _data(2, n=10)
    rows = rotation_sweep(CornerNet(), DataLoader(items, batch_size=4), 2, "binary-class",
                          views=make_views(2, [(None, 0), (None, 30), (None, 90)], [0]))
    paths = write_sweep(rows, str(tmp_path))
    with np.load(paths["scores"]) as saved:
        assert list(saved["views"]) == [r["name"] for r in rows]
        assert saved["scores"].shape == (len(rows), 10, 2)
        assert saved["labels"].argmax(1).tolist() == [int(it["label"]) for it in items]
        for row, scores in zip(rows, saved["scores"]):
            assert (scores.argmax(1) == saved["labels"].argmax(1)).mean() == pytest.approx(row["acc"])
