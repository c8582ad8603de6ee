from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from monai_sre.experiments import cross_validation as cv

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "bundles"))
from bundle_utils import TINY, load_script, make_tiny_medmnist  # noqa: E402

VIEWS = [{"kind": "original", "angle": 0.0}, {"kind": "rotation", "angle": 90.0},
         {"kind": "rotation", "angle": 30.0}, {"kind": "rotation", "angle": 45.0}, {"kind": "reflection", "angle": None}]


@pytest.mark.parametrize("classes", [2, 4])
def test_auc_equals_monai_and_works_on_bootstrap_replicates(classes):
    rng = np.random.default_rng(0)
    labels = np.eye(classes)[np.arange(60) % classes]
    scores = rng.random((60, classes)) + 0.3 * labels
    scores[:5] = scores[5:10]  # ties
    scores /= scores.sum(1, keepdims=True)  # post-processed (softmax) scores; binary: MedMNIST's AUC of column 1
    expected = compute_roc_auc(torch.as_tensor(scores), torch.as_tensor(labels), average="macro")
    assert cv.auc(scores, labels) == pytest.approx(float(expected), abs=1e-12)
    idx = rng.integers(0, 60, size=(3, 60))
    batched = cv.auc(scores[idx], labels[idx])
    assert batched.shape == (3,)
    assert batched[1] == pytest.approx(float(cv.auc(scores[idx[1]], labels[idx[1]])))


def _fold(correct_by_view, labels=None):
    """A fold whose image i is answered right in view v when correct_by_view[v][i]."""
    correct = np.asarray(correct_by_view, dtype=bool)
    n = correct.shape[1]
    labels = np.eye(2)[np.arange(n) % 2] if labels is None else labels
    truth = labels.argmax(1)
    scores = np.where(correct[..., None], np.eye(2)[truth], np.eye(2)[1 - truth]) * 0.8 + 0.1
    return {"images": cv.image_metrics(scores, labels, VIEWS), "scores": scores[0], "labels": labels}


def test_image_metrics_share_each_images_views():
    fold = _fold([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 0]])
    m = fold["images"]
    np.testing.assert_allclose(m["Orig."], [1, 1, 0, 1])
    np.testing.assert_allclose(m["Rot."], [1 / 3, 2 / 3, 1 / 3, 1])
    np.testing.assert_allclose(m["off_grid"], [0, 1, 0.5, 1])  # 30 and 45 degrees, not 90
    np.testing.assert_allclose(m["Ref."], [1, 0, 0, 0])
    np.testing.assert_allclose(m["Rot. turned"], m["Rot."])  # no 0- or 360-degree view here
    views = [{"kind": "original", "angle": 0.0}] + [{"kind": "rotation", "angle": a} for a in (0.0, 90.0, 360.0)]
    labels = np.eye(2)[[0, 1]]
    scores = np.stack([labels, labels, 1 - labels, labels])  # only the 90-degree view is answered wrong
    turned = cv.image_metrics(scores, labels, views)
    np.testing.assert_allclose(turned["Rot."], [2 / 3, 2 / 3])
    np.testing.assert_allclose(turned["Rot. turned"], [0, 0])


def test_compare_pairs_images_and_ranks_a_better_row_above_with_its_interval():
    good = [1] * 40
    worse = [1] * 30 + [0] * 10
    ref = [[_fold([worse] * 5), _fold([worse] * 5)]]
    same = [[_fold([worse] * 5), _fold([worse] * 5)]]
    better = [[_fold([good] * 5), _fold([good] * 5)]]
    res = cv.compare({"ref": ref, "same": same, "better": better}, "ref", n_boot=500)
    assert res["n_images"] == 80
    for c in ("Orig.", "Rot.", "Ref.", "AUC", "off_grid_gap"):
        assert res["diff"]["same"][c]["mean"] == res["diff"]["same"][c]["low"] == res["diff"]["same"][c]["high"] == 0
    d = res["diff"]["better"]["Rot."]
    assert d["mean"] == pytest.approx(0.25) and 0 < d["low"] < 0.25 < d["high"]
    assert d["fold_mean"] == pytest.approx(0.25) and d["fold_low"] == d["fold_high"] == pytest.approx(0.25)
    assert res["rows"]["better"]["AUC"] == 1.0 and res["rows"]["ref"]["AUC"] < 1.0
    pooled = cv.pool_datasets({"a": res, "b": res})
    assert pooled["better"]["Rot."]["mean"] == pytest.approx(0.25) and pooled["better"]["Rot."]["datasets"] == 2
    assert d["low"] <= pooled["better"]["Rot."]["low"] and pooled["better"]["Rot."]["high"] <= d["high"]


def test_view_curves_pool_the_folds_of_a_seed_and_average_the_seeds(tmp_path):
    views = [{**v, "name": f"v{i}", "axis": None} for i, v in enumerate(VIEWS)]
    folds = [_fold([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 0]]),
             _fold([[1, 1], [0, 0], [1, 1], [1, 0], [0, 0]])]
    for f, correct in zip(folds, ([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 0]],
                                  [[1, 1], [0, 0], [1, 1], [1, 0], [0, 0]])):
        labels = f["labels"]
        truth = labels.argmax(1)
        f["view_scores"] = np.where(np.asarray(correct, bool)[..., None], np.eye(2)[truth], np.eye(2)[1 - truth])
        f["views"] = views
    curves = cv.view_curves([folds])
    assert [c["name"] for c in curves] == [v["name"] for v in views] and curves[0]["n"] == 6
    pooled_orig = np.concatenate([f["images"]["Orig."] for f in folds]).mean()
    assert curves[0]["acc"] == pytest.approx(pooled_orig) and curves[1]["acc"] == pytest.approx(2 / 6)
    scores = np.concatenate([f["view_scores"][0] for f in folds])
    labels = np.concatenate([f["labels"] for f in folds])
    assert curves[0]["auc"] == pytest.approx(float(cv.auc(scores, labels)))
    flipped = [{**f, "view_scores": 1 - f["view_scores"]} for f in folds]
    two = cv.view_curves([folds, flipped])  # two seeds: the mean of their accuracies
    assert two[0]["acc"] == pytest.approx((pooled_orig + 1 - pooled_orig) / 2)
    with pytest.raises(ValueError, match="different views"):
        cv.view_curves([[folds[0], {**folds[1], "views": views[::-1]}]])
    document = {"datasets": {"breastmnist": {"folds": 2, "labels": {"sre": "SRE"}, "curves": {"sre": curves}}}}
    assert cv.plot_curves(document)[:4] == b"\x89PNG"


def test_compare_refuses_rows_of_other_images():
    a = [[_fold([[1, 0, 1, 0]] * 5)]]
    b = [[_fold([[1, 0, 1, 0]] * 5, labels=np.eye(2)[[1, 1, 0, 0]])]]
    with pytest.raises(ValueError, match="not those of 'a'"):
        cv.compare({"a": a, "b": b}, "a")
    with pytest.raises(ValueError, match="reference 'c'"):
        cv.compare({"a": a}, "c")


@pytest.mark.parametrize("folds, match", [(1, ">= 2"), ({"breastmnist": 3}, "adrenalmnist3d"), (True, "int")])
def test_plan_folds_names_the_bad_value(folds, match):
    with pytest.raises(ValueError, match=match):
        cv.plan_folds(["breastmnist", "adrenalmnist3d"], folds)
    assert cv.plan_folds(["breastmnist", "adrenalmnist3d"], {"breastmnist": 5, "adrenalmnist3d": 3}) == {
        "breastmnist": 5, "adrenalmnist3d": 3}


@pytest.mark.slow
@pytest.mark.extended
def test_cross_validate_end_to_end_on_tiny_data(tmp_path, monkeypatch):
    """Real bundle runs (1 epoch, tiny widths): every row of every fold swept on its held-out images, which together
    are each pooled image once; the same command again only reads back; other settings in the folder are refused."""
    root = make_tiny_medmnist(tmp_path / "data", "breastmnist", 2)
    tiny = {k: v for k, v in TINY.items() if k != "progress_bar"} | {"rotations": [[None, 45.0], [None, 90.0]]}
    roles = ("sre_rotaug", "baseline", "baseline_tta")
    paths = cv.cross_validate(["breastmnist"], tmp_path / "cv", 2, root, overrides=tiny, roles=roles, n_boot=50,
                              reference="sre_rotaug")
    doc = json.loads(paths["json"].read_text())["datasets"]["breastmnist"]
    pooled = np.load(Path(root) / "breastmnist.npz")
    assert doc["n_images"] == len(pooled["train_labels"]) + len(pooled["val_labels"])
    assert set(doc["rows"]) == set(roles) and set(doc["diff"]) == {"baseline", "baseline_tta"}
    sre = doc["rows"]["sre_rotaug"]
    assert sre["Ref."] == pytest.approx(sre["Orig."])  # exact under flips, image by image
    assert "| sre_resnet18 + rot. aug. |" in paths["md"].read_text() and paths["png"].read_bytes()[:4] == b"\x89PNG"
    original = [c for c in doc["curves"]["sre_rotaug"] if c["kind"] == "original"]
    assert original[0]["acc"] == pytest.approx(sre["Orig."])
    net, x = cv.fold_network(tmp_path / "cv" / "breastmnist" / "sre_rotaug" / "seed0_fold1", root, n=4)
    assert x.shape[0] == 4 and net(x).shape == (4, 2) and not net.training
    import monai_sre.experiments.select_settings as ss

    monkeypatch.setattr(ss, "run_measured", lambda *a: pytest.fail("a finished run must not be started again"))
    monkeypatch.setattr(cv, "run_measured", lambda *a: pytest.fail("a finished run must not be started again"))
    again = cv.cross_validate(["breastmnist"], tmp_path / "cv", 2, root, overrides=tiny, roles=roles, n_boot=50,
                              reference="sre_rotaug")
    assert json.loads(again["json"].read_text())["datasets"]["breastmnist"]["rows"] == doc["rows"]
    with pytest.raises(ValueError, match="other settings"):
        cv.cross_validate(["breastmnist"], tmp_path / "cv", 2, root, overrides={**tiny, "learning_rate": 0.5},
                          roles=roles, reference="sre_rotaug")


def test_script_cv_passes_folds_per_dataset_and_never_the_test_split(monkeypatch, tmp_path):
    script = load_script("reproduce")
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        md = tmp_path / "cv.md"
        md.write_text("table\n")
        return {"md": md}

    monkeypatch.setattr(script, "cross_validate", fake)
    monkeypatch.setattr(script, "reproduce", lambda *a: pytest.fail("--cv must not evaluate on the test split"))
    script.main(["--datasets", "breastmnist", "adrenalmnist3d", "--cv", "breastmnist=5", "adrenalmnist3d=3",
                 "--rows", "sre", "baseline_rotaug", "--cv_name", "pair"])
    script.main(["--datasets", "breastmnist", "--cv", "4"])
    (args, kwargs), (args4, _) = calls
    assert args[2] == {"breastmnist": 5, "adrenalmnist3d": 3} and args4[2] == 4
    assert args[8] == ["sre", "baseline_rotaug"] and args[9] == "sre" and kwargs["name"] == "pair"  # the default
    with pytest.raises(SystemExit):
        script.main(["--datasets", "breastmnist", "--cv", "breastmnist=five"])
