"""The shared sweep: one evaluator run (one read of the data) per distinct view, any dict of Ignite metrics."""

from __future__ import annotations

import math

import torch
from ignite.metrics import Accuracy, Average

from monai_sre.handlers import ViewBatch, view_sweep, write_views
from monai_sre.transforms import make_views


class CountingLoader:
    """Two batches of 2D images; counts how often it is read."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.batches = [{"image": torch.rand(3, 1, 6, 6, generator=g), "label": torch.tensor([0, 1, 1])}
                        for _ in range(2)]
        self.reads = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.reads += 1
        return iter(self.batches)


class CornerLogits(torch.nn.Module):
    """Not rotation invariant: logits from the top-left pixel, so a 90 degree turn changes them."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([-4.0, 4.0]))

    def forward(self, x):
        return (x[:, :, 0, 0] - 0.5) * self.scale


def test_one_run_per_distinct_view_with_any_metrics(tmp_path):
    loader, net = CountingLoader(), CornerLogits().train()
    views = make_views(2, [(None, 90.0), (None, 360.0), (None, 0.0)], [0])
    def batch(output):  # the evaluator's decollated output: one dict per sample
        return torch.stack([o["pred"] for o in output]), torch.as_tensor([int(o["label"]) for o in output])

    def metrics():
        return {"acc": Accuracy(output_transform=batch),
                "mean_logit": Average(output_transform=lambda o: batch(o)[0][:, 1].mean())}

    rows = view_sweep(net, loader, views, lambda view: ViewBatch(view, backend="monai"), metrics)
    assert loader.reads == 3  # original (= 0 and 360 degrees), 90 degrees, the flip
    assert net.training  # the mode is restored
    names = [r["name"] for r in rows]
    assert names == ["original", "rot_90", "rot_360", "rot_0", "flip_axis0"] and all(r["n"] == 6 for r in rows)
    same = [r for r in rows if r["name"] in ("original", "rot_360", "rot_0")]
    assert all(r["acc"] == same[0]["acc"] and r["mean_logit"] == same[0]["mean_logit"] for r in same)
    assert rows[1]["mean_logit"] != rows[0]["mean_logit"]  # the corner net sees the turn
    summary = {"Orig.": rows[0]["acc"], "Rot.": math.nan}
    panels = [{"title": "t", "series": [{"label": "", "views": rows}]}]
    paths = write_views(rows, summary, str(tmp_path), "v", panels, metric="acc", ylabel="accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv", "v.json", "v.png", "v_summary.csv"]
    assert '"Rot.": null' in open(paths["json"]).read() and len(open(paths["csv"]).read().splitlines()) == 6
