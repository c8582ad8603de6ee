"""Reproduce the SRE-Conv paper's tables by driving the bundles.

For every dataset the SRE model and its baseline are trained with the bundle's ``training`` workflow, then evaluated
with the bundle's test and rotated/reflected overlays (``evaluate.json`` + ``evaluate_rotated.json``). Each run is a
``python -m monai.bundle run`` subprocess, so its peak memory is measured on its own and a run killed mid-way resumes
from the bundle's last checkpoint. A finished (dataset, model) pair leaves ``done.json`` and is not run again.

The aggregate is written as Markdown, CSV and JSON (paper-style table beside the paper's numbers, paired t-tests
across datasets with :func:`scipy.stats.ttest_rel`) plus a PNG of accuracy against rotation angle.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_sre.utils.io import atomic_write
from monai_sre.utils.plots import plot_sweep

from monai_sre.workflows import find_bundle_root

__all__ = [
    "PAPER_RESULTS",
    "PROFILES",
    "MODELS",
    "bundle_command",
    "mean_std",
    "plan_runs",
    "run_measured",
    "run_pair",
    "aggregate",
    "reproduce",
]

logger = logging.getLogger(__name__)

# The paper's numbers (Tables 1 and 2 of Du et al., ISBI 2025) for all 16 MedMNIST v2 tasks: test accuracy (%) on the
# original, rotated and reflected test sets (3D: no reflected column). Baselines: ResNet-18 (2D), R3D-18 (3D).
_PAPER_2D = {  # dataset: (R18 Orig., Rot., Ref.), (SRE-R18 Orig., Rot., Ref.)
    "pathmnist": ((89.5, 80.2, 89.4), (82.2, 82.9, 82.2)),
    "chestmnist": ((94.5, 94.3, 94.5), (94.8, 94.8, 94.8)),
    "dermamnist": ((78.8, 64.5, 74.7), (75.7, 75.3, 75.7)),
    "octmnist": ((76.4, 33.5, 51.6), (76.8, 52.2, 76.8)),
    "pneumoniamnist": ((93.3, 77.4, 73.1), (90.6, 90.2, 90.6)),
    "retinamnist": ((50.8, 48.3, 48.8), (52.3, 51.6, 52.3)),
    "breastmnist": ((87.8, 74.5, 75.3), (79.5, 80.4, 79.5)),
    "bloodmnist": ((95.8, 92.9, 95.8), (96.0, 95.9, 96.0)),
    "tissuemnist": ((69.0, 43.4, 63.9), (71.2, 55.6, 71.2)),
    "organamnist": ((93.3, 46.6, 53.1), (76.9, 71.5, 76.9)),
}
_PAPER_3D = {  # dataset: (R3D-18 Orig., Rot.), (SRE-R3D-18 Orig., Rot.)
    "organmnist3d": ((95.7, 56.1), (74.8, 65.2)),
    "nodulemnist3d": ((85.5, 84.6), (88.7, 88.3)),
    "adrenalmnist3d": ((76.9, 74.1), (84.2, 80.4)),
    "fracturemnist3d": ((54.6, 43.5), (58.8, 45.7)),
    "vesselmnist3d": ((97.6, 91.8), (92.9, 93.2)),
    "synapsemnist3d": ((75.6, 71.9), (84.1, 82.8)),
}
PAPER_RESULTS: dict[tuple[str, str], dict[str, Any]] = {}
for _ds, (_base, _sre) in _PAPER_2D.items():
    PAPER_RESULTS[(_ds, "baseline")] = dict(zip(("Orig.", "Rot.", "Ref."), _base), params="11.2M", model="ResNet-18")
    PAPER_RESULTS[(_ds, "sre")] = dict(zip(("Orig.", "Rot.", "Ref."), _sre), params="3.9M", model="SRE-R18")
for _ds, (_base, _sre) in _PAPER_3D.items():
    PAPER_RESULTS[(_ds, "baseline")] = {"Orig.": _base[0], "Rot.": _base[1], "Ref.": None, "params": "33.2M",
                                        "model": "R3D-18"}
    PAPER_RESULTS[(_ds, "sre")] = {"Orig.": _sre[0], "Rot.": _sre[1], "Ref.": None, "params": "2.6M",
                                   "model": "SRE-R3D-18"}

# (SRE model, baseline model) per spatial dimension, and the bundle that trains them.
MODELS: dict[int, dict[str, str]] = {
    2: {"sre": "sre_resnet18", "baseline": "resnet18", "bundle": "sre_r18"},
    3: {"sre": "sre_r3d_18", "baseline": "r3d_18", "bundle": "sre_r3d"},
}

# Training profiles. "cpu" is sized so that both datasets and both models finish within an hour on a 2-core CPU;
# "paper" is the paper's setting (full widths, 100 epochs, batch 4 in 3D and 128 in 2D) via the bundles'
# paper_profile.json overlay. The 2D learning rate of the CPU profile was picked on BreastMNIST *validation* accuracy
# of SRE-R18 (best val acc: 0.795 at lr 0.05, 0.756 at 0.02, 0.808 at 0.01), never on the test split. Its 60 epochs
# (30 before) were chosen by 5-fold cross-validation on BreastMNIST's training and validation images: +2.5 ± 1.2
# points on the mean of val Orig. and val Rot., paired by fold (scripts/select_settings.py --folds 5).
PROFILES: dict[str, dict[int, dict[str, Any]]] = {
    "cpu": {
        2: {"widths": [16, 32, 64, 128], "epochs": 60, "batch_size": 64, "learning_rate": 0.01},
        3: {"widths": [16, 32, 64, 128], "epochs": 15, "batch_size": 16, "learning_rate": 0.05},
    },
    "paper": {
        2: {"overlay": "paper_profile.json", "batch_size": 128},
        3: {"overlay": "paper_profile.json", "batch_size": 4},
    },
}

_SPATIAL_DIMS = {"breastmnist": 2, "adrenalmnist3d": 3}


def _spatial_dims(dataset: str) -> int:
    if dataset in _SPATIAL_DIMS:
        return _SPATIAL_DIMS[dataset]
    if dataset.endswith("3d"):
        return 3
    if dataset.endswith("mnist") or dataset.endswith("2d"):
        return 2
    raise ValueError(f"dataset {dataset!r}: cannot tell 2D from 3D; use a MedMNIST flag such as 'breastmnist'.")


def plan_runs(datasets: Sequence[str], profile: str = "cpu", overrides: dict[str, Any] | None = None
              ) -> list[dict[str, Any]]:
    """One entry per (dataset, role) with the bundle, model name and bundle overrides to use.

    ``overrides`` (e.g. ``{"epochs": 1}``) replace the profile's settings for every run.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
    if not datasets:
        raise ValueError("datasets must name at least one MedMNIST dataset.")
    runs = []
    for ds in datasets:
        dims = _spatial_dims(ds)
        for role in ("sre", "baseline"):
            runs.append({"dataset": ds, "role": role, "model": MODELS[dims][role], "bundle": MODELS[dims]["bundle"],
                         "spatial_dims": dims, "settings": {**PROFILES[profile][dims], **(overrides or {})}})
    return runs


def bundle_command(run: dict[str, Any], workflow: str, overlays: Sequence[str], out_dir: Path, data_root: str | None,
                    seed: int, size: int) -> list[str]:
    root = Path(find_bundle_root(run["bundle"]))
    configs = [str(root / "configs" / "train.json")]
    settings = dict(run["settings"])
    if "overlay" in settings:
        configs.append(str(root / "configs" / settings.pop("overlay")))
    configs += [str(root / "configs" / o) for o in overlays]
    cmd = [sys.executable, "-m", "monai.bundle", "run", workflow, "--config_file", json.dumps(configs),
           "--dataset", run["dataset"], "--network_name", run["model"], "--output_dir", str(out_dir),
           "--seed", str(seed), "--size", str(size), "--progress_bar", "False"]
    if data_root is not None:
        cmd += ["--data_root", str(data_root)]
    for key, value in settings.items():
        # `monai.bundle run` parses its arguments with Fire, which reads Python literals: JSON's null/true/false
        # would arrive as the strings "null"/"true"/"false", so values are written with repr(). MONAI drops
        # command-line overrides whose value is None, so None goes as the config expression "$None"
        cmd += [f"--{key}", "$None" if value is None else repr(value)]
    return cmd


def run_measured(cmd: list[str], log_path: Path) -> tuple[float, float]:
    """Run ``cmd``, appending its output to ``log_path``; return (seconds, peak RSS of the child in MB)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        # the cost model picks each SRE layer's algorithm without timing, so a seed gives the same run twice
        env = {**os.environ, "MONAI_SRE_AUTO_POLICY": os.environ.get("MONAI_SRE_AUTO_POLICY", "model")}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"command failed with exit code {proc.returncode}; see {log_path}:\n{' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024.0  # Linux reports kilobytes


def run_pair(run: dict[str, Any], output_dir: str | os.PathLike, data_root: str | None = None, seed: int = 0,
             size: int = 28) -> dict[str, Any]:
    """Train and evaluate one (dataset, model); return (and store in ``done.json``) its results.

    Already finished runs are read back from ``done.json``; a run killed mid-training resumes from its bundle
    checkpoint.
    """
    out = Path(output_dir) / f"{run['dataset']}_{run['model']}"
    done = out / "done.json"
    if done.is_file():
        logger.info("reproduce: %s %s already done, skipping.", run["dataset"], run["model"])
        return json.loads(done.read_text())
    log = out / "reproduce.log"
    logger.info("reproduce: training %s on %s (log: %s)", run["model"], run["dataset"], log)
    train_s, train_mb = run_measured(bundle_command(run, "training", [], out, data_root, seed, size), log)
    logger.info("reproduce: evaluating %s on %s (test + rotated + reflected)", run["model"], run["dataset"])
    eval_s, eval_mb = run_measured(
        bundle_command(run, "evaluating", ["evaluate.json", "evaluate_rotated.json"], out, data_root, seed, size), log
    )
    sweep = json.loads((out / "rotated" / "rotated.json").read_text())
    params = _count_params(run)
    diagnostics = {**_training_diagnostics(out / "history.json"), **_label_stats(run["dataset"], data_root, size)}
    result = {
        **{k: run[k] for k in ("dataset", "role", "model", "bundle", "spatial_dims", "settings")},
        "seed": seed,
        "size": size,
        "summary": sweep["summary"],
        "views": sweep["views"],
        "params": params,
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "peak_rss_mb_train": train_mb,
        "peak_rss_mb_eval": eval_mb,
        "diagnostics": diagnostics,
    }
    atomic_write(done, json.dumps(result, indent=2))
    return result


def _training_diagnostics(history_path: Path) -> dict[str, float | None]:
    """Final training loss and best validation accuracy from the bundle's ``history.json`` (EpochSummary)."""
    if not history_path.is_file():
        return {"final_train_loss": None, "best_val_acc": None}
    history = json.loads(history_path.read_text())["history"]
    accs = [h["val_acc"] for h in history if "val_acc" in h]
    return {"final_train_loss": history[-1]["loss"] if history else None, "best_val_acc": max(accs) if accs else None}


def _label_stats(dataset: str, data_root: str | None, size: int) -> dict[str, float | None]:
    """Majority-class share of the validation split and label entropy (nats) of the training split."""
    import numpy as np

    from monai_sre.data.medmnist import default_root, npz_name

    path = Path(data_root or default_root()) / npz_name(dataset, size)
    if not path.is_file():
        return {"majority_val": None, "entropy_train": None}
    with np.load(path) as npz:
        train, val = npz["train_labels"], npz["val_labels"]
    if train.ndim > 1 and train.shape[1] > 1:  # multi-label: no single majority class
        return {"majority_val": None, "entropy_train": None}
    counts = np.bincount(train.reshape(-1).astype(int))
    prior = counts[counts > 0] / counts.sum()
    return {"majority_val": float(np.bincount(val.reshape(-1).astype(int)).max() / val.size),
            "entropy_train": float(-(prior * np.log(prior)).sum())}


def learning_warnings(diagnostics: dict[str, Any] | None) -> list[str]:
    """Signs that a model did not learn: best validation accuracy at the majority-class share, or a final training
    loss above 0.9 times the majority-class entropy (what predicting the class prior scores)."""
    d = diagnostics or {}
    out = []
    if d.get("best_val_acc") is not None and d.get("majority_val") is not None \
            and abs(d["best_val_acc"] - d["majority_val"]) < 1e-6:
        out.append(f"best val acc {100 * d['best_val_acc']:.1f} = majority class")
    if d.get("final_train_loss") is not None and d.get("entropy_train") is not None \
            and d["final_train_loss"] > 0.9 * d["entropy_train"]:
        out.append(f"train loss {d['final_train_loss']:.3f} > 0.9 x prior entropy {d['entropy_train']:.3f}")
    return out


def _count_params(run: dict[str, Any]) -> int:
    from monai_sre.data import dataset_info
    from monai_sre.nets import get_model

    widths = run["settings"].get("widths")
    info = dataset_info(run["dataset"], root=os.environ.get("MONAI_SRE_DATA"))
    kwargs = {"in_channels": info["in_channels"], "num_classes": info["num_classes"]}
    if widths is not None:
        kwargs["widths"] = widths
    elif run["settings"].get("overlay"):
        kwargs["widths"] = [64, 128, 256, 512]
    net = get_model(run["model"], **kwargs)
    return int(sum(p.numel() for p in net.parameters()))


def _pct(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * x


def _ttests(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from scipy.stats import ttest_rel

    by = {(r["dataset"], r["role"]): r["summary"] for r in results}
    datasets = sorted({r["dataset"] for r in results})
    tests = []
    comparisons = [(f"SRE vs baseline, {c}", ("sre", c), ("baseline", c)) for c in ("Orig.", "Rot.", "Ref.")]
    comparisons += [("SRE Orig. vs SRE Rot.", ("sre", "Orig."), ("sre", "Rot.")),
                    ("baseline Orig. vs baseline Rot.", ("baseline", "Orig."), ("baseline", "Rot."))]
    for name, (ra, ca), (rb, cb) in comparisons:
        pairs = [(by[(d, ra)][ca], by[(d, rb)][cb]) for d in datasets if (d, ra) in by and (d, rb) in by]
        pairs = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
        row = {"comparison": name, "n_datasets": len(pairs), "mean_diff_pts": None, "t": None, "p": None}
        if pairs:
            row["mean_diff_pts"] = 100.0 * sum(a - b for a, b in pairs) / len(pairs)
        if len(pairs) >= 2:
            res = ttest_rel([a for a, _ in pairs], [b for _, b in pairs])
            t, p = float(res.statistic), float(res.pvalue)
            row["t"], row["p"] = (None if math.isnan(t) else t), (None if math.isnan(p) else p)
        tests.append(row)
    return tests


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
    return mean, std


def _fmt_ms(mean: float | None, std: float | None) -> str:
    return _fmt(mean) if std is None else f"{mean:.1f} ± {std:.1f}"


def _seed_means(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per (dataset, role) whose summary is the mean over seeds (for the paired t-tests)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["role"]), []).append(r)
    merged = []
    for (ds, role), rs in groups.items():
        summary = {c: mean_std([r["summary"][c] for r in rs])[0] for c in ("Orig.", "Rot.", "Ref.")}
        merged.append({"dataset": ds, "role": role, "summary": {k: math.nan if v is None else v for k, v in summary.items()}})
    return merged


def aggregate(results: list[dict[str, Any]], output_dir: str | os.PathLike, profile: str,
              elapsed: float | None = None) -> dict[str, Path]:
    """Write ``results.{md,csv,json}`` and ``curves.png`` under ``output_dir``; return their paths.

    ``results`` may hold several seeds per (dataset, model): the table then shows mean ± standard deviation over
    seeds, the t-tests use the per-dataset seed means, and the CSV keeps one row per seed.
    """
    out = Path(output_dir)
    per_seed = []
    for r in results:
        s, paper = r["summary"], PAPER_RESULTS.get((r["dataset"], r["role"]), {})
        per_seed.append({
            "dataset": r["dataset"], "model": r["model"], "role": r["role"], "seed": r.get("seed", 0),
            "Orig.": _pct(s["Orig."]), "Rot.": _pct(s["Rot."]),
            "Ref.": _pct(s["Ref."]), "gap_rot": _pct(s["gap_rot"]), "worst_rot": _pct(s["worst_rot"]),
            "AUC": s.get("auc_Orig."), "params": r["params"], "peak_rss_mb": round(r["peak_rss_mb_train"]),
            "train_min": r["train_seconds"] / 60.0, "eval_min": r["eval_seconds"] / 60.0,
            "paper_Orig.": paper.get("Orig."), "paper_Rot.": paper.get("Rot."), "paper_Ref.": paper.get("Ref."),
            "paper_params": paper.get("params"), "warnings": "; ".join(learning_warnings(r.get("diagnostics"))),
        })
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in per_seed:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    table = []
    for (ds, model), rows in groups.items():
        entry = {"dataset": ds, "model": model, "seeds": [r["seed"] for r in rows], **{
            k: rows[0][k] for k in ("params", "paper_Orig.", "paper_Rot.", "paper_Ref.", "paper_params")}}
        for col in ("Orig.", "Rot.", "Ref.", "gap_rot", "AUC", "train_min", "eval_min", "peak_rss_mb"):
            entry[col], entry[col + "_std"] = mean_std([r[col] for r in rows])
        entry["warnings"] = "; ".join(f"seed {r['seed']}: {r['warnings']}" for r in rows if r["warnings"])
        table.append(entry)
    tests = _ttests(_seed_means(results))
    paths = {k: out / f"results.{k}" for k in ("md", "csv", "json")}
    paths["png"] = out / "curves.png"

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(per_seed[0]) if per_seed else ["dataset"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(per_seed)
    atomic_write(paths["csv"], buf.getvalue())
    atomic_write(paths["json"], json.dumps({"profile": profile, "rows": table, "per_seed": per_seed, "ttests": tests,
                                             "elapsed_seconds": elapsed,
                                             "settings": {f"{r['dataset']}/{r['model']}": r["settings"]
                                                          for r in results}}, indent=2))
    seeds = sorted({r["seed"] for r in per_seed})
    lines = [f"Profile `{profile}`, seed(s) {', '.join(map(str, seeds))}"
             + (f" (mean ± std over {len(seeds)} seeds)" if len(seeds) > 1 else "")
             + (f", run time {elapsed / 60:.1f} min" if elapsed else "") + ".", "",
             "| dataset | model | Orig. | Rot. | Ref. | gap | params | peak RSS (MB) | train (min) |"
             " paper Orig. | paper Rot. | paper Ref. | paper params |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {_fmt_ms(row['Orig.'], row['Orig._std'])} |"
            f" {_fmt_ms(row['Rot.'], row['Rot._std'])} | {_fmt_ms(row['Ref.'], row['Ref._std'])} |"
            f" {_fmt(row['gap_rot'])} | {row['params'] / 1e6:.2f}M | {round(row['peak_rss_mb'])} | {row['train_min']:.1f} |"
            f" {_fmt(row['paper_Orig.'])} | {_fmt(row['paper_Rot.'])} | {_fmt(row['paper_Ref.'])} |"
            f" {row['paper_params'] or '—'} |"
        )
    warned = [row for row in table if row["warnings"]]
    if warned:
        lines += ["", "**Warning: these models may not have learned** (best validation accuracy at the majority-class"
                  " share, or final training loss above 0.9 × the majority-class entropy):", ""]
        lines += [f"- {row['dataset']} / {row['model']}: {row['warnings']}" for row in warned]
    lines += ["", "Paired t-tests across datasets (`scipy.stats.ttest_rel`, two-sided"
              + (", on the seed means" if len(seeds) > 1 else "") + "):", "",
              "| comparison | datasets | mean diff (pts) | t | p |", "|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['comparison']} | {t['n_datasets']} | {_fmt(t['mean_diff_pts'], 2)} | {_fmt(t['t'], 3)} |"
                     f" {_fmt(t['p'], 3)} |")
    atomic_write(paths["md"], "\n".join(lines) + "\n")
    _plot_curves([r for r in results if r.get("seed", 0) == seeds[0]] if seeds else results, paths["png"])
    return paths


def _plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    """Test accuracy against rotation angle: one panel per dataset, SRE solid and baseline dashed."""
    datasets = sorted({r["dataset"] for r in results})
    if not datasets:
        return
    panels = [{"title": ds, "series": [{"label": r["model"], "views": r["views"],
                                        "linestyle": "-" if r["role"] == "sre" else "--"}
                                       for r in results if r["dataset"] == ds]} for ds in datasets]
    atomic_write(path, plot_sweep(panels, ylabel="test accuracy (%)", scale=100.0))


def reproduce(datasets: Sequence[str], output_dir: str | os.PathLike, data_root: str | None = None,
              profile: str = "cpu", seeds: Sequence[int] | int = (0,), size: int = 28,
              overrides: dict[str, Any] | None = None) -> dict[str, Path]:
    """Train, evaluate and tabulate every (dataset, SRE/baseline) pair for every seed; resumable.

    Seed ``s`` runs under ``output_dir/seed<s>/``; the table (mean ± std over seeds) goes to ``output_dir``.
    Returns the output paths.
    """
    start = time.perf_counter()
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}.")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root {data_root!r} is not a folder (expected MedMNIST npz files there).")
    runs = plan_runs(datasets, profile, overrides)
    results = [run_pair(run, Path(output_dir) / f"seed{seed}", data_root, seed, size) for seed in seeds for run in runs]
    elapsed = sum(r["train_seconds"] + r["eval_seconds"] for r in results)
    logger.info("reproduce: all runs done in %.1f min of run time (%.1f min this call).", elapsed / 60,
                (time.perf_counter() - start) / 60)
    return aggregate(results, output_dir, profile, elapsed)
