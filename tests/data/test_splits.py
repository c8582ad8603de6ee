from __future__ import annotations

import pytest

from monai_sre.data import DATALIST_SPLITS, datalist_key, split_name

# (spelling, canonical name, datalist key)
SPLITS = [("train", "train", "training"), ("training", "train", "training"), ("val", "val", "validation"),
          ("validation", "val", "validation"), ("test", "test", "test")]


@pytest.mark.parametrize("spelling,name,key", SPLITS)
def test_split_spellings(spelling, name, key):
    assert split_name(spelling) == name and datalist_key(spelling) == key == DATALIST_SPLITS[spelling]


@pytest.mark.parametrize("spelling,name", [("Training", "train"), (" VAL ", "val"), ("Validation", "val"),
                                           ("TEST", "test")])
def test_split_names_match_in_any_letter_case(spelling, name):
    assert split_name(spelling) == name


@pytest.mark.parametrize("spelling", ["valid", "holdout", "", None, 1])
def test_unknown_splits_are_refused(spelling):
    with pytest.raises(ValueError, match=f"split must be one of .*got {spelling!r}"):
        split_name(spelling)


def test_unknown_split_is_named():
    with pytest.raises(ValueError, match="split must be one of .*got 'holdout'"):
        split_name("holdout")
