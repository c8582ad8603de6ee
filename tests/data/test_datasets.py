"""Cross-validation folds of the training and validation images (``get_dataset(..., fold=k)``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from monai_sre.data import cross_validation_folds, get_dataset

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "data" / "medmnist"
DATA = Path(os.environ.get("MONAI_SRE_DATA") or _DEFAULT)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic"))


def _labels(ds) -> np.ndarray:
    return np.array([int(ds[i]["label"]) for i in range(len(ds))])


def test_folds_partition_the_pool_with_the_class_proportions(root):
    pooled, folds = cross_validation_folds("synthetic2d", 5, root=root)
    train, val = get_dataset("synthetic2d", "train", root=root), get_dataset("synthetic2d", "val", root=root)
    assert len(pooled) == len(train) + len(val)
    flat = sorted(i for f in folds for i in f)
    assert flat == list(range(len(pooled)))  # disjoint and covering
    labels = np.concatenate([train.labels[:, 0], val.labels[:, 0]])
    counts = np.bincount(labels)
    for f in folds:  # stratified: every class within one image of its share
        assert np.all(np.abs(np.bincount(labels[f], minlength=len(counts)) - counts / 5) <= 1)
    assert cross_validation_folds("synthetic2d", 5, root=root)[1] == folds  # the same in every call
    assert cross_validation_folds("synthetic2d", 5, root=root, seed=1)[1] != folds


def test_fold_splits_are_complementary_and_test_is_untouched(root):
    pooled, folds = cross_validation_folds("synthetic2d", 4, root=root)
    val = get_dataset("synthetic2d", "val", root=root, fold=1, num_folds=4)
    train = get_dataset("synthetic2d", "train", root=root, fold=1, num_folds=4)
    assert len(val) == len(folds[1]) and len(train) + len(val) == len(pooled)
    assert np.array_equal(val[0]["image"].numpy(), pooled[folds[1][0]]["image"].numpy())
    rest = [i for k, f in enumerate(folds) if k != 1 for i in f]
    assert np.array_equal(train[len(train) - 1]["image"].numpy(), pooled[rest[-1]]["image"].numpy())
    test = get_dataset("synthetic2d", "test", root=root, fold=1, num_folds=4)
    plain = get_dataset("synthetic2d", "test", root=root)
    assert len(test) == len(plain) and np.array_equal(_labels(test), _labels(plain))


@pytest.mark.parametrize("kwargs,match", [
    ({"fold": 5, "num_folds": 5}, "fold must be an int in"), ({"fold": -1}, "fold must be an int in"),
    ({"fold": True}, "fold must be an int in"), ({"fold": 0, "num_folds": 1}, "num_folds must be an int >= 2"),
    ({"fold": 0, "num_folds": 10**6}, "num_folds=1000000 exceeds"),
])
def test_bad_fold_names_the_argument(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_dataset("synthetic2d", "val", root=root, **kwargs)


def test_datalists_have_no_folds(tmp_path):
    with pytest.raises(ValueError, match="fold: cross-validation folds need a MedMNIST or synthetic set"):
        cross_validation_folds(str(tmp_path / "list.json"), 5)


@pytest.mark.data
def test_breastmnist_folds_pool_train_and_val():
    if not (DATA / "breastmnist.npz").is_file():
        pytest.skip(f"breastmnist.npz not found in {DATA}")
    pooled, folds = cross_validation_folds("breastmnist", 5, root=DATA)
    assert len(pooled) == 546 + 78 and sorted(map(len, folds)) == [124, 124, 125, 125, 126]
    share = [np.mean([pooled[i]["label"] for i in f]) for f in folds]
    assert max(share) - min(share) < 0.02  # each fold keeps the pool's share of label 1 (73 %)
