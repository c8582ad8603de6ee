"""Rank the reproduction's rows by K-fold cross-validation, paired image by image, without reading the test split.

``scripts/reproduce.py --cv K`` drives :func:`cross_validate`. For every dataset, seed and fold of a
class-stratified K-fold split of the training and validation images pooled (the bundles' ``fold`` / ``num_folds``,
:func:`monai_sre.data.cross_validation_folds`), every row of :data:`~monai_sre.experiments.reproduce.ROLES` trains on
the other folds (:func:`~monai_sre.experiments.select_settings.run_variant`, which resumes and never repeats a finished
run) and its best checkpoint is swept over the rotated and reflected views of the held-out fold. The TTA row evaluates
the ``baseline`` row's checkpoint of the same fold through ``evaluate_tta.json``. Every pooled image is then predicted
once per (row, seed), by a model that never saw it, and the sweep keeps each image's scores in every view
(``rotated_scores.npz``).

Rows are compared with the ``reference`` row (default ``sre``, the bundles' recipe) on the same images:

* **per image, pooled over folds** (the primary comparison): the difference in Orig. / Rot. / Ref. accuracy is the mean
  over images of the per-image difference (Rot. and Ref. per image are the share of its rotated / reflected views
  answered right); the AUC difference is between the AUCs of the pooled scores. 95 % intervals come from a paired
  bootstrap over images (the same resampled images for both rows; seeded, so the table is reproducible).
* **per fold**: the mean over (seed, fold) of each fold's difference with a paired-t 95 % interval
  (:func:`scipy.stats.t`), which also carries the variation between trainings but has only K - 1 degrees of freedom.

Over several datasets, the pooled line averages each row's per-dataset differences; its interval averages
bootstrap replicates drawn independently per dataset. The off-grid gap of a row is Orig. minus its mean accuracy over
the rotated views whose angle is not a multiple of 90 degrees: what interpolation costs it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_sre.experiments.reproduce import ROLES, _count_params, bundle_command, plan_runs, role_color, run_measured
from monai_sre.experiments.select_settings import run_variant
from monai_sre.utils.io import atomic_write
from monai_sre.utils.plots import plot_sweep

__all__ = ["COLUMNS", "auc", "compare", "cross_validate", "fold_network", "image_metrics", "load_fold", "plan_folds",
           "plot_curves", "to_markdown", "view_curves"]

logger = logging.getLogger(__name__)

COLUMNS = ("Orig.", "Rot.", "Ref.", "AUC")


def plan_folds(datasets: Sequence[str], folds: int | Mapping[str, int]) -> dict[str, int]:
    """The number of folds of each dataset: one ``K`` for all, or ``{dataset: K}`` naming every dataset.

    Raises:
        ValueError: a K below 2 or not an int, or a dataset without its K.
    """
    per = {d: folds for d in datasets} if not isinstance(folds, Mapping) else dict(folds)
    missing = [d for d in datasets if d not in per]
    if missing:
        raise ValueError(f"cv: no number of folds for {missing}; give one K or DATASET=K for every dataset.")
    for d in datasets:
        k = per[d]
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"cv: the number of folds of {d!r} must be an int >= 2, got {k!r}.")
    return {d: per[d] for d in datasets}


def auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One-vs-rest macro ROC AUC (MedMNIST's; ties count one half) along the last image axis.

    Args:
        scores: ``(..., n, C)`` per-image class scores (a leading axis holds bootstrap replicates).
        labels: ``(..., n, C)`` one-hot labels, broadcastable to ``scores``.

    Returns:
        ``(...)``: the mean over classes that have both positive and negative images of the Mann-Whitney AUC.
    """
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, dtype=np.float64), np.broadcast_to(np.asarray(labels) > 0.5, np.shape(scores))
    if scores.shape[-1] == 2:  # binary: both columns give the same AUC
        scores, labels = scores[..., 1:], labels[..., 1:]
    values = []
    for c in range(scores.shape[-1]):
        pos = labels[..., c]
        n_pos = pos.sum(-1)
        n_neg = pos.shape[-1] - n_pos
        ranks = rankdata(scores[..., c], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(((ranks * pos).sum(-1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
    return np.nanmean(np.stack(values), axis=0)


def image_metrics(scores: np.ndarray, labels: np.ndarray, views: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Per-image correctness of one sweep: ``Orig.`` (0/1), ``Rot.``, ``Rot. turned``, ``Ref.`` and ``off_grid``
    (share of the rotated views, of those whose angle is not a multiple of 360 degrees, of the reflected views and of
    the off-grid rotated views answered right), each ``(n,)``.

    Args:
        scores: ``(views, n, C)`` scores of :func:`~monai_sre.handlers.write_sweep`'s ``rotated_scores.npz``.
        labels: ``(n, C)`` one-hot labels.
        views: the sweep's view rows (``kind``, ``angle``), in the order of ``scores``.
    """
    correct = (scores.argmax(-1) == np.asarray(labels).argmax(-1)).astype(np.float64)
    kinds = [v["kind"] for v in views]
    off = [v["kind"] == "rotation" and float(v["angle"]) % 90.0 != 0.0 for v in views]
    turned = [v["kind"] == "rotation" and float(v["angle"]) % 360.0 != 0.0 for v in views]

    def share(mask: Sequence[bool]) -> np.ndarray:
        return correct[np.asarray(mask)].mean(0) if any(mask) else np.full(correct.shape[1], np.nan)

    return {"Orig.": correct[kinds.index("original")], "Rot.": share([k == "rotation" for k in kinds]),
            "Rot. turned": share(turned), "Ref.": share([k == "reflection" for k in kinds]), "off_grid": share(off)}


def load_fold(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The held-out sweep of one (row, seed, fold) run: per-image metrics, original-view scores, labels, summary.

    Raises:
        FileNotFoundError: the run has no ``rotated_val/rotated_scores.npz`` (swept before scores were kept: delete
            ``rotated_val`` and the ``rotated_val`` entry of its ``done.json`` and re-run to sweep it again).
    """
    sweep = Path(run_dir) / "rotated_val"
    path = sweep / "rotated_scores.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-image scores of the held-out fold; sweep the run again.")
    views = json.loads((sweep / "rotated.json").read_text())
    with np.load(path) as saved:
        scores, labels, names = saved["scores"], saved["labels"], list(saved["views"])
    if names != [v["name"] for v in views["views"]]:
        raise ValueError(f"{path}: its views differ from those of {sweep / 'rotated.json'}.")
    original = [v["kind"] for v in views["views"]].index("original")
    return {"images": image_metrics(scores, labels, views["views"]), "scores": scores[original], "labels": labels,
            "summary": views["summary"], "views": views["views"], "view_scores": scores}


def view_curves(seeds: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """A row's held-out accuracy and AUC in every view, each image predicted once per seed (the folds pooled), then
    averaged over seeds: the sweep's view rows (``name``, ``kind``, ``axis``, ``angle``) with ``acc``, ``auc``, ``n``.

    Args:
        seeds: per seed, the folds of :func:`load_fold`.
    """
    first = seeds[0][0]["views"]
    acc, area = [], []
    for folds in seeds:
        if any([v["name"] for v in f["views"]] != [v["name"] for v in first] for f in folds):
            raise ValueError("view_curves: the folds were swept over different views.")
        scores = np.concatenate([f["view_scores"] for f in folds], axis=1)  # (views, n, C)
        labels = np.concatenate([f["labels"] for f in folds])
        acc.append((scores.argmax(-1) == labels.argmax(-1)).mean(-1))
        area.append(auc(scores, labels))
    acc_mean, auc_mean = np.mean(acc, axis=0), np.mean(area, axis=0)
    keep = ("name", "kind", "axis", "angle")
    return [{**{k: v.get(k) for k in keep}, "acc": float(a), "auc": float(u), "n": int(labels.shape[0])}
            for v, a, u in zip(first, acc_mean, auc_mean)]


def fold_network(run_dir: str | os.PathLike, data_root: str | None, n: int = 32) -> tuple[Any, Any]:
    """The trained network of one (row, seed, fold) run in eval mode, and the first ``n`` images of its held-out fold.

    Built from the bundle with the settings the run recorded (``done.json``) and its best checkpoint.
    """
    import torch
    from ignite.handlers import Checkpoint
    from monai.utils import convert_to_tensor

    from monai_sre.checkpoint import read_checkpoint
    from monai_sre.experiments.reproduce import MODELS, _bundle_config

    run_dir = Path(run_dir)
    result = json.loads((run_dir / "done.json").read_text())
    dims = 3 if result["dataset"].endswith("3d") else 2
    run = {"bundle": MODELS[dims]["bundle"], "dataset": result["dataset"], "model": result["model"],
           "settings": {k: v for k, v in result["settings"].items() if "#" not in k}}
    parser = _bundle_config(run, (), data_root, 28)
    for key, value in result["settings"].items():
        if "#" in key:  # a path into a component (e.g. network_def#sre_kwargs)
            parser[key] = value
    parser["validate#split"] = "val"
    network = parser.get_parsed_content("network")
    Checkpoint.load_objects({"model": network}, read_checkpoint(run_dir / "models" / "model.pt", map_location="cpu"))
    data = parser.get_parsed_content("validate#dataset")
    x = torch.stack([convert_to_tensor(data[i]["image"], track_meta=False) for i in range(min(n, len(data)))])
    return network.eval(), x.float()


def _pooled(folds: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    return {"labels": np.concatenate([f["labels"] for f in folds]),
            "scores": np.concatenate([f["scores"] for f in folds]),
            **{k: np.concatenate([f["images"][k] for f in folds]) for k in folds[0]["images"]}}


def _row_stats(seeds: Sequence[Mapping[str, np.ndarray]], idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Columns of a row (averaged over its seeds) on the images ``idx`` (``(B, n)``; None: all images once)."""
    out: dict[str, list] = {c: [] for c in (*COLUMNS, "Rot. turned", "off_grid_gap")}
    for s in seeds:
        take = (lambda a: a) if idx is None else (lambda a: a[idx])
        for c in ("Orig.", "Rot.", "Rot. turned", "Ref."):
            out[c].append(np.nanmean(take(s[c]), axis=-1))
        out["off_grid_gap"].append(np.nanmean(take(s["Orig."]) - take(s["off_grid"]), axis=-1))
        out["AUC"].append(auc(take(s["scores"]), take(s["labels"])))
    return {c: np.mean(v, axis=0) for c, v in out.items()}


def _interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and paired-t interval of per-fold differences (NaN bounds for one pair)."""
    from scipy.stats import t

    values = [v for v in values if not math.isnan(v)]
    mean = float(np.mean(values)) if values else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.5 + level / 2, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def compare(rows: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], reference: str, n_boot: int = 2000,
            seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Columns of every row and their paired differences from ``reference`` on one dataset.

    Args:
        rows: ``{row: [[fold results of seed 0 (load_fold)], [... seed 1], ...]}``, folds and seeds in the same order
            for every row, so that the same images line up.
        reference: the row every other row is compared with.
        n_boot: bootstrap replicates (images resampled with replacement, the same for every row).
        seed: the bootstrap's random seed.
        level: the confidence level of the intervals.

    Returns:
        ``{"n_images", "rows": {row: {column: value}}, "diff": {row: {column: {"mean", "low", "high", "fold_mean",
        "fold_low", "fold_high"}}}, "replicates": {row: {column: (n_boot,) array}}}``: columns are :data:`COLUMNS`
        and ``off_grid_gap``; ``diff`` and ``replicates`` hold every row but the reference (row minus reference).

    Raises:
        ValueError: an unknown ``reference``, or rows whose pooled images disagree in number or labels.
    """
    if reference not in rows:
        raise ValueError(f"reference {reference!r} is not among the rows {sorted(rows)}.")
    pooled = {r: [_pooled(folds) for folds in seeds] for r, seeds in rows.items()}
    labels = pooled[reference][0]["labels"]
    for r, seeds in pooled.items():
        for s in seeds:
            if s["labels"].shape != labels.shape or not np.array_equal(s["labels"], labels):
                raise ValueError(f"row {r!r}: its held-out images are not those of {reference!r} (labels differ); "
                                 "rows must share folds, seeds and data.")
    n = labels.shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    point = {r: {c: float(v) for c, v in _row_stats(s).items()} for r, s in pooled.items()}
    boot = {r: _row_stats(s, idx) for r, s in pooled.items()}
    tail = 50.0 * (1.0 - level)
    diff, replicates = {}, {}
    for r in rows:
        if r == reference:
            continue
        diff[r], replicates[r] = {}, {}
        for c in (*COLUMNS, "off_grid_gap"):
            rep = boot[r][c] - boot[reference][c]
            per_fold = [_fold_value(a, c) - _fold_value(b, c)
                        for sa, sb in zip(rows[r], rows[reference]) for a, b in zip(sa, sb)]
            fold_mean, fold_low, fold_high = _interval(per_fold, level)
            diff[r][c] = {"mean": point[r][c] - point[reference][c], "low": float(np.nanpercentile(rep, tail)),
                          "high": float(np.nanpercentile(rep, 100.0 - tail)), "fold_mean": fold_mean,
                          "fold_low": fold_low, "fold_high": fold_high}
            replicates[r][c] = rep
    return {"n_images": int(n), "rows": point, "diff": diff, "replicates": replicates}


def _fold_value(fold: Mapping[str, Any], column: str) -> float:
    images = fold["images"]
    if column == "AUC":
        return float(auc(fold["scores"], fold["labels"]))
    if column == "off_grid_gap":
        return float(np.nanmean(images["Orig."] - images["off_grid"]))
    return float(np.nanmean(images[column]))


def pool_datasets(results: Mapping[str, Mapping[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """Each row's per-dataset differences averaged over the datasets that have it, with the interval of the averaged
    bootstrap replicates (drawn independently per dataset)."""
    tail = 50.0 * (1.0 - level)
    rows = sorted({r for res in results.values() for r in res["diff"]})
    out = {}
    for r in rows:
        have = [res for res in results.values() if r in res["diff"]]
        out[r] = {}
        for c in (*COLUMNS, "off_grid_gap"):
            rep = np.mean([res["replicates"][r][c] for res in have], axis=0)
            out[r][c] = {"mean": float(np.mean([res["diff"][r][c]["mean"] for res in have])),
                         "low": float(np.nanpercentile(rep, tail)), "high": float(np.nanpercentile(rep, 100 - tail)),
                         "datasets": len(have)}
    return out


def _tta_fold(run: dict, baseline_dir: Path, out: Path, seed: int, fold: int, num_folds: int, data_root: str | None,
              size: int) -> dict:
    """Sweep the ``baseline`` row's checkpoint of this fold through test-time augmentation on the held-out fold."""
    done = out / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    checkpoint = baseline_dir / "models" / "model.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"the TTA row evaluates {checkpoint}, which is not there: run the 'baseline' row.")
    settings = {**run["settings"], "fold": fold, "num_folds": num_folds, "ckpt_path": str(checkpoint),
                "validate#split": "val"}
    cmd = bundle_command({**run, "settings": settings}, "evaluating", run["evaluate"], out, data_root, seed, size)
    run_measured(cmd + ["--rotated_dir", str(out / "rotated_val")], out / "select.log")
    result = {"variant": run["role"], "model": run["model"], "settings": settings, "seed": seed, "fold": fold,
              "rotated_val": json.loads((out / "rotated_val" / "rotated.json").read_text())["summary"]}
    atomic_write(done, json.dumps(result, indent=2))
    return result


def _check_same_run(result: Mapping[str, Any], settings: Mapping[str, Any], where: Path) -> None:
    recorded = {k: v for k, v in result.get("settings", {}).items() if k != "ckpt_path"}
    expected = {k: v for k, v in settings.items() if k != "ckpt_path"}
    if recorded != expected:
        differ = sorted(k for k in recorded.keys() | expected.keys() if recorded.get(k) != expected.get(k))
        raise ValueError(f"{where}: a finished run with other settings ({', '.join(differ)}: "
                         f"{[recorded.get(k) for k in differ]} there, {[expected.get(k) for k in differ]} now); "
                         "use another --output_dir.")


def cross_validate(datasets: Sequence[str], output_dir: str | os.PathLike, folds: int | Mapping[str, int],
                   data_root: str | None = None, profile: str = "cpu", seeds: Sequence[int] = (0,), size: int = 28,
                   overrides: dict[str, Any] | None = None, roles: Sequence[str] = ROLES,
                   reference: str = "sre", n_boot: int = 2000, name: str = "cv") -> dict[str, Path]:
    """Train and sweep every (dataset, seed, fold, row) not done yet, compare the rows, write ``<name>.json``,
    ``<name>.md`` and ``<name>.png`` (:func:`plot_curves`) into ``output_dir``; return their paths.

    Runs go to ``output_dir/<dataset>/<row>/seed<s>_fold<k>/``; an interrupted call resumes. A finished run whose
    recorded settings (fold count included) differ from this call's is an error, never a silent mix.

    Raises:
        ValueError: bad ``folds``, ``roles`` or ``reference``; a finished run with other settings.
        FileNotFoundError: ``data_root`` is not a folder.
    """
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root {data_root!r} is not a folder (expected MedMNIST npz files there).")
    per_dataset = plan_folds(datasets, folds)
    roles = list(roles)
    if reference not in roles:
        raise ValueError(f"reference {reference!r} must be one of the rows run, {roles}.")
    output_dir = Path(output_dir)
    results, params, models = {}, {}, {}
    for dataset, k in per_dataset.items():
        runs = plan_runs([dataset], profile, overrides, roles)
        by_role = {r["role"]: r for r in runs}
        loaded: dict[str, list[list[dict]]] = {r["role"]: [] for r in runs}
        for seed in seeds:
            for r in runs:
                loaded[r["role"]].append([])
            for fold in range(k):
                for r in runs:
                    out = output_dir / dataset / r["role"] / f"seed{seed}_fold{fold}"
                    if r["reuses"]:
                        base = output_dir / dataset / by_role["baseline"]["role"] / f"seed{seed}_fold{fold}"
                        _tta_fold(r, base, out, seed, fold, k, data_root, size)
                    else:
                        settings = {**r["settings"], "fold": fold, "num_folds": k}
                        if (out / "done.json").is_file():
                            _check_same_run(json.loads((out / "done.json").read_text()), settings, out)
                        run_variant(r, r["role"], {}, seed, output_dir / dataset, data_root, size, rotated=True,
                                    fold=fold, num_folds=k)
                    loaded[r["role"]][-1].append(load_fold(out))
        results[dataset] = compare(loaded, reference, n_boot=n_boot)
        results[dataset]["folds"] = k
        results[dataset]["curves"] = {role: view_curves(seed_folds) for role, seed_folds in loaded.items()}
        params[dataset] = {r["role"]: _count_params(r, data_root, size) for r in runs}
        models[dataset] = {r["role"]: r["label"] for r in runs}
    pooled = pool_datasets(results) if len(results) > 1 else None
    document = {"profile": profile, "seeds": list(seeds), "reference": reference, "n_boot": n_boot,
                "datasets": {d: {k: v for k, v in res.items() if k != "replicates"} | {"params": params[d],
                                                                                      "labels": models[d]}
                             for d, res in results.items()},
                "pooled": pooled}
    paths = {"json": output_dir / f"{name}.json", "md": output_dir / f"{name}.md", "png": output_dir / f"{name}.png"}
    atomic_write(paths["json"], json.dumps(document, indent=2))
    atomic_write(paths["md"], to_markdown(document))
    atomic_write(paths["png"], plot_curves(document))
    return paths


def plot_curves(document: Mapping[str, Any]) -> bytes:
    """PNG of the held-out accuracy and AUC against rotation angle: one column per dataset, one colour per row (the
    same row has the same colour in every column), one line style per rotation axis, the legend outside the axes."""
    panels = [{"title": f"{dataset} ({res['folds']}-fold, held out)",
               "series": [{"label": res["labels"].get(role, role), "views": views,
                           "color": role_color(role)}
                          for role, views in res.get("curves", {}).items()]}
              for dataset, res in document["datasets"].items()]
    return plot_sweep(panels, metric=("acc", "auc"), ylabel=("accuracy (%)", "AUC (x100)"), scale=100.0)


def _pts(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{100 * x:+.1f}"


def _ci(d: Mapping[str, float], prefix: str = "") -> str:
    low, high = d[f"{prefix}low"], d[f"{prefix}high"]
    bounds = "" if math.isnan(low) else f" [{_pts(low)}, {_pts(high)}]"
    return _pts(d[f"{prefix}mean"]) + bounds


def to_markdown(document: Mapping[str, Any]) -> str:
    """The cross-validation tables: per dataset the rows' columns and paired differences, then the pooled line."""
    ref = document["reference"]
    seeds = ", ".join(map(str, document["seeds"]))
    lines = [f"Cross-validation on the training and validation images pooled (profile `{document['profile']}`, "
             f"seeds {seeds}); every image is predicted once per seed by a model that did not train on it. "
             f"Accuracy in %, AUC ×100, Δ in points against `{ref}` with a 95 % interval: paired bootstrap over "
             f"images ({document['n_boot']} replicates), then per fold (paired t).", ""]
    for dataset, res in document["datasets"].items():
        lines += [f"### {dataset} ({res['folds']}-fold, {res['n_images']} images)", "",
                  "| row | params | Orig. | Rot. | Rot. turned | Ref. | AUC | off-grid gap | Δ Orig. | Δ Rot. | Δ Ref. "
                  "| Δ AUC | Δ Rot. per fold | Δ Ref. per fold |", "|" + "---|" * 14]
        for row, values in res["rows"].items():
            cells = [f"{100 * values[c]:.1f}" if c in values else "—"
                     for c in ("Orig.", "Rot.", "Rot. turned", "Ref.", "AUC", "off_grid_gap")]
            d = res["diff"].get(row)
            deltas = ["(reference)"] + [""] * 5 if d is None else \
                [_ci(d[c]) for c in COLUMNS] + [_ci(d["Rot."], "fold_"), _ci(d["Ref."], "fold_")]
            params = res["params"].get(row)
            lines.append(f"| {res['labels'].get(row, row)} | {params / 1e6:.2f}M | " + " | ".join(cells + deltas)
                         + " |")
        lines.append("")
    if document.get("pooled"):
        lines += [f"### Pooled over {len(document['datasets'])} datasets (mean of the per-dataset Δ)", "",
                  "| row | Δ Orig. | Δ Rot. | Δ Ref. | Δ AUC | Δ off-grid gap |", "|---|---|---|---|---|---|"]
        for row, d in document["pooled"].items():
            lines.append(f"| {row} | " + " | ".join(_ci(d[c]) for c in (*COLUMNS, "off_grid_gap")) + " |")
        lines.append("")
    return "\n".join(lines)
