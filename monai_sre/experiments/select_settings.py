"""Choose training settings on the validation split only: train each variant, compare best validation accuracy.

``scripts/select_settings.py`` is the command line. Each variant is a name and a JSON object of bundle overrides laid
over the reproduction profile (``--profile``), for example the paper-recipe switches or a different registered
model::

    python scripts/select_settings.py --dataset adrenalmnist3d --data_root $MONAI_SRE_DATA --seeds 0 1 \\
        --variant default '{}' --variant augment '{"augment": true}' \\
        --variant paper_input '{"input_size": 32, "intensity_range": [-1, 1]}' \\
        --variant fullres_same_time '{"network_name": "sre_r3d_18_fullres", "epochs": 2}'

With ``--folds K`` every (variant, seed) is trained K times, once per fold of a class-stratified K-fold split of
the training and validation images pooled (the bundle's ``fold`` / ``num_folds``; see
:func:`monai_sre.data.cross_validation_folds`): each pooled image is then predicted once, which matters when the
validation split is small (78 images in BreastMNIST, where one image is 1.3 points). The table adds, for every
variant, its difference from the first variant paired by (seed, fold), with the standard error of that mean
difference; the score is the mean of val Orig. and val Rot. with ``--rotated``, the best validation accuracy
otherwise.

Only ``training`` runs (train + validation); the test split is never read. The table reports, per variant, the
best and the last-epoch validation accuracy (mean ± std over seeds), the best validation AUC, the wall time of
training and validation accuracy per minute of it. With ``--rotated`` each trained model is also evaluated on the
validation split under the rotated-evaluation protocol (the bundle's ``evaluate_rotated.json`` with
``validate#split=val``): columns val Orig. / Rot. / Ref. Results go to ``<output_dir>/selection.{json,md}`` (written
atomically); re-running the same command skips finished (variant, seed) runs and resumes an interrupted one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from monai_sre.experiments.reproduce import bundle_command, mean_std, plan_runs, run_measured
from monai_sre.utils.io import atomic_write

__all__ = ["paired_difference", "parse_variants", "run_variant", "select", "summarise", "to_markdown"]

logger = logging.getLogger(__name__)


def parse_variants(pairs: Sequence[Sequence[str]]) -> dict[str, dict]:
    """``{name: overrides}`` from ``(name, JSON object)`` pairs, as ``--variant NAME JSON`` gives them.

    Raises:
        ValueError: a name that is empty, holds a space or slash, or repeats; overrides that are not a JSON object.
    """
    variants: dict[str, dict] = {}
    for name, text in pairs:
        if not name or any(c in name for c in "/\\ "):
            raise ValueError(f"variant: name {name!r} must be non-empty, without spaces or slashes.")
        if name in variants:
            raise ValueError(f"variant: every variant needs its own name, {name!r} repeats.")
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"variant {name}: overrides must be a JSON object, got {text!r} ({e}).") from e
        if not isinstance(overrides, dict):
            raise ValueError(f"variant {name}: overrides must be a JSON object, got {text!r}.")
        variants[name] = overrides
    return variants


def _history(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no history.json; the training did not write EpochSummary's history.")
    return json.loads(path.read_text())["history"]


def _pm(mean: float, std: float | None, scale: float = 100.0) -> str:
    return f"{scale * mean:.1f}" + ("" if std is None else f" ± {scale * std:.1f}")


def run_variant(run: dict, name: str, overrides: dict, seed: int, output_dir: Path, data_root: str | None,
                size: int, rotated: bool = False, fold: int | None = None, num_folds: int | None = None) -> dict:
    """Train one (variant, seed[, fold]) with the bundle; return its validation summary (stored in ``done.json``).

    With ``rotated``, the best checkpoint is also swept over the rotated views of the validation split; a finished
    run without that sweep gets only the sweep. With ``fold``, the run trains and validates on that fold of the
    pooled training and validation images (``num_folds`` folds).
    """
    out = output_dir / name / (f"seed{seed}" if fold is None else f"seed{seed}_fold{fold}")
    done = out / "done.json"
    settings = {**run["settings"], **overrides}
    if fold is not None:
        settings.update(fold=fold, num_folds=num_folds)
    model = settings.pop("network_name", run["model"])
    variant_run = {**run, "model": model, "settings": settings}
    if done.is_file():
        result = json.loads(done.read_text())
        if rotated and "rotated_val" not in result:
            result["rotated_val"] = _rotated_val(variant_run, out, data_root, seed, size)
            atomic_write(done, json.dumps(result, indent=2))
        else:
            logger.info("select: %s %s already done, skipping.", name, out.name)
        return result
    logger.info("select: training %s (%s) %s on %s", name, model, out.name, run["dataset"])
    seconds, peak_mb = run_measured(
        bundle_command(variant_run, "training", [], out, data_root, seed, size), out / "select.log"
    )
    history = _history(out / "history.json")
    accs = [h["val_acc"] for h in history if "val_acc" in h]
    aucs = [h["val_auc"] for h in history if "val_auc" in h]
    if not accs:
        raise RuntimeError(f"{out / 'history.json'}: no validation accuracy was recorded.")
    result = {"variant": name, "model": model, "dataset": run["dataset"], "overrides": overrides, "settings": settings,
              "seed": seed, "fold": fold,
              "best_val_acc": max(accs), "best_epoch": accs.index(max(accs)) + 1, "last_val_acc": accs[-1],
              "best_val_auc": max(aucs) if aucs else None, "final_train_loss": history[-1].get("loss"),
              "train_seconds": seconds, "peak_rss_mb": peak_mb}
    if rotated:
        result["rotated_val"] = _rotated_val(variant_run, out, data_root, seed, size)
    atomic_write(done, json.dumps(result, indent=2))
    return result


def _rotated_val(run: dict, out: Path, data_root: str | None, seed: int, size: int) -> dict:
    """Orig./Rot./Ref. accuracy of the best checkpoint on the validation split (the bundle's rotated sweep)."""
    logger.info("select: rotated sweep of %s seed %d on the validation split", run["model"], seed)
    eval_run = {**run, "settings": {**run["settings"], "validate#split": "val"}}
    sweep_dir = out / "rotated_val"
    cmd = bundle_command(eval_run, "evaluating", ["evaluate.json", "evaluate_rotated.json"], out, data_root, seed,
                          size) + ["--rotated_dir", str(sweep_dir)]
    run_measured(cmd, out / "select.log")
    return json.loads((sweep_dir / "rotated.json").read_text())["summary"]


def _score(result: dict, swept: bool) -> float:
    """What a comparison ranks: mean of val Orig. and val Rot. when ``swept``, else the best validation accuracy."""
    if swept:
        sweep = result["rotated_val"]
        return (sweep["Orig."] + sweep["Rot."]) / 2.0
    return result["best_val_acc"]


def paired_difference(results: list[dict], variant: str, reference: str) -> tuple[float, float | None, int] | None:
    """Mean difference of :func:`_score` between two variants over their common (seed, fold) runs.

    Both runs of a pair are scored alike: on the mean of val Orig. and val Rot. when both were swept, else both on
    the best validation accuracy (a swept run against an unswept one would compare two different measures).
    Returns ``(mean, standard error of the mean, number of pairs)``, the error None for a single pair, or None
    when the variants share no run.
    """
    def by_key(name: str) -> dict:
        return {(r["seed"], r.get("fold")): r for r in results if r["variant"] == name}

    ours, ref = by_key(variant), by_key(reference)
    diffs = []
    for k in sorted(ours.keys() & ref.keys(), key=str):
        swept = "rotated_val" in ours[k] and "rotated_val" in ref[k]
        diffs.append(_score(ours[k], swept) - _score(ref[k], swept))
    if not diffs:
        return None
    mean, std = mean_std(diffs)
    return mean, (None if std is None else std / len(diffs) ** 0.5), len(diffs)


def summarise(results: list[dict], variants: list[str]) -> list[dict]:
    rows = []
    for name in variants:
        rs = [r for r in results if r["variant"] == name]
        best = mean_std([r["best_val_acc"] for r in rs])
        last = mean_std([r["last_val_acc"] for r in rs])
        aucs = [r["best_val_auc"] for r in rs if r["best_val_auc"] is not None]
        minutes = mean_std([r["train_seconds"] / 60.0 for r in rs])
        sweeps = [r["rotated_val"] for r in rs if "rotated_val" in r]
        rotated = {k: mean_std([s[k] for s in sweeps]) for k in ("Orig.", "Rot.", "Ref.")} \
            if sweeps and len(sweeps) == len(rs) else None
        rows.append({"variant": name, "model": rs[0]["model"], "overrides": rs[0]["overrides"],
                     "seeds": sorted({r["seed"] for r in rs}), "folds": sorted({r["fold"] for r in rs
                                                                                if r.get("fold") is not None}),
                     "vs_first": paired_difference(results, name, variants[0]), "best_val_acc": best,
                     "last_val_acc": last,
                     "best_val_auc": mean_std(aucs) if aucs else None, "train_minutes": minutes,
                     "best_val_acc_per_minute": best[0] / minutes[0], "rotated_val": rotated})
    return rows


def _paired(diff: tuple[float, float | None, int] | None) -> str:
    if diff is None:
        return "—"
    mean, se, n = diff
    return f"{100 * mean:+.1f}" + ("" if se is None else f" ± {100 * se:.1f}") + f" (n={n})"


def to_markdown(rows: list[dict], dataset: str, profile: str, num_folds: int | None = None) -> str:
    if num_folds:
        scope = (f"mean ± std over seeds and folds ({num_folds}-fold cross-validation on the training and validation "
                 "images).")
    else:
        scope = "mean ± std over seeds."
    first = rows[0]["variant"] if rows else ""
    lines = [f"Validation only: `{dataset}`, profile `{profile}`; {scope}",
             f"Δ: difference from `{first}` in the mean of val Orig. and val Rot. (in the best val acc where either run"
             " of a pair has no sweep), paired by seed and fold, ± its standard error.", "",
             "| variant | model | overrides | seeds | best val acc | last val acc | best val AUC | val Orig. | val Rot. "
             "| val Ref. | Δ (points) | train (min) | best val acc / min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = "—" if r["best_val_auc"] is None else _pm(*r["best_val_auc"])
        rot = ["—"] * 3 if r["rotated_val"] is None else [_pm(*r["rotated_val"][k]) for k in ("Orig.", "Rot.", "Ref.")]
        lines.append(f"| {r['variant']} | {r['model']} | `{json.dumps(r['overrides'])}` | "
                     f"{','.join(map(str, r['seeds']))} | {_pm(*r['best_val_acc'])} | {_pm(*r['last_val_acc'])} | "
                     f"{auc} | {' | '.join(rot)} | {_paired(r.get('vs_first'))} | "
                     f"{_pm(*r['train_minutes'], scale=1.0)} | {100 * r['best_val_acc_per_minute']:.2f} |")
    return "\n".join(lines) + "\n"


def select(dataset: str, variants: dict[str, dict], output_dir: str | Path, data_root: str | None = None,
           role: str = "sre", profile: str = "cpu", seeds: Sequence[int] = (0,), size: int = 28,
           rotated: bool = False, folds: int | None = None) -> str:
    """Train every (seed, fold, variant) not done yet, write ``selection.json`` and ``selection.md`` into
    ``output_dir`` and return the Markdown table.

    Raises:
        ValueError: ``folds`` below 2, no variant, or a ``role`` the reproduction plan does not have.
    """
    if folds is not None and folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    if not variants:
        raise ValueError("variants: give at least one.")
    runs = [r for r in plan_runs([dataset], profile) if r["role"] == role]
    if len(runs) != 1:
        raise ValueError(f"role must be one of the reproduction roles of {dataset!r}, got {role!r}.")
    output_dir = Path(output_dir)
    results = [run_variant(runs[0], name, overrides, seed, output_dir, data_root, size, rotated, fold=fold,
                           num_folds=folds)
               for seed in seeds for fold in ([None] if folds is None else range(folds))
               for name, overrides in variants.items()]
    rows = summarise(results, list(variants))
    md = to_markdown(rows, dataset, profile, folds)
    atomic_write(output_dir / "selection.json", json.dumps(
        {"dataset": dataset, "profile": profile, "folds": folds, "rows": rows, "runs": results}, indent=2))
    atomic_write(output_dir / "selection.md", md)
    return md
