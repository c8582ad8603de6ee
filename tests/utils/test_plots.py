from __future__ import annotations

import io
import math

import pytest

from monai_sre.utils import plot_sweep

ROWS = [
    {"kind": "original", "axis": None, "angle": 0.0, "acc": 0.9},
    {"kind": "rotation", "axis": 0, "angle": 0.0, "acc": 0.9},
    {"kind": "rotation", "axis": 0, "angle": 30.0, "acc": 0.7},
    {"kind": "rotation", "axis": 1, "angle": 30.0, "acc": 0.6},
    {"kind": "reflection", "axis": 0, "angle": None, "acc": 0.8},
]


def _size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


def test_one_panel_per_entry_side_by_side():
    pytest.importorskip("PIL")
    panel = {"title": "t", "series": [{"label": "sre", "views": ROWS}],
             "levels": [{"value": 0.9, "label": "original"}, {"value": math.nan, "label": "skipped"}]}
    one = plot_sweep([panel])
    two = plot_sweep([panel, {**panel, "series": [{"label": "base", "views": ROWS, "linestyle": "--"}]}],
                     ylabel="test accuracy (%)", scale=100.0)
    assert one[:8] == two[:8] == b"\x89PNG\r\n\x1a\n"
    (w1, h1), (w2, h2) = _size(one), _size(two)
    assert h1 == h2 and w2 == 2 * w1
