from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from scipy.stats import ttest_rel

from monai_sre.experiments import reproduce as rp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "bundles"))
from bundle_utils import TINY, load_script, make_tiny_medmnist  # noqa: E402

_SUFFIX = {"sre": "", "sre_rotaug": " + rot. aug.", "baseline": "", "baseline_rotaug": " + rot. aug.",
           "baseline_tta": " + TTA"}


def _fake_result(dataset, role, orig, rot, ref, seed=0, loss=0.3, majority=0.5, epochs=None, stopped=None):
    dims = 3 if dataset.endswith("3d") else 2
    views = [{"kind": "original", "axis": None, "angle": 0.0, "acc": orig}]
    views += [{"kind": "rotation", "axis": 0 if dims == 3 else None, "angle": a, "acc": rot} for a in (0.0, 30.0)]
    views += [{"kind": "reflection", "axis": 0, "angle": None, "acc": ref}]
    model = rp.MODELS[dims]["sre" if role == "sre" else "baseline"]
    return {
        "dataset": dataset, "role": role, "model": model, "label": model + _SUFFIX[role],
        "bundle": rp.MODELS[dims]["bundle"], "spatial_dims": dims, "settings": {"epochs": 1}, "seed": seed, "size": 28,
        "views": views,
        "summary": {"Orig.": orig, "Rot.": rot, "Ref.": ref, "gap_rot": orig - rot, "worst_rot": rot,
                    "auc_Orig.": 0.5, "auc_Rot.": 0.45},
        "params": 1000, "train_seconds": 60.0, "eval_seconds": 6.0, "peak_rss_mb_train": 900.0,
        "peak_rss_mb_eval": 800.0, "train_shared_with": "x_baseline" if role == "baseline_tta" else None,
        "diagnostics": {"final_train_loss": loss, "best_val_acc": 0.8, "majority_test": majority,
                        "entropy_train": 0.69, "epochs_run": epochs, "stopped": stopped},
    }


def test_plan_runs_gives_five_rows_per_dataset():
    runs = rp.plan_runs(["adrenalmnist3d", "breastmnist"], "cpu", {"epochs": 2})
    assert [(r["dataset"], r["role"], r["model"], r["bundle"]) for r in runs] == [
        ("adrenalmnist3d", "sre", "sre_r3d_18", "sre_r3d"), ("adrenalmnist3d", "sre_rotaug", "sre_r3d_18", "sre_r3d"),
        ("adrenalmnist3d", "baseline", "r3d_18", "sre_r3d"),
        ("adrenalmnist3d", "baseline_rotaug", "r3d_18", "sre_r3d"),
        ("adrenalmnist3d", "baseline_tta", "r3d_18", "sre_r3d"),
        ("breastmnist", "sre", "sre_resnet18", "sre_r18"), ("breastmnist", "sre_rotaug", "sre_resnet18", "sre_r18"),
        ("breastmnist", "baseline", "plain_resnet18", "sre_r18"),
        ("breastmnist", "baseline_rotaug", "plain_resnet18", "sre_r18"),
        ("breastmnist", "baseline_tta", "plain_resnet18", "sre_r18"),
    ]
    assert all(r["settings"]["epochs"] == 2 for r in runs)
    by_role = {r["role"]: r for r in runs if r["dataset"] == "breastmnist"}
    # each row has its own folder; every row sets the rotation switch itself, whatever the bundle's default
    assert len({r["name"] for r in runs}) == len(runs)
    assert by_role["baseline"]["name"] == "breastmnist_plain_resnet18"
    assert {role: r["settings"]["rotate_augment"] for role, r in by_role.items()} == {
        "sre": False, "sre_rotaug": True, "baseline": False, "baseline_rotaug": True, "baseline_tta": False}
    # the TTA row reuses the plain baseline and evaluates through evaluate_tta.json into its own sweep folder
    tta = by_role["baseline_tta"]
    assert tta["reuses"] == by_role["baseline"]["name"] and tta["sweep"] == "rotated_tta"
    assert tta["evaluate"] == ["evaluate.json", "evaluate_rotated.json", "evaluate_tta.json"]
    assert all(r["reuses"] is None for role, r in by_role.items() if role != "baseline_tta")
    paper = rp.plan_runs(["breastmnist"], "paper")
    assert paper[0]["settings"] == {"overlay": "paper_profile.json", "batch_size": 128, "rotate_augment": False}
    subset = rp.plan_runs(["breastmnist"], "cpu", roles=["baseline_tta", "sre"])
    assert [r["role"] for r in subset] == ["sre", "baseline_tta"]  # always in the order of ROLES


def test_the_strided_stem_row_is_asked_for_and_exists_in_3d_only():
    runs = rp.plan_runs(["adrenalmnist3d", "breastmnist"], "cpu", roles=["sre", "sre_strided"])
    assert [(r["dataset"], r["role"], r["model"]) for r in runs] == [
        ("adrenalmnist3d", "sre", "sre_r3d_18"), ("adrenalmnist3d", "sre_strided", "sre_r3d_18_strided"),
        ("breastmnist", "sre", "sre_resnet18")]
    assert runs[1]["settings"] == runs[0]["settings"] and runs[1]["name"] != runs[0]["name"]
    assert "sre_strided" not in rp.ROLES  # not part of the default table


def test_the_gaussian_ring_row_trains_the_sre_network_with_smooth_kernels_in_both_dimensions():
    runs = rp.plan_runs(["adrenalmnist3d", "breastmnist"], "cpu", roles=["sre", "sre_gaussian"])
    assert [r["model"] for r in runs] == ["sre_r3d_18"] * 2 + ["sre_resnet18"] * 2
    for plain, smooth in (runs[:2], runs[2:]):
        assert smooth["settings"] == {**plain["settings"], "sre_kwargs": {"profile": "gaussian"}}
        assert smooth["name"] == plain["name"] + "_gaussian" and smooth["label"].endswith("+ Gaussian rings")


@pytest.mark.parametrize("args, match", [((["breastmnist"], "fast"), "profile"), (([], "cpu"), "at least one"),
                                         ((["pathology"], "cpu"), "2D from 3D"),
                                         ((["breastmnist"], "cpu", None, ["tta"]), "roles"),
                                         ((["breastmnist"], "cpu", None, []), "roles")])
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
              "intensity_range": [-1.0, 1.0], "learning_rate": 0.005, "num_folds": 3, "rotate_augment": True,
              "epochs": 7}
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
    assert "| breastmnist | sre_resnet18 | 82.0 | 81.5 | — | 82.0 |" in md and "79.5" in md  # no turned views given
    assert paths["png"].stat().st_size > 1000


def test_aggregate_collects_the_training_curves_of_trained_rows(tmp_path):
    results = []
    for role, losses in (("sre", [0.7, 0.5, 0.4]), ("baseline", [0.6, 0.2]), ("baseline_tta", [9.0])):
        run_dir = tmp_path / f"breastmnist_{role}"
        (run_dir / "models").mkdir(parents=True)
        history = [{"epoch": e + 1, "loss": v, "lr": 0.01, "val_loss": v + 0.1} for e, v in enumerate(losses)]
        (run_dir / "history.json").write_text(json.dumps({"history": history, "epochs_run": len(losses)}))
        result = _fake_result("breastmnist", role, 0.8, 0.8, 0.8)
        results.append({**result, "checkpoint": str(run_dir / "models" / "model.pt")})
    paths = rp.aggregate(results, tmp_path / "out", "cpu")
    curves = json.loads(paths["json"].read_text())["training_curves"]
    assert curves == {  # the TTA row trains nothing of its own
        "breastmnist/sre/seed0": {"epoch": [1, 2, 3], "loss": [0.7, 0.5, 0.4], "lr": [0.01] * 3,
                                  "val_loss": pytest.approx([0.8, 0.6, 0.5])},
        "breastmnist/baseline/seed0": {"epoch": [1, 2], "loss": [0.6, 0.2], "lr": [0.01] * 2,
                                       "val_loss": pytest.approx([0.7, 0.3])},
    }
    assert paths["training_png"].read_bytes()[:4] == b"\x89PNG"


def test_finished_runs_are_not_repeated(tmp_path, monkeypatch):
    run = rp.plan_runs(["breastmnist"], "cpu")[0]
    done = tmp_path / "breastmnist_sre_resnet18" / "done.json"
    done.parent.mkdir()
    done.write_text(json.dumps(_fake_result("breastmnist", "sre", 0.8, 0.8, 0.8)))

    def boom(*args, **kwargs):
        raise AssertionError("a finished run must not be started again")

    monkeypatch.setattr(rp, "run_measured", boom)
    assert rp.run_pair(run, tmp_path)["summary"]["Orig."] == 0.8


def _fake_bundle_runs(monkeypatch, acc=0.7):
    """Replace the bundle subprocesses by a recorder that writes what an evaluation writes (a sweep, a history)."""
    commands = []

    def fake(cmd, log):
        commands.append(cmd)
        out = Path(cmd[cmd.index("--output_dir") + 1])
        configs = [Path(c).name for c in json.loads(cmd[cmd.index("--config_file") + 1])]
        if cmd[4] == "training":
            (out / "models").mkdir(parents=True, exist_ok=True)
            (out / "models" / "model.pt").write_bytes(b"weights")
            (out / "history.json").write_text(json.dumps({"history": [{"epoch": 1, "loss": 0.4}]}))
            return 30.0, 500.0
        sweep = out / ("rotated_tta" if "evaluate_tta.json" in configs else "rotated")
        sweep.mkdir(parents=True, exist_ok=True)
        summary = {"Orig.": acc, "Rot.": acc, "Ref.": acc, "gap_rot": 0.0, "worst_rot": acc}
        (sweep / "rotated.json").write_text(json.dumps({"summary": summary, "views": []}))
        return 5.0, 400.0

    monkeypatch.setattr(rp, "run_measured", fake)
    monkeypatch.setattr(rp, "_label_stats", lambda *a: {"majority_test": 0.6, "entropy_train": 0.6})
    monkeypatch.setattr(rp, "_count_params", lambda *a: 1234)
    return commands


def test_tta_row_evaluates_the_baseline_checkpoint_without_training(tmp_path, monkeypatch):
    commands = _fake_bundle_runs(monkeypatch)
    base, tta = rp.plan_runs(["breastmnist"], "cpu", roles=["baseline", "baseline_tta"])
    with pytest.raises(FileNotFoundError, match="run the row that trains it"):
        rp.run_pair(tta, tmp_path)
    assert commands == []
    baseline = rp.run_pair(base, tmp_path)
    assert [c[4] for c in commands] == ["training", "evaluating"]
    commands.clear()
    result = rp.run_pair(tta, tmp_path)
    (cmd,) = commands  # one evaluation, no training
    checkpoint = tmp_path / "breastmnist_plain_resnet18" / "models" / "model.pt"
    assert cmd[4] == "evaluating" and cmd[cmd.index("--ckpt_path") + 1] == repr(str(checkpoint))
    assert cmd[cmd.index("--output_dir") + 1] == str(tmp_path / "breastmnist_plain_resnet18_tta")
    configs = [Path(c).name for c in json.loads(cmd[cmd.index("--config_file") + 1])]
    assert configs == ["train.json", "evaluate.json", "evaluate_rotated.json", "evaluate_tta.json"]
    assert result["checkpoint"] == str(checkpoint) == baseline["checkpoint"]
    assert result["train_shared_with"] == "breastmnist_plain_resnet18" and baseline["train_shared_with"] is None
    assert result["train_seconds"] == baseline["train_seconds"] == 30.0 and result["eval_seconds"] == 5.0
    assert result["diagnostics"]["final_train_loss"] == 0.4  # the history of the run it reuses
    assert (tmp_path / "breastmnist_plain_resnet18_tta" / "done.json").is_file()


def test_rotation_augmented_row_trains_its_own_model_with_the_switch(tmp_path, monkeypatch):
    from fire.parser import DefaultParseValue

    commands = _fake_bundle_runs(monkeypatch)
    (run,) = rp.plan_runs(["adrenalmnist3d"], "cpu", roles=["baseline_rotaug"])
    rp.run_pair(run, tmp_path)
    assert [c[4] for c in commands] == ["training", "evaluating"]
    for cmd in commands:
        assert DefaultParseValue(cmd[cmd.index("--rotate_augment") + 1]) is True  # what Fire hands to the bundle
        assert cmd[cmd.index("--output_dir") + 1] == str(tmp_path / "adrenalmnist3d_r3d_18_rotaug")


@pytest.mark.parametrize("history, expected", [
    ({"history": [{"loss": 0.9}, {"loss": 0.5, "val_acc": 0.7}], "epochs_run": 2, "stopped": "converged"},
     (0.5, 0.7, 2, "converged")),
    ({"history": [{"loss": 0.9}, {"loss": 0.5}, {"loss": 0.4}]}, (0.4, None, 3, None)),  # written before the fields
])
def test_training_diagnostics_read_epochs_and_how_training_stopped(tmp_path, history, expected):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    d = rp._training_diagnostics(path)
    assert (d["final_train_loss"], d["best_val_acc"], d["epochs_run"], d["stopped"]) == expected
    assert rp._training_diagnostics(tmp_path / "none.json")["epochs_run"] is None


def test_flags_fire_on_loss_and_majority_share_and_not_otherwise():
    fine = _fake_result("breastmnist", "baseline_rotaug", 0.80, 0.78, 0.80, loss=0.3, majority=0.73)
    assert rp.learning_flags(fine, baseline_loss=0.2) == []
    slow = _fake_result("breastmnist", "baseline_rotaug", 0.80, 0.78, 0.80, loss=0.61, majority=0.73)
    assert rp.learning_flags(slow, baseline_loss=0.2) == ["train loss 0.610 > 3 x the plain baseline's 0.200"]
    assert rp.learning_flags(slow, baseline_loss=0.21) == []  # 2.9 x
    majority = _fake_result("breastmnist", "sre", 0.73, 0.73, 0.73, loss=0.3, majority=0.73)
    assert rp.learning_flags(majority, 0.3) == ["test acc 73.0 <= majority-class share 73.0"]
    below = _fake_result("breastmnist", "sre", 0.70, 0.73, 0.73, loss=0.3, majority=0.73)
    assert len(rp.learning_flags(below, 0.3)) == 1
    prior = _fake_result("breastmnist", "sre", 0.80, 0.78, 0.80, loss=0.65, majority=0.73)
    assert rp.learning_flags(prior) == ["train loss 0.650 > 0.9 x prior entropy 0.690"]
    unknown = {**fine, "diagnostics": {}}
    assert rp.learning_flags(unknown, baseline_loss=0.01) == []


def test_aggregate_writes_the_new_rows_and_columns(tmp_path):
    results = []
    for seed, (epochs, stopped) in enumerate([(12, "converged"), (15, "max_epochs")]):
        results += [
            _fake_result("adrenalmnist3d", "sre", 0.80, 0.79, 0.80, seed, epochs=epochs, stopped=stopped),
            _fake_result("adrenalmnist3d", "baseline", 0.78, 0.70, 0.72, seed, loss=0.1, epochs=15,
                         stopped="max_epochs"),
            _fake_result("adrenalmnist3d", "baseline_rotaug", 0.77, 0.76, 0.77, seed, loss=0.35, epochs=15,
                         stopped="max_epochs"),
            _fake_result("adrenalmnist3d", "baseline_tta", 0.79, 0.75, 0.74, seed, loss=0.1, majority=0.79),
        ]
    for r in results:
        r["inference"] = {"ms_per_volume": 2.5 if r["role"] != "baseline_tta" else 60.0, "batch": 16, "threads": 2,
                          "device": "cpu", "repeats": 5, "seed": 0}
    paths = rp.aggregate(results, tmp_path, "cpu")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 8
    for col in ("AUC_Orig.", "AUC_Rot.", "params", "epochs", "stopped", "train_min", "train_shared_with",
                "infer_ms", "infer_threads", "flags"):
        assert col in rows[0], col
    tta = next(r for r in rows if r["role"] == "baseline_tta")
    assert float(tta["AUC_Rot."]) == 0.45 and float(tta["infer_ms"]) == 60.0 and tta["train_shared_with"]
    table = {r["role"]: r for r in json.loads(paths["json"].read_text())["rows"]}
    assert table["sre"]["epochs"] == 13.5 and table["sre"]["stopped"] == "converged ×1, max_epochs ×1"
    assert table["baseline"]["stopped"] == "max_epochs" and table["baseline_tta"]["stopped"] is None
    assert table["baseline_rotaug"]["flags"].count("3 x the plain baseline's") == 2
    assert table["baseline_tta"]["flags"].count("majority-class share") == 2
    assert not table["sre"]["flags"] and not table["baseline"]["flags"]
    md = paths["md"].read_text()
    assert "| adrenalmnist3d | r3d_18 + rot. aug. | 77.0 ± 0.0 | 76.0 ± 0.0 | — | 77.0 ± 0.0 |" in md
    assert "| adrenalmnist3d | r3d_18 + TTA |" in md and "1.0 (shared) | 60.00 |" in md
    assert "| 13.5 | converged ×1, max_epochs ×1 |" in md and "2 thread(s) on cpu" in md
    assert "- adrenalmnist3d / r3d_18 + rot. aug.: seed 0: train loss 0.350 > 3 x" in md
    assert "- adrenalmnist3d / r3d_18 + TTA: seed 0: test acc 79.0 <= majority-class share 79.0" in md
    assert paths["png"].stat().st_size > 1000


def test_script_passes_rows_and_max_epochs(monkeypatch, tmp_path):
    script = load_script("reproduce")
    calls = []

    def fake(*args):
        calls.append(args)
        md = tmp_path / "results.md"
        md.write_text("table\n")
        return {"md": md}

    monkeypatch.setattr(script, "reproduce", fake)
    script.main(["--datasets", "breastmnist", "--rows", "baseline", "baseline_tta", "--max_epochs", "3"])
    script.main(["--datasets", "breastmnist", "--epochs", "4"])
    assert calls[0][6] == {"epochs": 3} and calls[0][7] == ["baseline", "baseline_tta"]
    assert calls[1][6] == {"epochs": 4} and calls[1][7] == list(rp.ROLES)
    with pytest.raises(SystemExit):
        script.main(["--rows", "tta"])


def test_inference_is_timed_on_the_trained_network_tta_rows_through_the_wrapper(tmp_path):
    import torch

    from monai_sre.utils import GridTTA

    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    results = []
    for role in ("baseline", "baseline_tta", "sre"):
        (run,) = rp.plan_runs(["breastmnist"], "cpu", {"widths": [4, 4, 4, 4], "batch_size": 4}, roles=[role])
        checkpoint = tmp_path / role / "model.pt"
        checkpoint.parent.mkdir()
        net = rp._bundle_config(run, [], root, 28).get_parsed_content("network_def")
        torch.save({k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}, checkpoint)
        results.append({**run, "seed": 0, "size": 28, "checkpoint": str(checkpoint if role != "sre" else "gone.pt")})
    plain, x = rp._evaluated_network(results[0], root)
    tta, _ = rp._evaluated_network(results[1], root)
    assert x.shape == (4, 1, 28, 28) and not plain.training and not isinstance(plain, GridTTA)
    assert isinstance(tta, GridTTA) and len(tta.symmetries) == 8 and not tta.network.training
    saved = torch.load(results[1]["checkpoint"])
    assert all(torch.equal(v, saved[k]) for k, v in tta.network.state_dict().items())
    timings = rp.measure_inference(results, root, repeats=1)
    assert set(timings) == {("breastmnist", "baseline"), ("breastmnist", "baseline_tta")}  # the sre one is gone
    for timing in timings.values():
        assert timing["ms_per_volume"] > 0 and timing["batch"] == 4 and timing["threads"] == torch.get_num_threads()


@pytest.mark.slow
@pytest.mark.extended
def test_reproduce_end_to_end_on_tiny_data(tmp_path, monkeypatch):
    """The rows on tiny MedMNIST-format files (1 epoch, a few views): real bundle runs, the TTA row on the baseline's
    checkpoint with its sweep exactly invariant to the grid turns, and a second call that only reads back."""
    cases = {  # dataset: (spatial dims, rows, rotation views of the sweep)
        "adrenalmnist3d": (3, rp.ROLES, [[0, 90.0], [1, 30.0], [2, 180.0]]),
        "breastmnist": (2, ("baseline", "baseline_tta"), [[None, 45.0], [None, 90.0], [None, 270.0]]),
    }
    tiny = {k: v for k, v in TINY.items() if k != "progress_bar"}
    results = {}
    for ds, (dims, roles, views) in cases.items():
        root = make_tiny_medmnist(tmp_path / "data" / ds, ds, dims)
        paths = rp.reproduce([ds], tmp_path / ds, root, overrides={**tiny, "rotations": views}, roles=roles,
                             timing_repeats=2)
        results[ds] = (root, json.loads(paths["json"].read_text()))
    for ds, (root, res) in results.items():
        rows = {r["role"]: r for r in res["rows"]}
        runs = {r["role"]: r for r in rp.plan_runs([ds], "cpu", roles=cases[ds][1])}
        assert set(rows) == set(runs)
        seed0 = tmp_path / ds / "seed0"
        assert sorted(p.name for p in seed0.iterdir()) == sorted(r["name"] for r in runs.values())
        base, tta = seed0 / runs["baseline"]["name"], seed0 / runs["baseline_tta"]["name"]
        assert not (tta / "models").exists() and (tta / "eval_tta").is_dir() and not (tta / "eval").exists()
        assert not (base / "rotated_tta").exists() and (base / "rotated" / "rotated.json").is_file()
        log = (tta / "reproduce.log").read_text()
        assert f"--ckpt_path '{base / 'models' / 'model.pt'}'" in log and " run training " not in log
        views = json.loads((tta / "rotated_tta" / "rotated.json").read_text())["views"]
        turns = [v for v in views if v["kind"] == "original" or (v["kind"] == "rotation" and v["angle"] % 90 == 0)]
        assert len(turns) == 3 and max(v["auc"] for v in turns) - min(v["auc"] for v in turns) < 1e-6
        assert rows["baseline_tta"]["train_shared_with"] == base.name
        assert rows["baseline_tta"]["params"] == rows["baseline"]["params"] and rows["baseline"]["epochs"] == 1
        for row in rows.values():
            assert row["infer_ms"] > 0 and row["infer_threads"] >= 1 and row["AUC_Orig."] is not None
    rows3d = {r["role"]: r for r in results["adrenalmnist3d"][1]["rows"]}
    assert rows3d["baseline_rotaug"]["params"] == rows3d["baseline"]["params"] != rows3d["sre"]["params"]
    assert results["adrenalmnist3d"][1]["settings"]["adrenalmnist3d/baseline_rotaug"]["rotate_augment"] is True
    monkeypatch.setattr(rp, "run_measured", lambda *a: pytest.fail("a finished run must not be started again"))
    root, res = results["breastmnist"]
    again = rp.reproduce(["breastmnist"], tmp_path / "breastmnist", root, overrides=tiny,
                         roles=("baseline", "baseline_tta"), timing_repeats=0)
    assert [r["Orig."] for r in json.loads(again["json"].read_text())["rows"]] == [r["Orig."] for r in res["rows"]]
