"""Switches given on the bundle command line: ``--augment false`` is the string "false", and must mean False."""

from __future__ import annotations

import pytest

from monai_sre.workflows import as_bool

ACCEPTED = [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), ("False", False),
            (" false ", False)]
REFUSED = ["yes", "no", "1", "0", "", "flase", 1, 0, None, 1.0]


@pytest.mark.parametrize("given,expected", ACCEPTED)
def test_bools_and_true_false_words_are_read(given, expected):
    assert as_bool(given, "augment") is expected


@pytest.mark.parametrize("given", REFUSED)
def test_anything_else_is_refused_naming_the_id_and_the_value(given):
    with pytest.raises(ValueError) as err:
        as_bool(given, "progress_bar")
    assert str(err.value) == f"progress_bar must be true or false (any case), got {given!r}."
