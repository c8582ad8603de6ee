from __future__ import annotations

import csv
import json

import pytest
from scipy.stats import ttest_rel

from monai_sre.experiments import reproduce as rp


def _fake_result(dataset, role, orig, rot, ref):
    dims = 3 if dataset.endswith("3d") else 2
    views = [{"kind": "original", "axis": None, "angle": 0.0, "acc": orig}]
    views += [{"kind": "rotation", "axis": 0 if dims == 3 else None, "angle": a, "acc": rot} for a in (0.0, 30.0)]
    views += [{"kind": "reflection", "axis": 0, "angle": None, "acc": ref}]
    return {
        "dataset": dataset, "role": role, "model": rp.MODELS[dims][role], "bundle": rp.MODELS[dims]["bundle"],
        "spatial_dims": dims, "settings": {"epochs": 1}, "seed": 0, "size": 28, "views": views,
        "summary": {"Orig.": orig, "Rot.": rot, "Ref.": ref, "gap_rot": orig - rot, "worst_rot": rot,
                    "auc_Orig.": 0.5},
        "params": 1000, "train_seconds": 60.0, "eval_seconds": 6.0, "peak_rss_mb_train": 900.0,
        "peak_rss_mb_eval": 800.0,
    }


def test_plan_runs_pairs_models_and_bundles():
    runs = rp.plan_runs(["adrenalmnist3d", "breastmnist"], "cpu", {"epochs": 2})
    assert [(r["dataset"], r["model"], r["bundle"]) for r in runs] == [
        ("adrenalmnist3d", "sre_r3d_18", "sre_r3d"), ("adrenalmnist3d", "r3d_18", "sre_r3d"),
        ("breastmnist", "sre_resnet18", "sre_r18"), ("breastmnist", "resnet18", "sre_r18"),
    ]
    assert all(r["settings"]["epochs"] == 2 for r in runs)
    paper = rp.plan_runs(["breastmnist"], "paper")
    assert paper[0]["settings"] == {"overlay": "paper_profile.json", "batch_size": 128}


@pytest.mark.parametrize("args, match", [((["breastmnist"], "fast"), "profile"), (([], "cpu"), "at least one"),
                                         ((["pathology"], "cpu"), "2D from 3D")])
def test_plan_runs_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        rp.plan_runs(*args)


def test_bundle_command_uses_the_bundle_configs(tmp_path):
    run = rp.plan_runs(["adrenalmnist3d"], "paper")[0]
    cmd = rp.bundle_command(run, "evaluating", ["evaluate.json"], tmp_path, "/data", 3, 64)
    configs = json.loads(cmd[cmd.index("--config_file") + 1])
    assert [c.rsplit("/", 1)[1] for c in configs] == ["train.json", "paper_profile.json", "evaluate.json"]
    assert cmd[cmd.index("--network_name") + 1] == "sre_r3d_18" and cmd[cmd.index("--seed") + 1] == "3"
    assert cmd[cmd.index("--batch_size") + 1] == "4" and cmd[cmd.index("--data_root") + 1] == "/data"


def test_bundle_command_values_reach_the_bundle_as_python_values(tmp_path):
    """None, booleans and lists survive `monai.bundle run`'s command line: Fire's parsing, then MONAI's merge."""
    from fire.parser import DefaultParseValue
    from monai.bundle import ConfigParser
    from monai.bundle.scripts import update_kwargs

    run = rp.plan_runs(["breastmnist"], "cpu")[0]
    values = {"blur": None, "field_of_view": None, "augment": False, "amp": True, "widths": [8, 16],
              "intensity_range": [-1.0, 1.0], "learning_rate": 0.005, "num_folds": 3}
    cmd = rp.bundle_command({**run, "settings": values}, "training", [], tmp_path, None, 0, 28)
    parsed = {key: DefaultParseValue(cmd[cmd.index(f"--{key}") + 1]) for key in values}
    parser = ConfigParser()
    parser.read_config(json.loads(cmd[cmd.index("--config_file") + 1])[0])
    parser.update(update_kwargs(**parsed))  # what `monai.bundle run` does with its overrides (it drops None values)
    for key, value in values.items():
        got = parser.get_parsed_content(key)
        assert got == value and type(got) is type(value), key


def test_aggregate_table_and_paired_ttests(tmp_path):
    results = [
        _fake_result("adrenalmnist3d", "sre", 0.80, 0.79, 0.80), _fake_result("adrenalmnist3d", "baseline", 0.78, 0.70, 0.72),
        _fake_result("breastmnist", "sre", 0.82, 0.815, 0.82), _fake_result("breastmnist", "baseline", 0.85, 0.74, 0.76),
        _fake_result("organmnist3d", "sre", 0.70, 0.66, 0.70), _fake_result("organmnist3d", "baseline", 0.90, 0.60, 0.62),
    ]
    paths = rp.aggregate(results, tmp_path, "cpu", elapsed=600.0)
    data = json.loads(paths["json"].read_text())
    rot = next(t for t in data["ttests"] if t["comparison"] == "SRE vs baseline, Rot.")
    expected = ttest_rel([0.79, 0.815, 0.66], [0.70, 0.74, 0.60])
    assert rot["n_datasets"] == 3 and rot["p"] == pytest.approx(expected.pvalue) and rot["t"] == pytest.approx(expected.statistic)
    rows = list(csv.DictReader(paths["csv"].open()))
    adrenal_sre = next(r for r in rows if r["dataset"] == "adrenalmnist3d" and r["model"] == "sre_r3d_18")
    assert float(adrenal_sre["Orig."]) == pytest.approx(80.0) and float(adrenal_sre["paper_Orig."]) == 84.2
    md = paths["md"].read_text()
    assert "| breastmnist | sre_resnet18 | 82.0 | 81.5 | 82.0 |" in md and "79.5" in md
    assert paths["png"].stat().st_size > 1000


def test_finished_runs_are_not_repeated(tmp_path, monkeypatch):
    run = rp.plan_runs(["breastmnist"], "cpu")[0]
    done = tmp_path / "breastmnist_sre_resnet18" / "done.json"
    done.parent.mkdir()
    done.write_text(json.dumps(_fake_result("breastmnist", "sre", 0.8, 0.8, 0.8)))

    def boom(*args, **kwargs):
        raise AssertionError("a finished run must not be started again")

    monkeypatch.setattr(rp, "run_measured", boom)
    assert rp.run_pair(run, tmp_path)["summary"]["Orig."] == 0.8
