from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.metrics import DiceMetric

from monai_sre.handlers import (
    SegmentationRotationSweep,
    segmentation_dice,
    segmentation_sweep,
    summarize_segmentation_sweep,
    write_segmentation_sweep,
)
from monai_sre.transforms import make_views
from monai_sre.handlers.segmentation_sweep import DiceOutput

VIEWS = make_views(3, [(0, 90), (2, 180), (1, 30)], [0, 2])
ON_GRID = ("original", "rot_axis0_90", "rot_axis2_180", "flip_axis0", "flip_axis2")


class _Oracle(torch.nn.Module):
    """Reads the class off the image (image == label): exactly equivariant, like a perfect segmenter."""

    def forward(self, x):
        return F.one_hot(x[:, 0].round().long().clamp(0, 2), 3).movedim(-1, 1).float()


def _label(n=2, size=12):
    label = torch.zeros(n, 1, size, size, size)
    label[:, :, 2:9, 3:6, 4:8] = 1
    label[:, :, 5:7, 7:11, 2:10] = 2
    return label


def _onehot(label):
    return F.one_hot(label[:, 0].long(), 3).movedim(-1, 1).float()


def test_every_dice_is_monais_dice_metric_scoring_empty_targets():
    metric = segmentation_dice(3)
    assert isinstance(metric, DiceMetric) and metric.ignore_empty is False and metric.include_background is False
    # volume 1 has no plate in its label but one plate voxel in the prediction (its image): Dice 0 for that class,
    # not left out; volume 0 is perfect
    label = _label()
    label[1][label[1] == 2] = 0
    image = label.clone()
    image[1, 0, 0, 0, 0] = 2
    rows = segmentation_sweep(_Oracle(), [{"image": image, "label": label}], 3, views=make_views(3, [], []))
    assert rows[0]["dice_1"] == 1.0 and rows[0]["dice_2"] == pytest.approx(0.5)
    assert rows[0]["dice"] == pytest.approx(0.75) and rows[0]["consistency"] == 1.0 and rows[0]["n"] == 2
    # a class absent from both prediction and target agrees
    label[0][label[0] == 2] = 0
    rows = segmentation_sweep(_Oracle(), [{"image": label, "label": label}], 3, views=make_views(3, [], []))
    assert rows[0]["dice_2"] == 1.0


def test_exactly_rotated_perfect_prediction_scores_one_against_the_resampled_truth():
    """A map that returns its one-hot input rotates exactly like the resampled truth (linear, then argmax)."""
    label = _label()
    rows = segmentation_sweep(torch.nn.Identity(), [{"image": _onehot(label), "label": label}], 3, views=VIEWS)
    assert all(r["dice"] == 1.0 for r in rows)
    assert [r["dice_nearest"] for r in rows] == [r["dice_floor"] for r in rows]  # only the labels differ
    by_name = {r["name"]: r for r in rows}
    assert 0.5 < by_name["rot_axis1_30"]["dice_floor"] < 1.0  # nearest-neighbour labels lose Dice off the grid
    assert all(by_name[n]["dice_floor"] == 1.0 for n in ON_GRID)
    summary = summarize_segmentation_sweep(rows)
    assert summary["gap_rot"] == 0.0 and summary["gap_rot90"] == 0.0
    assert summary["floor_gap_offgrid"] == pytest.approx(1.0 - by_name["rot_axis1_30"]["dice_floor"])
    assert summary["floor_gap_rot"] == pytest.approx(summary["floor_gap_offgrid"] / 3)
    assert summary["gap_rot_nearest"] == pytest.approx(summary["floor_gap_rot"])


def _sre_unet():
    from monai_sre.nets import get_segmentation_model

    torch.manual_seed(0)
    return get_segmentation_model("sre_unet", spatial_dims=3, in_channels=1, out_channels=3, features=[4, 4, 8, 4])


def test_consistency_of_an_exactly_equivariant_network_is_one_on_the_grid():
    torch.manual_seed(1)
    data = [{"image": torch.rand(2, 1, 16, 16, 16), "label": F.pad(_label(), (2, 2, 2, 2, 2, 2))}]
    rows = {r["name"]: r for r in segmentation_sweep(_sre_unet(), data, 3, views=VIEWS)}
    for name in ON_GRID:
        assert rows[name]["consistency"] == 1.0, name
        assert rows[name]["dice"] == rows["original"]["dice"] and rows[name]["dice_nearest"] == rows[name]["dice"]
    assert rows["rot_axis1_30"]["consistency"] < 1.0  # interpolated input: only approximately equivariant
    # a network without the grid's symmetry is caught by the consistency, with no label involved
    torch.manual_seed(0)
    plain = torch.nn.Conv3d(1, 3, 3, padding=1)
    rows = {r["name"]: r for r in segmentation_sweep(plain, data, 3, views=VIEWS)}
    assert rows["original"]["consistency"] == 1.0 and rows["rot_axis0_90"]["consistency"] < 0.99


def test_reference_prediction_is_computed_once_per_batch():
    calls = []

    class Counting(_Oracle):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    label = _label()
    segmentation_sweep(Counting(), [{"image": label, "label": label}], 3, views=VIEWS)
    distinct = len({v.name for v in VIEWS})
    assert len(calls) == distinct + 1  # one forward per view, plus the original once for the reference


def test_dice_output_refuses_unknown_targets():
    with pytest.raises(ValueError, match="target and prediction must be one of"):
        DiceOutput("truth")
    with pytest.raises(ValueError, match="num_classes"):
        segmentation_sweep(_Oracle(), [{"image": _label(), "label": _label()}], 1)


def test_handler_attaches_once_and_writes(tmp_path):
    engine = Engine(lambda e, b: None)
    label = _label()
    engine.network, engine.data_loader = _Oracle(), [{"image": label, "label": label}]
    sweep = SegmentationRotationSweep(str(tmp_path), num_classes=3, rotations=[(0, 90), (1, 30)], reflections=[])
    sweep.attach(engine)
    sweep.attach(engine)
    assert sum(1 for h, *_ in engine._event_handlers[Events.COMPLETED] if h is sweep) == 1
    engine.run([0], max_epochs=1)
    s = sweep.summary
    assert s["Orig."] == 1.0 and s["consistency_rot90"] == 1.0 and s["n_offgrid"] == 1
    assert 0.0 < s["gap_rot_nearest"] and 0.0 < s["floor_gap_offgrid"]
    header = (tmp_path / "rotated.csv").read_text().splitlines()[0].split(",")
    assert {"dice", "dice_nearest", "consistency", "dice_floor", "dice_1", "dice_2"} <= set(header)
    assert (tmp_path / "rotated.png").stat().st_size > 0 and (tmp_path / "rotated_summary.csv").is_file()
    paths = write_segmentation_sweep(sweep.results, str(tmp_path / "again"), prefix="x")
    assert sorted(p.rsplit("/", 1)[1] for p in paths.values()) == ["x.csv", "x.json", "x.png", "x_summary.csv"]
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationRotationSweep(str(tmp_path), num_classes=1)
    with pytest.raises(ValueError, match="backend"):
        SegmentationRotationSweep(str(tmp_path), num_classes=3, backend="scipy")
