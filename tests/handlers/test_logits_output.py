from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from ignite.metrics import Loss
from monai.transforms import Compose, CopyItemsd

from monai_sre.handlers import LogitsOutput, classification_postprocessing
from monai_sre.workflows import ClassificationLoss

# (task, number of classes, labels of 7 items as stored by MedMNIST)
TASKS = [
    ("binary-class", 2, torch.tensor([[0], [1], [1], [0], [1], [0], [0]])),
    ("multi-class", 4, torch.tensor([[3], [0], [2], [1], [1], [3], [0]])),
    ("multi-label, binary-class", 3, torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 0]])),
]


@pytest.mark.parametrize("task,num_classes,labels", TASKS)
def test_loss_metric_over_batches_equals_the_loss_of_the_whole_set(task, num_classes, labels):
    torch.manual_seed(0)
    logits = 3 * torch.randn(len(labels), num_classes)
    post = Compose([CopyItemsd(keys="pred", names="logits"), classification_postprocessing(task)])
    batches = [slice(0, 3), slice(3, 5), slice(5, 7)]  # uneven batches: the metric weights them by size

    def step(engine, batch):  # a MONAI evaluator's decollated and post-processed output
        return [post({"pred": p, "label": y}) for p, y in zip(logits[batch], labels[batch])]

    evaluator = Engine(step)
    loss_fn = ClassificationLoss(task)
    Loss(loss_fn, output_transform=LogitsOutput()).attach(evaluator, "val_loss")
    evaluator.run(batches)
    assert evaluator.state.metrics["val_loss"] == pytest.approx(float(loss_fn(logits, labels)), rel=1e-6)
    # the post-processing still turns "pred" into scores for accuracy and AUC
    out = step(None, slice(0, 1))[0]
    assert torch.allclose(out["logits"], logits[0]) and not torch.allclose(out["pred"], logits[0])


def test_single_item_and_missing_key():
    logits, labels = LogitsOutput()({"logits": torch.tensor([1.0, 2.0]), "label": torch.tensor([1])})
    assert logits.shape == (1, 2) and labels.tolist() == [[1]]
    with pytest.raises(KeyError, match=r"no \['logits'\] \(it has \['label', 'pred'\]\); .*CopyItemsd"):
        LogitsOutput()([{"pred": torch.zeros(2), "label": torch.tensor([0])}])
    with pytest.raises(ValueError, match="label_key must be a non-empty string"):
        LogitsOutput(label_key="")
