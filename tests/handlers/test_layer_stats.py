"""LayerStatsHandler on a real SupervisedTrainer: statistics every `interval` iterations, written to TensorBoard."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from monai.engines import SupervisedTrainer

from monai_sre import SREConv
from monai_sre.handlers import LayerStatsHandler


def test_logs_every_interval_to_tensorboard(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(SREConv(2, 1, 4, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    data = [{"image": torch.randn(2, 1, 8, 8), "label": torch.tensor([0, 1])} for _ in range(5)]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=1, train_data_loader=data, network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1), loss_function=nn.CrossEntropyLoss(),
    )
    handler = LayerStatsHandler(net, tmp_path, interval=2)
    handler.attach(trainer)
    handler.attach(trainer)  # idempotent
    trainer.run()
    assert [h["iteration"] for h in handler.history] == [1.0, 2.0, 4.0]
    row = handler.history[-1]
    assert set(row) == {"iteration", "layers/0/gain", "layers/0/grad_to_weight", "layers/4/gain", "layers/4/grad_to_weight"}
    assert all(math.isfinite(v) and v > 0 for v in row.values())
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert not net[0]._forward_hooks  # hooks only live during due iterations


@pytest.mark.parametrize("kwargs, exc", [({"interval": 0}, ValueError), ({"network": "net"}, TypeError)])
def test_bad_arguments(tmp_path, kwargs, exc):
    args = {"network": nn.Linear(1, 1), "log_dir": tmp_path, **kwargs}
    with pytest.raises(exc):
        LayerStatsHandler(**args)
