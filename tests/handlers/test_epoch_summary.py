from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine, Events

from monai_sre.handlers import EpochSummary


def test_one_line_per_epoch_with_mean_loss_and_val_metrics(caplog):
    losses = iter([1.0, 3.0, 0.5, 0.5])
    trainer = Engine(lambda e, b: [{"loss": torch.tensor(next(losses))}, {"loss": torch.tensor(-1.0)}])
    evaluator = Engine(lambda e, b: None)
    evaluator.state.metrics = {"val_acc": 0.75, "val_auc": torch.tensor(0.5), "per_class": [1, 2]}
    evaluator.state.key_metric_name, evaluator.state.best_metric, evaluator.state.best_metric_epoch = "val_acc", 0.75, 1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    summary = EpochSummary(evaluator=evaluator, optimizer=opt, name="test_summary")
    summary.attach(trainer)
    summary.attach(trainer)  # registered once
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: opt.param_groups[0].update(lr=0.05))
    with caplog.at_level(logging.INFO, logger="test_summary"):
        trainer.run([0, 1], max_epochs=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "test_summary"]
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 | loss 2.0000 lr 0.1 |")
    assert lines[1].startswith("epoch 2/2 | loss 0.5000 lr 0.05 |")  # the rate used during epoch 2
    assert "val_acc 0.7500 val_auc 0.5000" in lines[0] and "per_class" not in lines[0]
    assert "best val_acc 0.7500 (epoch 1)" in lines[0]
    assert [h["loss"] for h in summary.history] == [2.0, 0.5]


def test_without_evaluator_and_bad_transform():
    trainer = Engine(lambda e, b: {"loss": 0.25})
    summary = EpochSummary()
    summary.attach(trainer)
    trainer.run([0], max_epochs=1)
    assert summary.history == [{"epoch": 1.0, "loss": 0.25}]
    with pytest.raises(TypeError, match="loss_transform"):
        EpochSummary(loss_transform="loss")
