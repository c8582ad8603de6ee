"""Reproduce the SRE-Conv paper's tables by driving the bundles, beside what one would use instead of SRE.

For every dataset five rows can be run (``roles``):

* ``sre``: the SRE model; ``baseline``: the plain model of the same layout (the paper's two rows, trained without
  rotations);
* ``sre_rotaug`` / ``baseline_rotaug``: the same two models trained with random rotations by arbitrary angles
  (``rotate_augment``);
* ``baseline_tta``: the plain ``baseline`` checkpoint, not retrained, evaluated through test-time augmentation over
  the grid rotations (``configs/evaluate_tta.json``, :class:`monai_sre.utils.GridTTA`).

Each trained row runs the bundle's ``training`` workflow, then every row is evaluated with the bundle's test and
rotated/reflected overlays (``evaluate.json`` + ``evaluate_rotated.json``). Each run is a ``python -m monai.bundle
run`` subprocess, so its peak memory is measured on its own and a run killed mid-way resumes from the bundle's last
checkpoint. A finished (dataset, role) leaves ``done.json`` and is not run again. Inference time per volume is
measured afterwards in this one process, every row side by side.

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
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from monai_sre.blocks import time_calls
from monai_sre.utils.io import atomic_write
from monai_sre.utils.plots import plot_lines, plot_sweep
from monai_sre.workflows import find_bundle_root

__all__ = [
    "PAPER_RESULTS",
    "PROFILES",
    "MODELS",
    "ROLES",
    "EXTRA_ROLES",
    "bundle_command",
    "learning_flags",
    "mean_std",
    "measure_inference",
    "plan_runs",
    "role_color",
    "run_measured",
    "run_pair",
    "aggregate",
    "reproduce",
]

logger = logging.getLogger(__name__)

def _paper_results() -> dict[tuple[str, str], dict[str, Any]]:
    """The paper's numbers (``paper_results.json``: Tables 1 and 2 of Du et al., ISBI 2025) by (dataset, role)."""
    data = json.loads((Path(__file__).with_name("paper_results.json")).read_text())
    out = {}
    for dataset, entry in data["accuracy"].items():
        for role in ("baseline", "sre"):
            values = dict.fromkeys(data["columns"]) | dict(zip(data["columns"], entry[role]))
            out[(dataset, role)] = {**values, **data["models"][str(entry["dims"])][role]}
    return out


PAPER_RESULTS = _paper_results()

# (SRE model, baseline model) per spatial dimension, and the bundle that trains them.
MODELS: dict[int, dict[str, str]] = {
    2: {"sre": "sre_resnet18", "baseline": "plain_resnet18", "bundle": "sre_r18"},
    3: {"sre": "sre_r3d_18", "baseline": "r3d_18", "bundle": "sre_r3d"},
}

# Training profiles. "cpu" trains every model to convergence by the bundles' rule (learning rate divided by 5 when the
# epoch's mean training loss stops falling, the run ends at the plateau after the second reduction, `epochs` the
# maximum); "paper" is the paper's fixed setting (full widths, 100 epochs of cosine, batch 4 in 3D and 128 in 2D) via
# the bundles' paper_profile.json overlay. The CPU profile's learning rates and batch sizes were chosen on validation
# data only (docs/experiments.md); the stopping rule is the same for every model and dataset.
PROFILES: dict[str, dict[int, dict[str, Any]]] = {
    "cpu": {
        2: {"widths": [16, 32, 64, 128], "epochs": 100, "batch_size": 64, "learning_rate": 0.01},
        3: {"widths": [16, 32, 64, 128], "epochs": 100, "batch_size": 16, "learning_rate": 0.05},
    },
    "paper": {
        2: {"overlay": "paper_profile.json", "batch_size": 128},
        3: {"overlay": "paper_profile.json", "batch_size": 4},
    },
}

# The rows of the table besides the paper's two. Per role: which network of MODELS it uses ("model"), the bundle
# settings it adds ("settings"), its folder suffix and table label, its evaluation overlays ("evaluate"), the folder
# its rotated sweep writes to ("sweep"), and the role whose trained checkpoint it evaluates instead of training its own
# ("reuses").
ROLES = ("sre", "sre_rotaug", "baseline", "baseline_rotaug", "baseline_tta")
#: rows run only when asked for: ``sre_strided``, the SRE model with the strided stem (3D only; the 2D models have no
#: stem downsampling), and ``sre_gaussian``, the SRE model with Gaussian-ring kernels (``SREConv(profile="gaussian")``),
#: both trained as ``sre``
EXTRA_ROLES = ("sre_strided", "sre_gaussian")
_EVALUATE = ("evaluate.json", "evaluate_rotated.json")
# Every trained row sets ``rotate_augment`` itself, so a row means the same recipe whatever the bundle's default is.
_ROLE_SPECS: dict[str, dict[str, Any]] = {
    "sre": {"model": "sre", "settings": {"rotate_augment": False}},
    "sre_rotaug": {"model": "sre", "settings": {"rotate_augment": True}, "suffix": "_rotaug", "label": " + rot. aug."},
    "baseline": {"model": "baseline", "settings": {"rotate_augment": False}},
    "baseline_rotaug": {"model": "baseline", "settings": {"rotate_augment": True}, "suffix": "_rotaug",
                        "label": " + rot. aug."},
    "baseline_tta": {"model": "baseline", "settings": {"rotate_augment": False}, "suffix": "_tta", "label": " + TTA",
                     "evaluate": _EVALUATE + ("evaluate_tta.json",), "sweep": "rotated_tta", "reuses": "baseline"},
    "sre_strided": {"model": "sre", "network": {3: "sre_r3d_18_strided"}, "settings": {"rotate_augment": False}},
    "sre_gaussian": {"model": "sre", "settings": {"rotate_augment": False, "sre_kwargs": {"profile": "gaussian"}},
                     "suffix": "_gaussian", "label": " + Gaussian rings"},
}
_LINESTYLES = {"sre": "-", "sre_rotaug": (0, (5, 1)), "baseline": "--", "baseline_rotaug": ":",
               "baseline_tta": "-."}
_SPATIAL_DIMS = {"breastmnist": 2, "adrenalmnist3d": 3}


def _spatial_dims(dataset: str) -> int:
    if dataset in _SPATIAL_DIMS:
        return _SPATIAL_DIMS[dataset]
    if dataset.endswith("3d"):
        return 3
    if dataset.endswith("mnist") or dataset.endswith("2d"):
        return 2
    raise ValueError(f"dataset {dataset!r}: cannot tell 2D from 3D; use a MedMNIST flag such as 'breastmnist'.")


def role_color(role: str) -> str | None:
    """The matplotlib colour of a row in every figure (``C0``... by its place in :data:`ROLES`); None for the rows
    asked for, which take the next colour of the cycle."""
    return f"C{ROLES.index(role) % 10}" if role in ROLES else None


def _role_network(role: str, spatial_dims: int) -> str | None:
    """The registry name that ``role`` trains for data of ``spatial_dims``; None where the role does not apply."""
    spec = _ROLE_SPECS[role]
    if "network" in spec:
        return spec["network"].get(spatial_dims)
    return MODELS[spatial_dims][spec["model"]]


def _run_name(dataset: str, spatial_dims: int, role: str) -> str:
    return f"{dataset}_{_role_network(role, spatial_dims)}{_ROLE_SPECS[role].get('suffix', '')}"


def plan_runs(datasets: Sequence[str], profile: str = "cpu", overrides: dict[str, Any] | None = None,
              roles: Sequence[str] = ROLES) -> list[dict[str, Any]]:
    """One entry per (dataset, role) with the bundle, model name and bundle overrides to use.

    ``overrides`` (e.g. ``{"epochs": 1}``) replace the profile's settings for every run; a role's own settings
    (``rotate_augment`` of ``baseline_rotaug``) come last. Roles run in the order of :data:`ROLES`, so a row that
    evaluates another row's checkpoint comes after it. Besides the bundle's settings an entry holds ``name`` (its
    output folder), ``label`` (its table row), ``evaluate`` (its evaluation overlays), ``sweep`` (the folder of its
    rotated sweep) and ``reuses`` (the ``name`` of the run whose checkpoint it evaluates, or None: it trains).

    Raises:
        ValueError: for an unknown ``profile`` or role, no dataset, or a dataset that is neither 2D nor 3D.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
    if not datasets:
        raise ValueError("datasets must name at least one MedMNIST dataset.")
    roles = [roles] if isinstance(roles, str) else list(roles)
    if not roles or any(r not in ROLES + EXTRA_ROLES for r in roles):
        raise ValueError(f"roles must be a non-empty subset of {ROLES + EXTRA_ROLES}, got {roles!r}.")
    runs = []
    for ds in datasets:
        dims = _spatial_dims(ds)
        for role in (r for r in ROLES + EXTRA_ROLES if r in roles):
            spec = _ROLE_SPECS[role]
            model = _role_network(role, dims)
            if model is None:  # a row for other data (the strided stem of the 3D model)
                continue
            runs.append({
                "dataset": ds, "role": role, "model": model, "bundle": MODELS[dims]["bundle"], "spatial_dims": dims,
                "settings": {**PROFILES[profile][dims], **(overrides or {}), **spec.get("settings", {})},
                "name": _run_name(ds, dims, role), "label": model + spec.get("label", ""),
                "evaluate": list(spec.get("evaluate", _EVALUATE)), "sweep": spec.get("sweep", "rotated"),
                "reuses": _run_name(ds, dims, spec["reuses"]) if "reuses" in spec else None,
            })
    return runs


def _config_files(run: dict[str, Any], overlays: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """The bundle config files of ``run`` (``train.json``, the profile's overlay, ``overlays``) and the settings
    left to pass as overrides."""
    root = Path(find_bundle_root(run["bundle"])) / "configs"
    settings = dict(run["settings"])
    configs = [root / "train.json"]
    if "overlay" in settings:
        configs.append(root / settings.pop("overlay"))
    configs += [root / o for o in overlays]
    return [str(c) for c in configs], settings


def bundle_command(run: dict[str, Any], workflow: str, overlays: Sequence[str], out_dir: Path, data_root: str | None,
                   seed: int, size: int) -> list[str]:
    """The ``python -m monai.bundle run`` command line of ``workflow`` for ``run``, with ``overlays`` on top."""
    configs, settings = _config_files(run, overlays)
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


def _bundle_config(run: dict[str, Any], overlays: Sequence[str], data_root: str | None, size: int):
    """The bundle's :class:`~monai.bundle.ConfigParser` as :func:`bundle_command` would set it up (same files, same
    overrides), for building its objects in this process."""
    from monai.bundle import ConfigParser

    configs, settings = _config_files(run, overlays)
    parser = ConfigParser()
    parser.read_config(configs)
    for key, value in {"dataset": run["dataset"], "network_name": run["model"], "data_root": data_root, "size": size,
                       **settings}.items():
        parser[key] = value
    return parser


def run_measured(cmd: list[str], log_path: Path) -> tuple[float, float]:
    """Run ``cmd``, appending its output to ``log_path``; return (seconds, peak RSS of the child in MB)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"command failed with exit code {proc.returncode}; see {log_path}:\n{' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024.0  # Linux reports kilobytes


def run_pair(run: dict[str, Any], output_dir: str | os.PathLike, data_root: str | None = None, seed: int = 0,
             size: int = 28) -> dict[str, Any]:
    """Train (unless the row evaluates another run's checkpoint) and evaluate one (dataset, role); return (and store
    in ``done.json``) its results.

    Already finished runs are read back from ``done.json``; a run killed mid-training resumes from its bundle
    checkpoint. A row that ``reuses`` another run (the TTA row) evaluates that run's ``models/model.pt`` under its own
    folder; its training time, peak training memory and history are that run's (``train_shared_with``).

    Raises:
        FileNotFoundError: if the checkpoint a reusing row evaluates is not there (its row has not been run).
        RuntimeError: if a bundle command fails (the message names its log).
    """
    name = run.get("name") or f"{run['dataset']}_{run['model']}"
    out = Path(output_dir) / name
    done = out / "done.json"
    if done.is_file():
        logger.info("reproduce: %s %s already done, skipping.", run["dataset"], name)
        result = json.loads(done.read_text())
        for key, value in (("name", name), ("label", run.get("label", run["model"])),
                           ("checkpoint", str(out / "models" / "model.pt"))):
            result.setdefault(key, value)  # done.json files written before these fields
        return result
    log = out / "reproduce.log"
    reuses = run.get("reuses")
    trained = Path(output_dir) / reuses if reuses else out
    checkpoint = trained / "models" / "model.pt"
    eval_run = run
    if reuses:
        if not checkpoint.is_file():
            raise FileNotFoundError(
                f"the {run['role']} row of {run['dataset']} evaluates the checkpoint {checkpoint}, which is not there: "
                f"run the row that trains it ({reuses}) first (e.g. add 'baseline' to the rows)."
            )
        shared = json.loads((trained / "done.json").read_text()) if (trained / "done.json").is_file() else {}
        train_s, train_mb = shared.get("train_seconds"), shared.get("peak_rss_mb_train")
        eval_run = {**run, "settings": {**run["settings"], "ckpt_path": str(checkpoint)}}
    else:
        logger.info("reproduce: training %s on %s (log: %s)", name, run["dataset"], log)
        train_s, train_mb = run_measured(bundle_command(run, "training", [], out, data_root, seed, size), log)
    logger.info("reproduce: evaluating %s on %s (test + rotated + reflected)", name, run["dataset"])
    overlays = run.get("evaluate", _EVALUATE)
    eval_s, eval_mb = run_measured(bundle_command(eval_run, "evaluating", overlays, out, data_root, seed, size), log)
    sweep = json.loads((out / run.get("sweep", "rotated") / "rotated.json").read_text())
    diagnostics = {**_training_diagnostics(trained / "history.json"), **_label_stats(run["dataset"], data_root, size)}
    result = {
        **{k: run[k] for k in ("dataset", "role", "model", "bundle", "spatial_dims", "settings")},
        "name": name,
        "label": run.get("label", run["model"]),
        "evaluate": list(overlays),
        "seed": seed,
        "size": size,
        "summary": sweep["summary"],
        "views": sweep["views"],
        "params": _count_params(run, data_root, size),
        "checkpoint": str(checkpoint),
        "train_seconds": train_s,
        "train_shared_with": reuses,
        "eval_seconds": eval_s,
        "peak_rss_mb_train": train_mb,
        "peak_rss_mb_eval": eval_mb,
        "diagnostics": diagnostics,
    }
    atomic_write(done, json.dumps(result, indent=2))
    return result


def _training_diagnostics(history_path: Path) -> dict[str, Any]:
    """Final training loss, best validation accuracy, epochs trained and how training stopped, from the bundle's
    ``history.json`` (EpochSummary).

    ``epochs_run`` falls back to the number of epoch records and ``stopped`` (``"converged"`` or ``"max_epochs"``) to
    None for a history written without them.
    """
    if not history_path.is_file():
        return {"final_train_loss": None, "best_val_acc": None, "epochs_run": None, "stopped": None}
    data = json.loads(history_path.read_text())
    history = data["history"]
    accs = [h["val_acc"] for h in history if "val_acc" in h]
    return {"final_train_loss": history[-1]["loss"] if history else None, "best_val_acc": max(accs) if accs else None,
            "epochs_run": data.get("epochs_run", len(history)), "stopped": data.get("stopped")}


def _label_stats(dataset: str, data_root: str | None, size: int) -> dict[str, float | None]:
    """Majority-class share of the test split and label entropy (nats) of the training split; None for multi-label
    tasks and for datasets without a label array."""
    import numpy as np

    from monai_sre.data import get_dataset

    labels = {}
    for split in ("train", "test"):
        found = getattr(get_dataset(dataset, split, root=data_root, size=size), "labels", None)
        if found is None or (np.ndim(found) > 1 and np.shape(found)[1] > 1):
            return {"majority_test": None, "entropy_train": None}
        labels[split] = np.asarray(found).reshape(-1).astype(int)
    counts = np.bincount(labels["train"])
    prior = counts[counts > 0] / counts.sum()
    return {"majority_test": float(np.bincount(labels["test"]).max() / labels["test"].size),
            "entropy_train": float(-(prior * np.log(prior)).sum())}


def learning_flags(result: dict[str, Any], baseline_loss: float | None = None) -> list[str]:
    """Signs that a model did not learn, as short sentences (empty when there are none).

    * its test accuracy (Orig.) is at or below the majority-class share of the test split (what always answering the
      most frequent class scores);
    * its final training loss is more than 3 x ``baseline_loss``, the final training loss of the plain baseline on
      the same dataset and seed;
    * its final training loss is above 0.9 x the entropy of the training labels (what predicting the class prior
      scores).
    """
    d = result.get("diagnostics") or {}
    acc, loss, majority = result["summary"].get("Orig."), d.get("final_train_loss"), d.get("majority_test")
    out = []
    if acc is not None and majority is not None and acc <= majority + 1e-9:
        out.append(f"test acc {100 * acc:.1f} <= majority-class share {100 * majority:.1f}")
    if loss is not None and baseline_loss is not None and loss > 3.0 * baseline_loss:
        out.append(f"train loss {loss:.3f} > 3 x the plain baseline's {baseline_loss:.3f}")
    if loss is not None and d.get("entropy_train") is not None and loss > 0.9 * d["entropy_train"]:
        out.append(f"train loss {loss:.3f} > 0.9 x prior entropy {d['entropy_train']:.3f}")
    return out


def _count_params(run: dict[str, Any], data_root: str | None, size: int) -> int:
    net = _bundle_config(run, [], data_root, size).get_parsed_content("network_def")
    return int(sum(p.numel() for p in net.parameters()))


def _evaluated_network(result: dict[str, Any], data_root: str | None) -> tuple[torch.nn.Module, torch.Tensor]:
    """The network a result's evaluation ran (TTA rows: wrapped by ``evaluate_tta.json``) with its trained weights, in
    eval mode, and the first evaluation batch of the test split as its input."""
    from ignite.handlers import Checkpoint
    from monai.utils import convert_to_tensor

    from monai_sre.checkpoint import read_checkpoint

    overlays = result.get("evaluate") or _ROLE_SPECS[result["role"]].get("evaluate", _EVALUATE)
    parser = _bundle_config(result, overlays, data_root, result.get("size", 28))
    parser["validate#split"] = "test"
    device = parser.get_parsed_content("device")
    Checkpoint.load_objects({"model": parser.get_parsed_content("network")},
                            read_checkpoint(result["checkpoint"], map_location=device))
    network = parser.get_parsed_content("validate#evaluator#network").eval()  # shares the weights just loaded
    data = parser.get_parsed_content("validate#dataset")
    batch = min(int(parser.get_parsed_content("batch_size")), len(data))
    x = torch.stack([convert_to_tensor(data[i]["image"], track_meta=False) for i in range(batch)])
    return network, x.to(device=device, dtype=torch.float32)


def measure_inference(results: Sequence[dict[str, Any]], data_root: str | None = None, repeats: int = 5,
                      warmup: int = 1) -> dict[tuple[str, str], dict[str, Any]]:
    """Milliseconds per volume of every (dataset, role)'s trained network, timed side by side in this process.

    For each (dataset, role) the network of its lowest seed is built from the bundle configs its evaluation used
    (TTA rows through :class:`~monai_sre.utils.GridTTA`) with its checkpoint, in eval mode; its input is the first
    evaluation batch (the bundle's ``batch_size``) of test images. The networks are called under ``torch.no_grad``
    round-robin (:func:`monai_sre.blocks.time_calls`, wall clock, ``warmup`` untimed rounds), so a load spike on a
    shared machine hits every row alike. Timings depend on the machine and its load: report them, never assert on
    them.

    Returns:
        ``{(dataset, role): {"ms_per_volume", "batch", "threads", "device", "repeats", "seed"}}``: the median of
        ``repeats`` calls divided by the batch size. A row whose checkpoint is gone is left out (with a warning).
    """
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r.get("seed", 0)):
        first.setdefault((r["dataset"], r["role"]), r)
    if not first:
        return {}
    loaded = {}
    for key, r in first.items():
        try:
            loaded[key] = _evaluated_network(r, data_root)
        except FileNotFoundError as err:  # e.g. a finished run whose checkpoint was deleted since
            logger.warning("reproduce: no inference time for %s: %s", "/".join(key), err)
    if not loaded:
        return {}
    device = next(iter(loaded.values()))[1].device

    def forward(network: torch.nn.Module, x: torch.Tensor):
        def call() -> None:
            with torch.no_grad():
                network(x)

        return call

    names = {key: "/".join(key) for key in loaded}
    times = time_calls({names[k]: forward(*v) for k, v in loaded.items()}, device, warmup, repeats, clock="wall")
    return {key: {"ms_per_volume": 1000.0 * statistics.median(times[names[key]]) / x.shape[0], "batch": x.shape[0],
                  "threads": torch.get_num_threads(), "device": str(device), "repeats": repeats,
                  "seed": first[key].get("seed", 0)}
            for key, (_, x) in loaded.items()}


def _pct(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * x


def _ttests(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from scipy.stats import ttest_rel

    by = {(r["dataset"], r["role"]): r["summary"] for r in results}
    datasets = sorted({r["dataset"] for r in results})
    tests = []
    comparisons = [(f"SRE vs baseline, {c}", ("sre", c), ("baseline", c)) for c in ("Orig.", "Rot.", "Ref.")]
    comparisons += [(f"SRE + rot. aug. vs baseline + rot. aug., {c}", ("sre_rotaug", c), ("baseline_rotaug", c))
                    for c in ("Orig.", "Rot.", "Ref.")]
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


def _fmt_count(x: float | None) -> str:
    return "—" if x is None else (str(int(x)) if float(x).is_integer() else f"{x:.1f}")


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
    return mean, std


def _fmt_ms(mean: float | None, std: float | None) -> str:
    return _fmt(mean) if std is None else f"{mean:.1f} ± {std:.1f}"


def _stopped(values: list[str | None]) -> str | None:
    """How the seeds of a row stopped: one value, or each value with its count when they differ."""
    counts = Counter(v for v in values if v is not None)
    if len(counts) <= 1:
        return next(iter(counts), None)
    return ", ".join(f"{v} ×{n}" for v, n in sorted(counts.items()))


def _seed_means(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per (dataset, role) whose summary is the mean over seeds (for the paired t-tests)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["role"]), []).append(r)
    merged = []
    for (ds, role), rs in groups.items():
        summary = {c: mean_std([r["summary"][c] for r in rs])[0] for c in ("Orig.", "Rot.", "Ref.")}
        summary = {k: math.nan if v is None else v for k, v in summary.items()}
        merged.append({"dataset": ds, "role": role, "summary": summary})
    return merged


def _per_seed_row(r: dict[str, Any], baseline_loss: float | None) -> dict[str, Any]:
    s, d, timing = r["summary"], r.get("diagnostics") or {}, r.get("inference") or {}
    paper = PAPER_RESULTS.get((r["dataset"], r["role"]), {})
    return {
        "dataset": r["dataset"], "model": r["model"], "role": r["role"], "label": r.get("label", r["model"]),
        "seed": r.get("seed", 0), "Orig.": _pct(s["Orig."]), "Rot.": _pct(s["Rot."]), "Ref.": _pct(s["Ref."]),
        "Rot. turned": _pct(s.get("Rot. turned")), "gap_rot": _pct(s["gap_rot"]), "worst_rot": _pct(s["worst_rot"]),
        "AUC_Orig.": s.get("auc_Orig."), "AUC_Rot.": s.get("auc_Rot."), "params": r["params"],
        "epochs": d.get("epochs_run"), "stopped": d.get("stopped"),
        "train_min": None if r.get("train_seconds") is None else r["train_seconds"] / 60.0,
        "train_shared_with": r.get("train_shared_with"), "eval_min": r["eval_seconds"] / 60.0,
        "infer_ms": timing.get("ms_per_volume"), "infer_batch": timing.get("batch"),
        "infer_threads": timing.get("threads"),
        "peak_rss_mb": None if r.get("peak_rss_mb_train") is None else round(r["peak_rss_mb_train"]),
        "paper_Orig.": paper.get("Orig."), "paper_Rot.": paper.get("Rot."), "paper_Ref.": paper.get("Ref."),
        "paper_params": paper.get("params"), "flags": "; ".join(learning_flags(r, baseline_loss)),
    }


_MEANS = ("Orig.", "Rot.", "Rot. turned", "Ref.", "gap_rot", "AUC_Orig.", "AUC_Rot.", "epochs", "train_min", "eval_min", "infer_ms",
          "peak_rss_mb")


def aggregate(results: list[dict[str, Any]], output_dir: str | os.PathLike, profile: str,
              elapsed: float | None = None) -> dict[str, Path]:
    """Write ``results.{md,csv,json}``, ``curves.png`` (test accuracy against rotation angle) and
    ``training_curves.png`` (training loss per epoch of every trained row) under ``output_dir``; return their paths.

    ``results`` may hold several seeds per (dataset, role): the table then shows mean ± standard deviation over
    seeds, the t-tests use the per-dataset seed means, and the CSV keeps one row per seed. Results carrying an
    ``"inference"`` entry (:func:`measure_inference`) fill the inference-time column.
    """
    out = Path(output_dir)
    baseline_loss = {(r["dataset"], r.get("seed", 0)): (r.get("diagnostics") or {}).get("final_train_loss")
                     for r in results if r["role"] == "baseline"}
    per_seed = [_per_seed_row(r, None if r["role"] == "baseline" else
                              baseline_loss.get((r["dataset"], r.get("seed", 0)))) for r in results]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in per_seed:
        groups.setdefault((row["dataset"], row["role"]), []).append(row)
    table = []
    for (ds, role), rows in groups.items():
        entry = {"dataset": ds, "role": role, "seeds": [r["seed"] for r in rows], **{
            k: rows[0][k] for k in ("model", "label", "params", "train_shared_with", "infer_batch", "infer_threads",
                                    "paper_Orig.", "paper_Rot.", "paper_Ref.", "paper_params")}}
        for col in _MEANS:
            entry[col], entry[col + "_std"] = mean_std([r[col] for r in rows])
        entry["stopped"] = _stopped([r["stopped"] for r in rows])
        entry["flags"] = "; ".join(f"seed {r['seed']}: {r['flags']}" for r in rows if r["flags"])
        table.append(entry)
    tests = _ttests(_seed_means(results))
    paths = {k: out / f"results.{k}" for k in ("md", "csv", "json")}
    paths["png"] = out / "curves.png"
    paths["training_png"] = out / "training_curves.png"
    curves = _training_curves(results)

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(per_seed[0]) if per_seed else ["dataset"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(per_seed)
    atomic_write(paths["csv"], buf.getvalue())
    timings = {f"{r['dataset']}/{r['role']}": r["inference"] for r in results if r.get("inference")}
    atomic_write(paths["json"], json.dumps({"profile": profile, "rows": table, "per_seed": per_seed, "ttests": tests,
                                             "elapsed_seconds": elapsed, "inference": timings,
                                             "training_curves": curves,
                                             "settings": {f"{r['dataset']}/{r['role']}": r["settings"]
                                                          for r in results}}, indent=2))
    seeds = sorted({r["seed"] for r in per_seed})
    atomic_write(paths["md"], _markdown(table, tests, profile, seeds, elapsed, timings))
    _plot_curves([r for r in results if r.get("seed", 0) == seeds[0]] if seeds else results, paths["png"])
    _plot_training(results, curves, seeds[0] if seeds else 0, paths["training_png"])
    return paths


def _training_curves(results: list[dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Per trained row and seed (``"<dataset>/<role>/seed<s>"``), the per-epoch ``loss``, ``lr`` and ``val_loss`` of its
    bundle's ``history.json`` (next to its ``models/`` folder); rows that reuse another row's training are left out."""
    curves = {}
    for r in results:
        if r.get("train_shared_with") or not r.get("checkpoint"):
            continue
        path = Path(r["checkpoint"]).parent.parent / "history.json"
        if not path.is_file():
            continue
        history = json.loads(path.read_text())["history"]
        curves[f"{r['dataset']}/{r['role']}/seed{r.get('seed', 0)}"] = {
            key: [h.get(key) for h in history] for key in ("epoch", "loss", "lr", "val_loss")}
    return curves


def _plot_training(results: list[dict[str, Any]], curves: dict[str, dict[str, list]], seed: int, path: Path) -> None:
    """Training loss against epoch for one seed: one panel per dataset, one line per trained row."""
    datasets = sorted({r["dataset"] for r in results})
    panels = []
    for ds in datasets:
        series = []
        for r in results:
            key = f"{ds}/{r['role']}/seed{seed}"
            if r["dataset"] == ds and r.get("seed", 0) == seed and key in curves:
                series.append({"label": r.get("label", r["model"]), "x": curves[key]["epoch"], "y": curves[key]["loss"],
                               "linestyle": _LINESTYLES.get(r["role"], "-")})
        panels.append({"title": f"{ds}, seed {seed}", "series": series})
    if panels:
        atomic_write(path, plot_lines(panels, "epoch", "training loss (epoch mean)", log_y=True))


def _markdown(table: list[dict[str, Any]], tests: list[dict[str, Any]], profile: str, seeds: list[int],
              elapsed: float | None, timings: dict[str, dict[str, Any]]) -> str:
    lines = [f"Profile `{profile}`, seed(s) {', '.join(map(str, seeds))}"
             + (f" (mean ± std over {len(seeds)} seeds)" if len(seeds) > 1 else "")
             + (f", run time {elapsed / 60:.1f} min" if elapsed else "") + ".", "",
             "| dataset | model | Orig. | Rot. | Rot. turned | Ref. | gap | AUC Orig. | AUC Rot. | params | epochs |"
             " stopped | train (min) | infer (ms/vol) | peak RSS (MB) | paper Orig. | paper Rot. | paper Ref. |"
             " paper params |",
             "|" + "---|" * 19]
    for row in table:
        train = _fmt(row["train_min"]) + (" (shared)" if row["train_shared_with"] else "")
        rss = "—" if row["peak_rss_mb"] is None else str(round(row["peak_rss_mb"]))
        lines.append(
            f"| {row['dataset']} | {row['label']} | {_fmt_ms(row['Orig.'], row['Orig._std'])} |"
            f" {_fmt_ms(row['Rot.'], row['Rot._std'])} | {_fmt_ms(row['Rot. turned'], row['Rot. turned_std'])} |"
            f" {_fmt_ms(row['Ref.'], row['Ref._std'])} |"
            f" {_fmt(row['gap_rot'])} | {_fmt(row['AUC_Orig.'], 3)} | {_fmt(row['AUC_Rot.'], 3)} |"
            f" {row['params'] / 1e6:.2f}M | {_fmt_count(row['epochs'])} | {row['stopped'] or '—'} | {train} |"
            f" {_fmt(row['infer_ms'], 2)} | {rss} | {_fmt(row['paper_Orig.'])} | {_fmt(row['paper_Rot.'])} |"
            f" {_fmt(row['paper_Ref.'])} | {row['paper_params'] or '—'} |"
        )
    if any(row["train_shared_with"] for row in table):
        lines += ["", "train (shared): the row evaluates the plain baseline's checkpoint and trains nothing of its own;"
                  " its training time and memory are the baseline's."]
    if timings:
        t = next(iter(timings.values()))
        lines += ["", f"infer: median wall time of one forward pass over {t['repeats']} runs (eval mode, no gradients,"
                  f" a batch of the bundle's evaluation size of test images, {t['threads']} thread(s) on {t['device']})"
                  " divided by the batch size, all rows timed side by side in one process, TTA rows through the TTA"
                  " wrapper. Machine- and load-dependent."]
    flagged = [row for row in table if row["flags"]]
    if flagged:
        lines += ["", "**Flags: these models may not have learned** (test accuracy at or below the majority-class"
                  " share of the test split; final training loss above 3 × the plain baseline's on the same dataset"
                  " and seed, or above 0.9 × the class-prior entropy):", ""]
        lines += [f"- {row['dataset']} / {row['label']}: {row['flags']}" for row in flagged]
    lines += ["", "Paired t-tests across datasets (`scipy.stats.ttest_rel`, two-sided"
              + (", on the seed means" if len(seeds) > 1 else "") + "):", "",
              "| comparison | datasets | mean diff (pts) | t | p |", "|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['comparison']} | {t['n_datasets']} | {_fmt(t['mean_diff_pts'], 2)} | {_fmt(t['t'], 3)} |"
                     f" {_fmt(t['p'], 3)} |")
    return "\n".join(lines) + "\n"


def _plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    """Test accuracy and AUC against rotation angle: one column per dataset, one colour per row of the table (the
    same role has the same colour in every panel), one line style per rotation axis."""
    datasets = sorted({r["dataset"] for r in results})
    if not datasets:
        return
    panels = [{"title": ds, "series": [{"label": r.get("label", r["model"]), "views": r["views"],
                                        "color": role_color(r["role"])}
                                       for r in results if r["dataset"] == ds]} for ds in datasets]
    atomic_write(path, plot_sweep(panels, metric=("acc", "auc"), ylabel=("test accuracy (%)", "test AUC (x100)"),
                                  scale=100.0))


def reproduce(datasets: Sequence[str], output_dir: str | os.PathLike, data_root: str | None = None,
              profile: str = "cpu", seeds: Sequence[int] | int = (0,), size: int = 28,
              overrides: dict[str, Any] | None = None, roles: Sequence[str] = ROLES,
              timing_repeats: int = 5) -> dict[str, Path]:
    """Train, evaluate and tabulate every (dataset, role) for every seed; resumable.

    Seed ``s`` runs under ``output_dir/seed<s>/``; the table (mean ± std over seeds) goes to ``output_dir``. Inference
    times are then measured side by side in this process (:func:`measure_inference`; ``timing_repeats=0`` skips
    them). Returns the output paths.

    Raises:
        ValueError: for bad ``seeds``, ``profile``, ``roles`` or ``timing_repeats``.
        FileNotFoundError: if ``data_root`` is not a folder, or a reusing row's checkpoint is missing.
    """
    start = time.perf_counter()
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}.")
    if isinstance(timing_repeats, bool) or not isinstance(timing_repeats, int) or timing_repeats < 0:
        raise ValueError(f"timing_repeats must be an int >= 0, got {timing_repeats!r}.")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(f"data_root {data_root!r} is not a folder (expected MedMNIST npz files there).")
    runs = plan_runs(datasets, profile, overrides, roles)
    results = [run_pair(run, Path(output_dir) / f"seed{seed}", data_root, seed, size) for seed in seeds for run in runs]
    elapsed = sum((0.0 if r.get("train_shared_with") else r["train_seconds"] or 0.0) + r["eval_seconds"]
                  for r in results)
    logger.info("reproduce: all runs done in %.1f min of run time (%.1f min this call).", elapsed / 60,
                (time.perf_counter() - start) / 60)
    if timing_repeats:
        timings = measure_inference(results, data_root, timing_repeats)
        for r in results:
            r["inference"] = timings.get((r["dataset"], r["role"]))
    return aggregate(results, output_dir, profile, elapsed)
