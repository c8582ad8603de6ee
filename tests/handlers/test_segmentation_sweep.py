from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events

from monai_sre.handlers import (
    SegmentationRotationSweep,
    dice_per_class,
    segmentation_sweep,
    summarize_segmentation_sweep,
    write_segmentation_sweep,
)
from monai_sre.handlers.rotation_sweep import make_views


class _Oracle(torch.nn.Module):
    """Reads the class off the image (image == label): exactly equivariant, like a perfect segmenter."""

    def forward(self, x):
        return F.one_hot(x[:, 0].round().long().clamp(0, 2), 3).movedim(-1, 1).float()


def _batches():
    torch.manual_seed(0)
    label = torch.zeros(2, 1, 12, 12, 12)
    label[:, :, 2:9, 3:6, 4:8] = 1
    label[:, :, 5:7, 7:11, 2:10] = 2
    return [{"image": label.clone(), "label": label}]


def test_dice_per_class():
    pred = torch.tensor([[0, 1, 1, 2]])
    label = torch.tensor([[0, 1, 2, 2]])
    d = dice_per_class(pred, label, 3)
    assert torch.allclose(d, torch.tensor([[2 / 3, 2 / 3]], dtype=torch.float64))
    assert math.isnan(dice_per_class(torch.zeros(1, 4), torch.zeros(1, 4), 2)[0, 0])
    with pytest.raises(ValueError, match="same number"):
        dice_per_class(torch.zeros(1, 4), torch.zeros(1, 5), 2)


def test_sweep_exact_at_grid_symmetries(tmp_path):
    views = make_views(3, [(0, 90), (2, 180), (1, 30)], [0, 2])
    rows = segmentation_sweep(_Oracle(), _batches(), 3, views=views)
    dice = {r["name"]: r["dice"] for r in rows}
    assert dice["original"] == dice["rot_axis0_90"] == dice["rot_axis2_180"] == dice["flip_axis0"] == 1.0
    assert 0.3 < dice["rot_axis1_30"] < 1.0  # interpolated image against nearest-neighbour label
    floor = {r["name"]: r["dice_floor"] for r in rows}
    assert floor["original"] == floor["rot_axis0_90"] == floor["flip_axis0"] == 1.0
    assert 0.5 < floor["rot_axis1_30"] < 1.0  # the label resampling alone costs Dice off the grid
    summary = summarize_segmentation_sweep(rows)
    assert summary["gap_rot90"] == 0.0 and summary["n_rotations"] == 3 and summary["n_reflections"] == 2
    assert summary["floor_gap_rot"] == pytest.approx((1.0 - floor["rot_axis1_30"]) / 3)
    # a network that returns its one-hot input rotated (the interpolated truth) loses nothing against that truth,
    # and exactly the floor against the nearest-neighbour label
    label = _batches()[0]["label"]
    onehot = F.one_hot(label[:, 0].long(), 3).movedim(-1, 1).float()
    soft = segmentation_sweep(torch.nn.Identity(), [{"image": onehot, "label": label}], 3, views=views)
    assert all(r["dice_resampled"] == 1.0 for r in soft)
    assert [r["dice"] for r in soft] == [r["dice_floor"] for r in soft]
    assert summarize_segmentation_sweep(soft)["gap_rot_resampled"] == 0.0
    paths = write_segmentation_sweep(rows, str(tmp_path))
    assert all(open(p, "rb").read() for p in paths.values())


def test_handler_attaches_once_and_writes(tmp_path):
    engine = Engine(lambda e, b: None)
    engine.network, engine.data_loader = _Oracle(), _batches()
    sweep = SegmentationRotationSweep(str(tmp_path), num_classes=3, rotations=[(0, 90)], reflections=[])
    sweep.attach(engine)
    sweep.attach(engine)
    assert sum(1 for h, *_ in engine._event_handlers[Events.COMPLETED] if h is sweep) == 1
    engine.run([0], max_epochs=1)
    assert sweep.summary["Orig."] == 1.0 and (tmp_path / "rotated.csv").is_file()
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationRotationSweep(str(tmp_path), num_classes=1)
    with pytest.raises(ValueError, match="backend"):
        SegmentationRotationSweep(str(tmp_path), num_classes=3, backend="scipy")
