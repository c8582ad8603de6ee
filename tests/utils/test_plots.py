from __future__ import annotations

import io
import math

import pytest

from monai_sre.utils.plots import AXIS_LINESTYLES, plot_sweep, sweep_figure

ROWS = [
    {"kind": "original", "axis": None, "angle": 0.0, "acc": 0.9, "auc": 0.95},
    {"kind": "rotation", "axis": 0, "angle": 0.0, "acc": 0.9, "auc": 0.95},
    {"kind": "rotation", "axis": 0, "angle": 30.0, "acc": 0.7, "auc": 0.8},
    {"kind": "rotation", "axis": 1, "angle": 0.0, "acc": 0.9, "auc": 0.95},
    {"kind": "rotation", "axis": 1, "angle": 30.0, "acc": 0.6, "auc": 0.7},
    {"kind": "reflection", "axis": 0, "angle": None, "acc": 0.8, "auc": 0.9},
]
PANEL = {"title": "t", "series": [{"label": "sre", "views": ROWS}, {"label": "plain", "views": ROWS}],
         "levels": [{"value": {"acc": 0.9, "auc": 0.95}, "label": "original"}, {"value": math.nan, "label": "skipped"}]}


def _size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


def test_one_column_per_panel_and_one_row_per_metric():
    pytest.importorskip("PIL")
    one = plot_sweep([PANEL])
    wide = plot_sweep([PANEL, PANEL], ylabel="test accuracy (%)", scale=100.0)
    tall = plot_sweep([PANEL], metric=("acc", "auc"), ylabel=("accuracy", "AUC"))
    assert one[:8] == wide[:8] == tall[:8] == b"\x89PNG\r\n\x1a\n"
    (w1, h1), (w2, h2), (w3, h3) = _size(one), _size(wide), _size(tall)
    assert w2 > 1.8 * w1 and abs(h2 - h1) <= 2 and h3 > 1.5 * h1


def test_one_colour_per_model_one_line_style_per_axis():
    fig = sweep_figure([PANEL], metric=("acc", "auc"), ylabel=("accuracy", "AUC"))
    acc, auc = fig.axes
    for ax in (acc, auc):
        curves = [line for line in ax.get_lines() if line.get_marker() == "o"]  # not the levels
        assert len(curves) == 4  # 2 models x 2 axes
        colours = [line.get_color() for line in curves]
        styles = [line.get_linestyle() for line in curves]
        assert colours[0] == colours[1] != colours[2] == colours[3]  # a model keeps its colour over its axes
        assert styles[0] == styles[2] != styles[1] == styles[3]  # an axis keeps its style over the models
    assert [line.get_ydata()[-1] for line in auc.get_lines()[:2]] == [0.8, 0.7]  # the AUC row draws the AUC


def test_the_legend_is_outside_the_axes_and_names_models_axes_and_levels():
    fig = sweep_figure([PANEL], metric=("acc", "auc"), ylabel=("accuracy", "AUC"))
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    texts = [t.get_text() for t in legends[0].get_texts()]
    assert texts == ["sre", "plain", "axis 0", "axis 1", "original", "skipped"]
    box = legends[0].get_window_extent()
    assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)
    assert AXIS_LINESTYLES[0] != AXIS_LINESTYLES[1] != AXIS_LINESTYLES[2]


def test_metric_and_label_counts_must_match():
    with pytest.raises(ValueError, match="ylabel must give one label per metric"):
        sweep_figure([PANEL], metric=("acc", "auc"), ylabel="accuracy")
    with pytest.raises(ValueError, match="metric must be a non-empty string"):
        sweep_figure([PANEL], metric=())
