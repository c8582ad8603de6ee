from __future__ import annotations

import json
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
    assert len(lines) == 3 and lines[2] == "stopped: max_epochs after 2 epochs | best epoch 1: val_acc 0.7500 val_auc 0.5000"
    assert lines[0].startswith("epoch 1, at most 2 | loss 2.0000 lr 0.1 |")  # the maximum, not a fixed length
    assert lines[1].startswith("epoch 2, at most 2 | loss 0.5000 lr 0.05 |")  # the rate used during epoch 2
    assert "val_acc 0.7500 val_auc 0.5000" in lines[0] and "per_class" not in lines[0]
    assert "best val_acc 0.7500 (epoch 1)" in lines[0]
    assert [h["loss"] for h in summary.history] == [2.0, 0.5]


def test_the_rule_first_and_the_results_last(caplog, tmp_path):
    trainer = Engine(lambda e, b: {"loss": 0.5})
    evaluator = Engine(lambda e, b: None)
    scores = iter([0.4, 0.2, 0.3])

    def validate(engine):
        evaluator.state.metrics = {"val_loss": next(scores), "val_acc": 0.5 + 0.1 * engine.state.epoch}
        best = min(range(engine.state.epoch), key=[0.4, 0.2, 0.3].__getitem__)
        evaluator.state.key_metric_name, evaluator.state.best_metric_epoch = "val_loss", best + 1
        evaluator.state.best_metric = [0.4, 0.2, 0.3][best]

    trainer.add_event_handler(Events.EPOCH_COMPLETED, validate)
    model, tensorboard = tmp_path / "models" / "model.pt", tmp_path / "tensorboard"
    summary = EpochSummary(evaluator, rule="a fixed 3 epochs", model_path=model, log_dir=str(tensorboard), name="s")
    with caplog.at_level(logging.INFO, logger="s"):
        summary.attach(trainer)
        trainer.run([0], max_epochs=3)
    lines = [r.getMessage() for r in caplog.records if r.name == "s"]
    assert lines[0] == "stopping rule: a fixed 3 epochs" and len(lines) == 5
    assert lines[-1] == (f"stopped: max_epochs after 3 epochs | best epoch 2: val_loss 0.2000 val_acc 0.7000 | "
                         f"model {model} | TensorBoard {tensorboard}")
    with pytest.raises(TypeError, match="model_path must be a string, a path or None"):
        EpochSummary(model_path=3)


def test_without_evaluator_and_bad_transform():
    trainer = Engine(lambda e, b: {"loss": 0.25})
    summary = EpochSummary()
    summary.attach(trainer)
    trainer.run([0], max_epochs=1)
    assert summary.history == [{"epoch": 1.0, "loss": 0.25}]
    with pytest.raises(TypeError, match="loss_transform"):
        EpochSummary(loss_transform="loss")


def _run(history_path, stop_at=None):
    """A trainer of two iterations per epoch logged by a fresh EpochSummary (a run started again on the same file)."""
    trainer = Engine(lambda e, b: {"loss": 1.0 / e.state.iteration})
    if stop_at is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_at), lambda e: e.terminate())
    EpochSummary(history_path=history_path).attach(trainer)
    return trainer


@pytest.mark.parametrize("stop_at,stopped,epochs_run", [(None, "max_epochs", 4), (2, "converged", 2)])
def test_history_records_why_and_after_how_many_epochs_the_run_stopped(tmp_path, stop_at, stopped, epochs_run):
    path = tmp_path / "history.json"
    seen = []
    trainer = _run(path, stop_at)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(json.loads(path.read_text())))
    trainer.run([0, 1], max_epochs=4)
    assert [(h["epochs_run"], h["stopped"]) for h in seen] == [(e, None) for e in range(1, epochs_run + 1)]
    history = json.loads(path.read_text())
    assert history["stopped"] == stopped and history["epochs_run"] == epochs_run
    assert [r["epoch"] for r in history["history"]] == list(range(1, epochs_run + 1))

    # started again on the finished run (restored to its last epoch, nothing left to train): records are kept
    again = _run(path)
    again.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", epochs_run))
    if stopped == "converged":  # the stopping rule ends the restored run at once
        again.add_event_handler(Events.STARTED, lambda e: e.terminate())
    again.run([0, 1], max_epochs=4 if stopped == "converged" else epochs_run)
    assert json.loads(path.read_text()) == history
