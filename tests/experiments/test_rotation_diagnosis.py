"""Each probe applies one side effect of a rotation; finished runs are diagnosed on their own data and settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bundles"))
from bundle_utils import make_tiny_medmnist  # noqa: E402

from monai_sre.experiments.rotation_diagnosis import diagnose, diagnose_runs, probes, to_markdown  # noqa: E402


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_probes_apply_one_effect_each(spatial_dims):
    torch.manual_seed(0)
    x = torch.rand(2, 1, *([12] * spatial_dims))
    p = probes(spatial_dims, angles=(90.0, 45.0), sigmas=(0.7,))
    dims = (2, 3) if spatial_dims == 2 else (3, 4)
    assert torch.equal(p["original"](x), x)
    assert torch.equal(p["rot90"](x), torch.rot90(x, 1, dims=dims))  # a grid turn: nothing resampled
    assert torch.equal(p["round_trip90"](x), x) and torch.equal(p["corners90"](x), x)
    corners = p["corners45"](x)
    kept = corners != 0
    assert torch.equal(corners[kept], x[kept]) and 0 < (~kept).sum() < x.numel() / 2  # only corners are zeroed
    assert corners[(0, 0) + (0,) * spatial_dims] == 0 and corners[(0, 0) + (6,) * spatial_dims] == x[(0, 0) + (6,) * spatial_dims]
    blurred = p["blur0.7"](x)
    assert blurred.shape == x.shape and blurred.std() < x.std()  # smoothed, not turned
    trip = p["round_trip45"](x)
    assert not torch.equal(trip, x) and (trip - x).abs().mean() < 0.3


def test_3d_probes_turn_about_the_axis_asked_and_2d_takes_none():
    from monai_sre.transforms.rotation import rotate_batch

    x = torch.rand(1, 1, 8, 8, 8)
    turned = {a: probes(3, angles=(90.0,), axis=a)["rot90"](x) for a in (0, 1, 2)}
    for a in (0, 1, 2):
        assert torch.equal(turned[a], rotate_batch(x, 90.0, a))
    assert not torch.equal(turned[0], turned[1]) and not torch.equal(turned[1], turned[2])
    assert torch.equal(probes(3, angles=(90.0,))["rot90"](x), turned[0])  # axis 0 unless told otherwise
    with pytest.raises(ValueError, match="axis must be None"):
        probes(2, axis=0)


def test_diagnose_averages_the_turns_over_the_3d_axes():
    """Turn probes are the mean over the axes of the one-axis diagnoses; the original and the blurs run once."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10 ** 3, 2))
    images = torch.rand(24, 1, 10, 10, 10)
    labels = net(images).argmax(1)  # the net is right on every original, and orientation-sensitive
    per_axis = [diagnose(net, images, labels, 3, axes=(a,)) for a in (0, 1, 2)]
    both = diagnose(net, images, labels, 3)
    assert both["original"] == 100.0 and both.keys() == per_axis[0].keys()
    for name in both:
        if name == "original" or name.startswith("blur"):
            assert both[name] == per_axis[0][name] == per_axis[2][name]
        else:
            assert both[name] == pytest.approx(sum(p[name] for p in per_axis) / 3)
    assert len({p["rot45"] for p in per_axis}) > 1  # the axes do differ for this net, so the mean is not trivial
    with pytest.raises(ValueError, match="axes"):
        diagnose(net, images, labels, 3, axes=(3,))
    with pytest.raises(ValueError, match="axes"):
        diagnose(net, images[:, :, 0], labels, 2, axes=(0,))


def test_diagnose_a_corner_blind_mean_classifier():
    """A classifier of the mean intensity in the centre sees no turn, no corner, and (nearly) no blur."""

    class CentreMean(torch.nn.Module):
        def forward(self, x):
            m = x[:, :, 4:12, 4:12].mean((1, 2, 3))
            return torch.stack([0.5 - m, m - 0.5], 1)

    torch.manual_seed(0)
    labels = torch.tensor([0, 1] * 8)
    images = (0.3 + 0.4 * labels.float()).view(-1, 1, 1, 1) + 0.05 * torch.randn(16, 1, 16, 16)
    acc = diagnose(CentreMean(), images, labels, 2, batch_size=5)
    assert set(acc) >= {"original", "rot45", "round_trip45", "blur0.5", "corners45"}
    assert all(v == 100.0 for v in acc.values())


def test_runs_are_read_and_bad_run_dirs_named(tmp_path):
    from monai_sre.nets import get_model

    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    net = get_model("sre_resnet10", in_channels=1, num_classes=2, widths=[4, 4, 8, 8])
    torch.save(net.state_dict(), run / "models" / "model.pt")
    (run / "done.json").write_text(json.dumps({"model": "sre_resnet10", "dataset": "breastmnist",
                                               "settings": {"widths": [4, 4, 8, 8], "field_of_view": "ball"}}))
    rows = diagnose_runs([run], data_root=root)
    assert rows[0]["field_of_view"] == "ball" and rows[0]["original"] == rows[0]["corners45"]  # ball: no corners left
    table = to_markdown(rows)
    assert f"| {run} | {rows[0]['original']:.1f} |" in table and "| n_images" not in table and "`val`" in table
    with pytest.raises(FileNotFoundError, match="done.json"):
        diagnose_runs([tmp_path / "nowhere"], data_root=root)


def test_the_run_s_input_smoothing_is_rebuilt(tmp_path):
    """A run trained with ``input_smoothing`` is rebuilt with it (its state dict refuses any other sigma)."""
    from monai_sre.nets import get_model

    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    net = get_model("sre_resnet10", in_channels=1, num_classes=2, widths=[4, 4, 8, 8], input_smoothing=0.5)
    torch.save(net.state_dict(), run / "models" / "model.pt")
    (run / "done.json").write_text(json.dumps({"model": "sre_resnet10", "dataset": "breastmnist", "settings": {
        "widths": [4, 4, 8, 8], "input_smoothing": 0.5, "field_of_view": None}}))
    rows = diagnose_runs([run], data_root=root)
    assert rows[0]["input_smoothing"] == 0.5 and rows[0]["field_of_view"] is None
