"""Choose training settings on the validation split only: train each variant, compare best validation accuracy.

Each variant is a name and a JSON object of bundle overrides laid over the reproduction profile (``--profile``),
for example the paper-recipe switches or a different registered model::

    python scripts/select_settings.py --dataset adrenalmnist3d --data_root ../shared/data/medmnist --seeds 0 1 \\
        --variant default '{}' --variant augment '{"augment": true}' \\
        --variant paper_input '{"input_size": 32, "intensity_range": [-1, 1]}' \\
        --variant fullres_same_time '{"network_name": "sre_r3d_18_fullres", "epochs": 2}'

Only ``training`` runs (train + validation); the test split is never read. The table reports, per variant, the
best and the last-epoch validation accuracy (mean ± std over seeds), the best validation AUC, the wall time of
training and validation accuracy per minute of it. With ``--rotated`` each trained model is also evaluated on the
validation split under the rotated-evaluation protocol (the bundle's ``evaluate_rotated.json`` with
``validate#split=val``): columns val Orig. / Rot. / Ref. Results go to ``<output_dir>/selection.{json,md}`` (written
atomically); re-running the same command skips finished (variant, seed) runs and resumes an interrupted one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from monai_sre.utils.io import atomic_write
from monai_sre.experiments.reproduce import PROFILES, bundle_command, mean_std, plan_runs, run_measured

logger = logging.getLogger("select_settings")


def _variant(name: str, text: str) -> tuple[str, dict]:
    if not name or any(c in name for c in "/\\ "):
        raise SystemExit(f"--variant: name {name!r} must be non-empty, without spaces or slashes.")
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--variant {name}: overrides must be a JSON object, got {text!r} ({e}).") from e
    if not isinstance(overrides, dict):
        raise SystemExit(f"--variant {name}: overrides must be a JSON object, got {text!r}.")
    return name, overrides


def _history(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no history.json; the training did not write EpochSummary's history.")
    return json.loads(path.read_text())["history"]


def _pm(mean: float, std: float | None, scale: float = 100.0) -> str:
    return f"{scale * mean:.1f}" + ("" if std is None else f" ± {scale * std:.1f}")


def run_variant(run: dict, name: str, overrides: dict, seed: int, output_dir: Path, data_root: str | None,
                size: int, rotated: bool = False) -> dict:
    """Train one (variant, seed) with the bundle; return its validation summary (stored in ``done.json``).

    With ``rotated``, the best checkpoint is also swept over the rotated views of the validation split; a finished
    run without that sweep gets only the sweep.
    """
    out = output_dir / name / f"seed{seed}"
    done = out / "done.json"
    settings = {**run["settings"], **overrides}
    model = settings.pop("network_name", run["model"])
    variant_run = {**run, "model": model, "settings": settings}
    if done.is_file():
        result = json.loads(done.read_text())
        if rotated and "rotated_val" not in result:
            result["rotated_val"] = _rotated_val(variant_run, out, data_root, seed, size)
            atomic_write(done, json.dumps(result, indent=2))
        else:
            logger.info("select: %s seed %d already done, skipping.", name, seed)
        return result
    logger.info("select: training %s (%s) seed %d on %s", name, model, seed, run["dataset"])
    seconds, peak_mb = run_measured(
        bundle_command(variant_run, "training", [], out, data_root, seed, size), out / "select.log"
    )
    history = _history(out / "history.json")
    accs = [h["val_acc"] for h in history if "val_acc" in h]
    aucs = [h["val_auc"] for h in history if "val_auc" in h]
    if not accs:
        raise RuntimeError(f"{out / 'history.json'}: no validation accuracy was recorded.")
    result = {"variant": name, "model": model, "overrides": overrides, "settings": settings, "seed": seed,
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
                     "seeds": [r["seed"] for r in rs], "best_val_acc": best, "last_val_acc": last,
                     "best_val_auc": mean_std(aucs) if aucs else None, "train_minutes": minutes,
                     "best_val_acc_per_minute": best[0] / minutes[0], "rotated_val": rotated})
    return rows


def to_markdown(rows: list[dict], dataset: str, profile: str) -> str:
    lines = [f"Validation only: `{dataset}`, profile `{profile}`; mean ± std over seeds.", "",
             "| variant | model | overrides | seeds | best val acc | last val acc | best val AUC | val Orig. | val Rot. "
             "| val Ref. | train (min) | best val acc / min |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = "—" if r["best_val_auc"] is None else _pm(*r["best_val_auc"])
        rot = ["—"] * 3 if r["rotated_val"] is None else [_pm(*r["rotated_val"][k]) for k in ("Orig.", "Rot.", "Ref.")]
        lines.append(f"| {r['variant']} | {r['model']} | `{json.dumps(r['overrides'])}` | "
                     f"{','.join(map(str, r['seeds']))} | {_pm(*r['best_val_acc'])} | {_pm(*r['last_val_acc'])} | "
                     f"{auc} | {' | '.join(rot)} | {_pm(*r['train_minutes'], scale=1.0)} | "
                     f"{100 * r['best_val_acc_per_minute']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="MedMNIST flag, e.g. adrenalmnist3d or breastmnist")
    parser.add_argument("--role", choices=("sre", "baseline"), default="sre",
                        help="which model of the reproduction pair the variants start from (default: sre)")
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True,
                        help="a variant: its name and a JSON object of bundle overrides (repeatable)")
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"),
                        help="folder of the MedMNIST npz files (default: $MONAI_SRE_DATA)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--output_dir", default="runs/select")
    parser.add_argument("--rotated", action="store_true",
                        help="also sweep each best checkpoint over the rotated views of the validation split")
    args = parser.parse_args(argv)
    variants = dict(_variant(n, t) for n, t in args.variant)
    if len(variants) != len(args.variant):
        raise SystemExit("--variant: every variant needs its own name.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    (run,) = [r for r in plan_runs([args.dataset], args.profile) if r["role"] == args.role]
    output_dir = Path(args.output_dir)
    results = [run_variant(run, name, overrides, seed, output_dir, args.data_root, args.size, args.rotated)
               for seed in args.seeds for name, overrides in variants.items()]
    rows = summarise(results, list(variants))
    md = to_markdown(rows, args.dataset, args.profile)
    atomic_write(output_dir / "selection.json", json.dumps({"dataset": args.dataset, "profile": args.profile,
                                                            "rows": rows, "runs": results}, indent=2))
    atomic_write(output_dir / "selection.md", md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
