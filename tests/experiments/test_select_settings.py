"""Validation-only comparison of bundle settings, resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bundles"))
from bundle_utils import make_tiny_medmnist  # noqa: E402

from monai_sre.experiments.rotation_diagnosis import diagnose_runs  # noqa: E402
from monai_sre.experiments.select_settings import paired_difference, parse_variants, select, summarise  # noqa: E402


@pytest.mark.parametrize("pairs,match", [([("a", "{not json")], "JSON object"), ([("a", "[1]")], "JSON object"),
                                         ([("a b", "{}")], "without spaces"), ([("a", "{}"), ("a", "{}")], "repeats")])
def test_bad_variant_names_the_argument(pairs, match):
    with pytest.raises(ValueError, match=match):
        parse_variants(pairs)
    assert parse_variants([("a", "{}"), ("b", '{"augment": true}')]) == {"a": {}, "b": {"augment": True}}


def test_summary_means_and_rate():
    rows = summarise([
        {"variant": "v", "model": "m", "overrides": {}, "seed": s, "best_val_acc": a, "last_val_acc": a - 0.1,
         "best_val_auc": None, "train_seconds": 120.0} for s, a in ((0, 0.8), (1, 0.9))], ["v"])
    (row,) = rows
    assert row["best_val_acc"][0] == pytest.approx(0.85) and row["best_val_acc"][1] == pytest.approx(0.0707, abs=1e-4)
    assert row["train_minutes"] == (2.0, 0.0) and row["best_val_acc_per_minute"] == pytest.approx(0.425)
    assert row["best_val_auc"] is None


def test_paired_difference_matches_runs_by_seed_and_fold():
    def run(variant, seed, fold, orig, rot):
        return {"variant": variant, "seed": seed, "fold": fold, "best_val_acc": orig,
                "rotated_val": {"Orig.": orig, "Rot.": rot, "Ref.": orig}}

    results = [run("a", 0, 0, 0.80, 0.70), run("a", 0, 1, 0.90, 0.80), run("a", 0, 2, 0.50, 0.50),
               run("b", 0, 0, 0.85, 0.75), run("b", 0, 1, 0.90, 1.00)]  # b has no fold 2: that pair is dropped
    mean, se, n = paired_difference(results, "b", "a")
    assert n == 2 and mean == pytest.approx(0.075) and se == pytest.approx(0.025)
    assert paired_difference(results, "a", "a")[:2] == (0.0, 0.0)
    assert paired_difference(results, "c", "a") is None
    no_sweep = [{k: v for k, v in r.items() if k != "rotated_val"} for r in results]
    assert paired_difference(no_sweep, "b", "a")[0] == pytest.approx(0.025)  # best val acc instead
    half_swept = results[:3] + no_sweep[3:]  # b unswept: every pair falls back to best val acc on both sides
    assert paired_difference(half_swept, "b", "a")[0] == pytest.approx(0.025)
    assert paired_difference(half_swept, "a", "b")[0] == pytest.approx(-0.025)


def test_folds_must_be_at_least_two(tmp_path):
    with pytest.raises(ValueError, match="folds must be at least 2"):
        select("breastmnist", {"a": {}}, tmp_path, folds=1)
    assert not list(tmp_path.iterdir())  # refused before any work


@pytest.mark.slow
@pytest.mark.extended
def test_trains_variants_on_validation_and_resumes(tmp_path):
    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    out = tmp_path / "select"
    tiny = {"epochs": 1, "widths": [4, 4, 4, 4], "batch_size": 8}
    variants = {"plain": tiny, "aug": {**tiny, "augment": True, "input_size": 28}}
    select("breastmnist", variants, out, root)
    assert "rotated_val" not in json.loads((out / "plain" / "seed0" / "done.json").read_text())
    md = select("breastmnist", variants, out, root, rotated=True)  # adds the sweep to finished runs, no retraining
    saved = json.loads((out / "selection.json").read_text())
    assert [r["variant"] for r in saved["rows"]] == ["plain", "aug"]
    for run in saved["runs"]:
        assert 0.0 <= run["best_val_acc"] <= 1.0 and run["train_seconds"] > 0
        assert not (out / run["variant"] / "seed0" / "test").exists()  # the test split is never evaluated
        # the sweep evaluates the best checkpoint on the same validation split: its Orig. is the best val acc,
        # and an SRE net is exactly flip-invariant
        assert run["rotated_val"]["Orig."] == pytest.approx(run["best_val_acc"], abs=1e-6)
        assert run["rotated_val"]["Ref."] == pytest.approx(run["rotated_val"]["Orig."], abs=1e-6)
    assert saved["rows"][0]["rotated_val"]["Rot."][0] is not None
    assert saved["runs"][1]["settings"]["augment"] is True
    assert "| plain |" in md and (out / "selection.md").read_text() == md
    stamp = (out / "plain" / "seed0" / "done.json").stat().st_mtime_ns
    select("breastmnist", variants, out, root, rotated=True)  # resumes: nothing is trained or evaluated again
    assert (out / "plain" / "seed0" / "done.json").stat().st_mtime_ns == stamp
    assert not list(out.glob("*.tmp"))


@pytest.mark.slow
@pytest.mark.extended
def test_cross_validation_trains_every_fold_on_its_own_split(tmp_path):
    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    out = tmp_path / "select"
    tiny = {"epochs": 1, "widths": [4, 4, 4, 4], "batch_size": 8}
    md = select("breastmnist", {"plain": tiny, "no_blur": {**tiny, "blur": None, "field_of_view": None}}, out, root,
                rotated=True, folds=2)
    saved = json.loads((out / "selection.json").read_text())
    assert saved["folds"] == 2 and [r["folds"] for r in saved["rows"]] == [[0, 1], [0, 1]]
    for run in saved["runs"]:
        assert run["settings"]["fold"] == run["fold"] and run["settings"]["num_folds"] == 2
        assert not (out / run["variant"] / f"seed0_fold{run['fold']}" / "test").exists()
        # the sweep reads the same held-out fold that the training validated on
        assert run["rotated_val"]["Orig."] == pytest.approx(run["best_val_acc"], abs=1e-6)
    assert saved["runs"][1]["settings"]["blur"] is None
    assert saved["rows"][0]["vs_first"][:2] == [0.0, 0.0] and saved["rows"][1]["vs_first"][2] == 2
    assert "2-fold cross-validation" in md
    # rotation_diagnosis finds the dataset, the held-out fold and the bundle's default field of view by itself
    run = next(r for r in saved["runs"] if r["variant"] == "plain" and r["fold"] == 1)
    assert run["dataset"] == "breastmnist"
    diag = diagnose_runs([out / "plain" / "seed0_fold1"], data_root=root)
    assert diag[0]["fold"] == 1 and diag[0]["field_of_view"] == "ball" and diag[0]["blur"] == 1.0
    assert diag[0]["n_images"] == 12  # the held-out half of the 16 + 8 pooled images, not the 8 of the val split
    assert diag[0]["original"] == pytest.approx(100 * run["rotated_val"]["Orig."], abs=1e-4)
