"""Plots of the experiments: metrics against rotation angle (:func:`plot_sweep`) and per-epoch curves (:func:`plot_lines`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["AXIS_LINESTYLES", "plot_sweep", "plot_lines", "sweep_figure"]


#: line style of each rotation axis (2D sweeps have one axis and draw it solid)
AXIS_LINESTYLES = {None: "-", 0: "-", 1: "--", 2: ":"}


def _axis_name(axis: int | None) -> str:
    return "rotation" if axis is None else f"axis {axis}"


def _as_list(value: str | Sequence[str], name: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ValueError(f"{name} must be a non-empty string or a non-empty sequence of them, got {value!r}.")
    return items


def _level_value(level: dict[str, Any], metric: str, first: bool) -> float:
    """A level's value for ``metric``: ``value`` is one number (the first metric's) or ``{metric: number}``."""
    value = level.get("value")
    if isinstance(value, dict):
        value = value.get(metric)
    elif not first:
        value = None
    return math.nan if value is None else float(value)


def sweep_figure(
    panels: Sequence[dict[str, Any]],
    metric: str | Sequence[str] = "acc",
    ylabel: str | Sequence[str] = "accuracy",
    scale: float = 1.0,
):
    """A matplotlib ``Figure`` of metrics against rotation angle: one column per entry of ``panels``, one row per
    metric.

    Each panel is a dict:

    * ``"title"``: the panel title;
    * ``"series"``: ``[{"label": str, "views": rows, "color": str}, ...]``, where ``rows`` are the per-view dicts of
      a sweep (``kind``, ``axis``, ``angle`` and the metrics); each series is one model and draws one line per
      rotation axis. A series has one colour (``color``, default the ``i``-th of matplotlib's cycle) and an axis one
      line style (:data:`AXIS_LINESTYLES`), in every panel and row;
    * ``"levels"`` (optional): horizontal lines ``{"value": float | {metric: float}, "label": str, "color": str,
      "linestyle": str}``, e.g. the original view's value; a plain number belongs to the first metric; NaN values
      are skipped.

    The legend, below each panel's bottom row and outside the axes, names the models by colour, the axes by line
    style and the levels. Values are multiplied by ``scale`` (100 for percentages); the y axis spans
    ``[0, 1.02 * scale]``.

    Args:
        panels: as above.
        metric: the key of the rows to draw, or several (one row of plots each), e.g. ``("acc", "auc")``.
        ylabel: the y-axis label of each metric (one, or one per metric).
        scale: factor of the values.

    Raises:
        ValueError: if ``metric`` or ``ylabel`` is empty, or their lengths differ.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metrics, ylabels = _as_list(metric, "metric"), _as_list(ylabel, "ylabel")
    if len(ylabels) != len(metrics):
        raise ValueError(f"ylabel must give one label per metric ({len(metrics)}), got {ylabel!r}.")
    columns, rows = max(len(panels), 1), len(metrics)
    fig = Figure(figsize=(6 * columns, 3.6 * rows + 1.2))
    for col, panel in enumerate(panels):
        series_list = panel.get("series", [])
        colors = [series.get("color") or f"C{i % 10}" for i, series in enumerate(series_list)]
        axes_seen: set = set()
        for row, (name, label) in enumerate(zip(metrics, ylabels)):
            ax = fig.add_subplot(rows, columns, row * columns + col + 1)
            for series, color in zip(series_list, colors):
                rot = [v for v in series["views"] if v["kind"] == "rotation"]
                for axis in sorted({v["axis"] for v in rot}, key=lambda a: -1 if a is None else a):
                    axes_seen.add(axis)
                    pts = sorted((v["angle"], scale * float("nan" if v.get(name) is None else v[name]))
                                 for v in rot if v["axis"] == axis)
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, color=color,
                            linestyle=AXIS_LINESTYLES.get(axis, "-."))
            for level in panel.get("levels", []):
                value = _level_value(level, name, row == 0)
                if not math.isnan(value):
                    ax.axhline(scale * value, color=level.get("color", "k"), linestyle=level.get("linestyle", "--"),
                               linewidth=1)
            ax.set_xlabel("rotation angle (degrees)")
            ax.set_ylabel(label)
            ax.set_ylim(0.0, 1.02 * scale)
            ax.set_title(panel.get("title", "") if row == 0 else "")
            ax.grid(alpha=0.3)
        handles = [Line2D([], [], color=c, label=s["label"]) for s, c in zip(series_list, colors) if s.get("label")]
        handles += [Line2D([], [], color="k", linestyle=AXIS_LINESTYLES.get(a, "-."), label=_axis_name(a))
                    for a in sorted(axes_seen, key=lambda a: -1 if a is None else a)]
        handles += [Line2D([], [], color=lv.get("color", "k"), linestyle=lv.get("linestyle", "--"), label=lv["label"])
                    for lv in panel.get("levels", [])]
        if handles:
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8,
                      frameon=False)
    fig.tight_layout()
    return fig


def plot_sweep(
    panels: Sequence[dict[str, Any]],
    metric: str | Sequence[str] = "acc",
    ylabel: str | Sequence[str] = "accuracy",
    scale: float = 1.0,
) -> bytes:
    """PNG (bytes) of :func:`sweep_figure`: metrics against rotation angle, one column per panel, one row per
    metric, the legend outside the axes.

    Example:
        >>> png = plot_sweep([{"title": "SRE-R3D-18", "series": [{"label": "", "views": rows}]}],
        ...                  metric=("acc", "auc"), ylabel=("accuracy", "AUC"))  # doctest: +SKIP
        >>> png[:4]  # doctest: +SKIP
        b'\\x89PNG'
    """
    fig = sweep_figure(panels, metric, ylabel, scale)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
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
