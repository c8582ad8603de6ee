from __future__ import annotations

import pytest
import torch

from monai_sre.handlers import TASKS, ClassificationOutput, check_task, is_multilabel


def test_task_strings():
    assert [is_multilabel(t) for t in TASKS] == [False, False, False, True]
    with pytest.raises(ValueError, match="task must be one of .*'regression'"):
        check_task("regression")


def test_classification_output_shapes():
    items = [{"pred": torch.tensor([0.2, 0.8]), "label": torch.tensor([1])},
             {"pred": torch.tensor([0.6, 0.4]), "label": torch.tensor([1])}]
    y_pred, y = ClassificationOutput("binary-class", "acc")(items)
    assert y_pred.shape == (2, 2) and y.tolist() == [1, 1]
    y_pred, y = ClassificationOutput("binary-class", "auc", num_classes=2)(items)
    assert y.tolist() == [[0.0, 1.0], [0.0, 1.0]]
    ml = [{"pred": torch.tensor([0.7, 0.2]), "label": torch.tensor([1.0, 1.0])}]
    y_pred, y = ClassificationOutput("multi-label, binary-class", "acc")(ml)
    assert y_pred.tolist() == [[1, 0]] and y.tolist() == [[1, 1]]
    with pytest.raises(ValueError, match="mode"):
        ClassificationOutput("binary-class", "f1")
    with pytest.raises(ValueError, match="num_classes"):
        ClassificationOutput("binary-class", "auc")
