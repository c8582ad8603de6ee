from __future__ import annotations

import logging
import math

import pytest
import torch
from ignite.engine import Engine, Events

from monai_sre.handlers import ResumeFromCheckpoint, SRECheckpointSaver, TrainingSchedule

# (validation losses, patience, max_epochs, epochs the trainer runs), the training loss always improving: the guard
# stops at the patience-th validation in a row that does not improve on the best, and max_epochs caps a run
STOP_CASES = [
    ([1.0, 0.8, 0.9, 0.85, 0.8, 0.7], 3, 10, 5),  # best 0.8 at epoch 2; epochs 3-5 are no lower
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 2, 4, 4),  # always improving: max_epochs ends it
    ([1.0, math.nan, math.nan, 0.9], 2, 10, 3),  # a diverged (NaN) validation never counts as an improvement
    ([1.0] * 6, 1, 10, 2),  # flat: the first repeat stops a patience-1 run
]

# (lr_patience, training losses, learning rate of each epoch): ReduceLROnPlateau multiplies it by lr_factor after the
# (lr_patience + 1)-th epoch in a row whose mean training loss is no new minimum
LR_CASES = [
    (2, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]),
    (0, [1.0, 2.0, 0.5, 0.6, 0.7], [1.0, 1.0, 0.5, 0.5, 0.25]),
    (0, [1.0, math.nan, 0.5], [1.0, 1.0, 0.5]),  # a NaN training loss is no improvement
]


def _engines(val_losses, train_losses=None, val_every=1):
    """A trainer of one iteration per epoch whose loss comes from ``train_losses`` (default: always improving), and an
    evaluator run every ``val_every`` epochs whose ``val_loss`` comes from ``val_losses``."""
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    train = iter(train_losses if train_losses is not None else [1.0 / (k + 1) for k in range(1000)])
    trainer = Engine(lambda e, b: [{"loss": torch.tensor(next(train))}])
    evaluator = Engine(lambda e, b: None)
    values = iter(val_losses)
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_loss=next(values)))
    trainer.add_event_handler(Events.EPOCH_COMPLETED(every=val_every), lambda e: evaluator.run([0]))
    return trainer, evaluator, opt


def _lrs(trainer, opt):
    lrs = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: lrs.append(opt.param_groups[0]["lr"]))
    return lrs


@pytest.mark.parametrize("losses,patience,max_epochs,expected", STOP_CASES)
def test_guard_stops_when_validation_loss_stops_improving(losses, patience, max_epochs, expected):
    trainer, evaluator, opt = _engines(losses)
    schedule = TrainingSchedule(opt, evaluator, patience=patience, lr_patience=100)
    schedule.attach(trainer)
    schedule.attach(trainer)  # registered once
    trainer.run([0], max_epochs=max_epochs)
    assert trainer.state.epoch == expected
    assert schedule.converged == (expected < max_epochs)


def test_min_delta_counts_small_gains_as_no_improvement():
    losses = [1.0, 0.99, 0.98, 0.97, 0.5]
    trainer, evaluator, opt = _engines(losses)
    TrainingSchedule(opt, evaluator, patience=2, min_delta=0.05).attach(trainer)
    trainer.run([0], max_epochs=5)
    assert trainer.state.epoch == 3  # 0.99 and 0.98 are within 0.05 of the best 1.0


@pytest.mark.parametrize("lr_patience,losses,expected", LR_CASES)
def test_learning_rate_follows_the_training_loss(lr_patience, losses, expected):
    trainer, evaluator, opt = _engines([1.0 / (k + 1) for k in range(len(losses))], train_losses=losses)
    lrs = _lrs(trainer, opt)
    TrainingSchedule(opt, evaluator, lr_factor=0.5, lr_patience=lr_patience, lr_reductions=10, patience=100).attach(
        trainer)
    trainer.run([0], max_epochs=len(losses))
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize("lr_patience,lr_reductions", [(0, 0), (1, 2), (3, 1)])
def test_converges_at_the_plateau_after_lr_reductions(lr_patience, lr_reductions, caplog):
    """A flat training loss with a validation loss that keeps improving: reductions every lr_patience + 1 epochs,
    and the run ends at the plateau after the last allowed one, with the learning rate it ran at."""
    n = 50
    trainer, evaluator, opt = _engines([1.0 / (k + 1) for k in range(n)], train_losses=[1.0] * n)
    lrs = _lrs(trainer, opt)
    schedule = TrainingSchedule(opt, evaluator, lr_factor=0.5, lr_patience=lr_patience, lr_reductions=lr_reductions)
    schedule.attach(trainer)
    with caplog.at_level(logging.INFO):
        trainer.run([0], max_epochs=n)
    period = lr_patience + 1  # the first epoch sets the best loss; each later reduction comes period epochs after
    assert trainer.state.epoch == 1 + (lr_reductions + 1) * period
    assert schedule.converged and schedule.stopped_by == "training loss" and schedule.reductions == lr_reductions + 1
    assert lrs == pytest.approx([0.5 ** (max(k - 1, 0) // period) for k in range(trainer.state.epoch)])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 ** lr_reductions)
    assert "Converged: the training loss" in caplog.text
    assert "early_stop" not in schedule.state_dict()  # no guard by default


def test_gains_below_lr_threshold_count_as_a_plateau():
    losses = [1.0, 0.9995, 0.999, 0.9985, 0.5]
    trainer, evaluator, opt = _engines([1.0 / (k + 1) for k in range(5)], train_losses=losses)
    lrs = _lrs(trainer, opt)
    TrainingSchedule(opt, evaluator, lr_factor=0.5, lr_patience=1, lr_threshold=1e-3, lr_reductions=5).attach(trainer)
    trainer.run([0], max_epochs=5)
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5])  # gains of 5e-4 per epoch are below the threshold


def test_patience_counts_validations_not_epochs():
    trainer, evaluator, opt = _engines([1.0, 1.0, 1.0, 1.0], val_every=2)
    schedule = TrainingSchedule(opt, evaluator, patience=2)
    schedule.attach(trainer)
    trainer.run([0], max_epochs=10)
    assert trainer.state.epoch == 6  # validations after epochs 2, 4 and 6: the best, then two without a gain


def test_cosine_follows_max_epochs_and_never_stops():
    trainer, evaluator, opt = _engines([1.0] * 4)
    lrs = _lrs(trainer, opt)
    schedule = TrainingSchedule(opt, evaluator, schedule="cosine", max_epochs=4, patience=1)
    schedule.attach(trainer)
    trainer.run([0], max_epochs=4)
    assert trainer.state.epoch == 4 and not schedule.converged
    assert lrs == pytest.approx([(1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)])
    assert isinstance(schedule.lr_scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert schedule.state_dict() == {"schedule": "cosine"}


def _cosine_run(ckpt, epochs, extend=True):
    """A cosine run of ``epochs`` epochs that resumes from and saves to ``ckpt/last.pt``; its learning rates."""
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = Engine(lambda e, b: [{"loss": torch.tensor(1.0)}])
    lrs = _lrs(trainer, opt)
    schedule = TrainingSchedule(opt, schedule="cosine", max_epochs=epochs, extend_schedule=extend)
    objs = {"model": net, "optimizer": opt, "lr_scheduler": schedule.lr_scheduler}
    ResumeFromCheckpoint(str(ckpt / "last.pt"), objs, engine_key="trainer").attach(trainer)
    schedule.attach(trainer)  # after the resume, as in the bundles' train.json
    saver = SRECheckpointSaver(str(ckpt), objs, save_interval=1, interval_filename="last.pt", engine_key="trainer")
    saver.attach(trainer)
    trainer.run([0], max_epochs=epochs)
    return lrs, schedule


def test_more_epochs_on_a_finished_cosine_run_stretch_the_schedule(tmp_path):
    assert _cosine_run(tmp_path, 2)[0] == pytest.approx([0.1, 0.05])  # finished: a cosine over 2 epochs
    # re-run with 4 epochs: continues on the 4-epoch cosine (lr 0.05, then 0.1 * (1 + cos(3 pi / 4)) / 2), not at 0
    lrs, schedule = _cosine_run(tmp_path, 4)
    assert lrs == pytest.approx([0.05, 0.1 * (1 - 0.5 ** 0.5) / 2])
    assert schedule.lr_scheduler.T_max == 4 and schedule.lr_scheduler.get_last_lr() == pytest.approx([0.0])
    with pytest.raises(ValueError, match="runs over T_max=4 epochs but the run is configured with 6 epochs"):
        _cosine_run(tmp_path, 6, extend=False)


def test_state_round_trip_ends_a_converged_run_at_once(caplog):
    trainer, evaluator, opt = _engines([1.0, 1.0, 1.0])
    schedule = TrainingSchedule(opt, evaluator, patience=2)
    schedule.attach(trainer)
    trainer.run([0], max_epochs=10)
    assert trainer.state.epoch == 3 and schedule.converged
    state = schedule.state_dict()
    assert state["early_stop"]["counter"] == 2 and state["early_stop"]["best_score"] == -1.0
    assert state["reductions"] == 0 and state["stopped_by"] is None

    # a new run restored from that state (loaded before attach, as a config builds it) trains no epoch
    trainer2, evaluator2, opt2 = _engines([])
    restored = TrainingSchedule(opt2, evaluator2, patience=2)
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    restored.attach(trainer2)
    trained = []
    trainer2.add_event_handler(Events.EPOCH_STARTED, lambda e: trained.append(e.state.epoch))
    with caplog.at_level(logging.INFO):
        trainer2.run([0], max_epochs=10)
    assert trained == [] and trainer2.should_terminate
    assert "Already converged" in caplog.text

    # a larger patience than the stopped run's trains on
    trainer3, evaluator3, opt3 = _engines([0.5, 0.6, 0.7])
    longer = TrainingSchedule(opt3, evaluator3, patience=3)
    longer.attach(trainer3)
    longer.load_state_dict(state)
    trainer3.run([0], max_epochs=3)
    assert trainer3.state.epoch == 3 and not longer.converged


def test_a_run_converged_by_the_training_loss_trains_on_only_with_more_reductions():
    trainer, evaluator, opt = _engines([1.0 / (k + 1) for k in range(10)], train_losses=[1.0] * 10)
    schedule = TrainingSchedule(opt, evaluator, lr_patience=0, lr_reductions=1, patience=100)
    schedule.attach(trainer)
    trainer.run([0], max_epochs=10)
    state = schedule.state_dict()
    assert trainer.state.epoch == 3 and state["stopped_by"] == "training loss" and state["reductions"] == 2
    same = TrainingSchedule(opt, evaluator, lr_patience=0, lr_reductions=1, patience=100)
    same.load_state_dict(state)
    assert same.converged
    more = TrainingSchedule(opt, evaluator, lr_patience=0, lr_reductions=3, patience=100)
    more.load_state_dict(state)
    assert not more.converged and more.reductions == 2


def test_plateau_lr_state_resumes_exactly():
    losses = [1.0, 1.0, 0.9, 1.0, 1.0, 1.0]
    val = [1.0 / (k + 1) for k in range(6)]
    ref_trainer, ref_eval, ref_opt = _engines(val, train_losses=losses)
    ref_lrs = _lrs(ref_trainer, ref_opt)
    ref = TrainingSchedule(ref_opt, ref_eval, lr_factor=0.5, lr_patience=1, lr_reductions=5, patience=100)
    ref.attach(ref_trainer)
    ref_trainer.run([0], max_epochs=6)

    first, first_eval, first_opt = _engines(val[:4], train_losses=losses[:4])
    lrs = _lrs(first, first_opt)
    part = TrainingSchedule(first_opt, first_eval, lr_factor=0.5, lr_patience=1, lr_reductions=5, patience=100)
    part.attach(first)
    first.run([0], max_epochs=4)
    assert part.lr_scheduler.num_bad_epochs == 1  # split inside a plateau
    saved = {"opt": first_opt.state_dict(), "lr": part.lr_scheduler.state_dict(), "rule": part.state_dict()}

    second, second_eval, second_opt = _engines(val[4:], train_losses=losses[4:])
    rest = TrainingSchedule(second_opt, second_eval, lr_factor=0.5, lr_patience=1, lr_reductions=5, patience=100)
    second_opt.load_state_dict(saved["opt"])
    rest.lr_scheduler.load_state_dict(saved["lr"])
    rest.load_state_dict(saved["rule"])
    rest.attach(second)
    rest_lrs = _lrs(second, second_opt)
    second.load_state_dict({"epoch": 4, "max_epochs": 6, "epoch_length": 1})
    second.run([0])
    assert lrs + rest_lrs == ref_lrs and rest.state_dict() == ref.state_dict()
    assert ref_lrs == [1.0] * 5 + [0.5]


def test_missing_metric_names_it():
    trainer = Engine(lambda e, b: None)
    evaluator = Engine(lambda e, b: None)
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_acc=1.0))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    TrainingSchedule(opt, evaluator, patience=3).attach(trainer)  # the guard reads the validation loss
    with pytest.raises(KeyError, match=r"metric 'val_loss' was not computed by the evaluator \(it has \['val_acc'\]\)"):
        trainer.run([0], max_epochs=1)


def test_switching_schedule_on_resume_is_refused():
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ValueError, match="trained with schedule='cosine' but this run is configured with schedule='plateau'"):
        TrainingSchedule(opt, Engine(lambda e, b: None)).load_state_dict({"schedule": "cosine"})


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"schedule": "step"}, "schedule must be one of"),
        ({"lr_factor": 1.0}, r"lr_factor must be a number in \(0, 1\), got 1.0"),
        ({"lr_factor": "0.2"}, "lr_factor must be a number"),
        ({"lr_patience": -1}, "lr_patience must be an int >= 0, got -1"),
        ({"lr_reductions": 1.5}, "lr_reductions must be an int >= 0, got 1.5"),
        ({"patience": 0}, "patience must be an int >= 1 or None, got 0"),
        ({"patience": 2.5}, "patience must be an int >= 1 or None, got 2.5"),
        ({"lr_threshold": -1e-3}, "lr_threshold must be a number >= 0"),
        ({"min_delta": -0.1}, "min_delta must be a number >= 0"),
        ({"metric": ""}, "metric must be a non-empty string"),
        ({"schedule": "cosine"}, "max_epochs must be an int >= 1"),
        ({"evaluator": None}, "evaluator is required for schedule='plateau'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error):
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ValueError, match=error):
        TrainingSchedule(opt, **{"evaluator": Engine(lambda e, b: None), **kwargs})


def test_describe_names_the_rule_in_force_and_its_numbers():
    _, evaluator, opt = _engines([1.0])
    plateau = TrainingSchedule(opt, evaluator, max_epochs=100, lr_factor=0.5, lr_patience=3, lr_reductions=1).describe()
    assert plateau.startswith("convergence of the training loss") and "after 1 learning-rate reductions" in plateau
    assert "factor 0.5, patience 3 epochs" in plateau and plateau.endswith("at most 100 epochs")
    guarded = TrainingSchedule(opt, evaluator, patience=5).describe()
    assert "or after 5 validations without a lower val_loss" in guarded and "at most" not in guarded
    cosine = TrainingSchedule(opt, schedule="cosine", max_epochs=30).describe()
    assert cosine == "fixed length: a cosine learning rate over 30 epochs, no early stopping"
