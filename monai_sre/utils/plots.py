"""Plots of the experiments: a metric against rotation angle (:func:`plot_sweep`) and per-epoch curves (:func:`plot_lines`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_sweep", "plot_lines"]


def _line_label(series_label: str, axis: int | None) -> str:
    if not series_label:
        return "rotation" if axis is None else f"axis {axis}"
    return series_label if axis is None else f"{series_label} (axis {axis})"


def plot_sweep(
    panels: Sequence[dict[str, Any]], metric: str = "acc", ylabel: str = "accuracy", scale: float = 1.0
) -> bytes:
    """PNG (bytes) of ``metric`` against rotation angle: one panel per entry of ``panels``, side by side.

    Each panel is a dict:

    * ``"title"``: the panel title;
    * ``"series"``: ``[{"label": str, "views": rows, "linestyle": "-"}, ...]``, where ``rows`` are the per-view
      dicts of a sweep (``kind``, ``axis``, ``angle``, ``metric``); each series draws one line per rotation axis,
      labelled ``label (axis k)`` (or ``axis k`` / ``rotation`` when ``label`` is empty);
    * ``"levels"`` (optional): horizontal lines ``{"value": float, "label": str, "color": str, "linestyle": str}``,
      e.g. the original view's value; NaN values are skipped.

    Values are multiplied by ``scale`` (100 for percentages); the y axis spans ``[0, 1.02 * scale]``.

    Example:
        >>> png = plot_sweep([{"title": "SRE-R3D-18", "series": [{"label": "", "views": rows}]}])  # doctest: +SKIP
        >>> png[:4]  # doctest: +SKIP
        b'\\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * max(len(panels), 1), 4))
    for index, panel in enumerate(panels, start=1):
        ax = fig.add_subplot(1, max(len(panels), 1), index)
        for series in panel.get("series", []):
            rot = [v for v in series["views"] if v["kind"] == "rotation"]
            for axis in sorted({v["axis"] for v in rot}, key=lambda a: -1 if a is None else a):
                pts = sorted((v["angle"], scale * v[metric]) for v in rot if v["axis"] == axis)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4,
                        linestyle=series.get("linestyle", "-"), label=_line_label(series.get("label", ""), axis))
        for level in panel.get("levels", []):
            if not math.isnan(level["value"]):
                ax.axhline(scale * level["value"], color=level.get("color", "k"), linestyle=level.get("linestyle", "--"),
                           linewidth=1, label=level["label"])
        ax.set_xlabel("rotation angle (degrees)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0.0, 1.02 * scale)
        ax.set_title(panel.get("title", ""))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_lines(panels: Sequence[dict[str, Any]], xlabel: str, ylabel: str, log_y: bool = False) -> bytes:
    """PNG (bytes) of plain curves, one panel per entry of ``panels``, side by side.

    Each panel is ``{"title": str, "series": [{"label": str, "x": [...], "y": [...], "linestyle": "-"}, ...]}``; a
    series with no points is skipped. ``log_y`` draws the y axis on a log scale (e.g. training losses).

    Example:
        >>> png = plot_lines([{"title": "a", "series": [{"label": "loss", "x": [1, 2], "y": [0.7, 0.5]}]}],
        ...                  "epoch", "training loss")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * max(len(panels), 1), 4))
    for index, panel in enumerate(panels, start=1):
        ax = fig.add_subplot(1, max(len(panels), 1), index)
        for series in panel.get("series", []):
            if len(series["x"]):
                ax.plot(series["x"], series["y"], linestyle=series.get("linestyle", "-"), label=series.get("label", ""))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(panel.get("title", ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
