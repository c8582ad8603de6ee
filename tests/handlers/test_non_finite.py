"""``StopOnNonFiniteLoss``: the first NaN/Inf training loss stops the run, naming the epoch and iteration, before
the optimiser step and before any checkpoint."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer

from monai_sre.handlers import NonFiniteLossError, SRECheckpointSaver, StopOnNonFiniteLoss


def _data(bad_batch: int | None, n: int = 4):
    """Batches of 2 samples; batch ``bad_batch`` (0-based) holds a NaN image."""
    batches = []
    for i in range(n):
        image = torch.ones(2, 3) * i
        if i == bad_batch:
            image[0, 0] = float("nan")
        batches.append({"image": image, "label": torch.zeros(2, 1)})
    return batches


def _trainer(net, data, tmp_path, epochs=2):
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=epochs, train_data_loader=data, network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.01), loss_function=torch.nn.MSELoss(),
        train_handlers=[StopOnNonFiniteLoss(),
                        SRECheckpointSaver(str(tmp_path), {"model": net}, save_interval=1,
                                           interval_filename="last.pt")],
    )
    return trainer


def test_a_nan_loss_stops_before_the_step_naming_epoch_and_iteration(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    data = _data(bad_batch=None)
    trainer = _trainer(net, data, tmp_path)
    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: data.__setitem__(2, _data(2)[2]))
    before = {}
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=6), lambda e: before.update(
        {k: v.clone() for k, v in net.state_dict().items()}))
    with pytest.raises(NonFiniteLossError) as err:
        trainer.run()
    assert str(err.value).startswith(
        "training loss is nan at epoch 2, iteration 7 (batch 3 of 4): training stopped before the optimiser step")
    assert all(torch.equal(net.state_dict()[k], before[k]) for k in before)  # the step was not taken
    saved = torch.load(tmp_path / "last.pt", weights_only=True)  # one object: Ignite saves its state dict alone
    assert trainer.state.epoch == 2 and all(bool(torch.isfinite(v).all()) for v in saved.values())


def test_an_infinite_loss_on_a_plain_ignite_engine_stops_after_the_iteration():
    engine = Engine(lambda e, batch: {"loss": torch.tensor(batch)})
    StopOnNonFiniteLoss().attach(engine)
    StopOnNonFiniteLoss().attach(engine)  # a second handler is another object: both run, the first raises
    with pytest.raises(NonFiniteLossError, match="training loss is inf at epoch 1, iteration 2 \\(batch 2 of 3\\)"):
        engine.run([1.0, float("inf"), 2.0], max_epochs=1)


def test_finite_losses_and_bad_arguments():
    handler = StopOnNonFiniteLoss(output_transform=lambda out: out)
    engine = Engine(lambda e, batch: batch)
    handler.attach(engine)
    handler.attach(engine)
    assert engine.has_event_handler(handler, Events.ITERATION_COMPLETED)
    assert engine.run([0.5, 1e30], max_epochs=1).iteration == 2
    with pytest.raises(TypeError, match="output_transform must be callable"):
        StopOnNonFiniteLoss(output_transform="loss")
