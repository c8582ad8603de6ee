from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.transforms import RandGaussianNoised
from torch.utils.data import DataLoader

from monai_sre.handlers import EpochSeeder


class _Items(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.transform = n, RandGaussianNoised(keys="x", prob=1.0)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.transform({"i": i, "x": np.zeros(1, np.float32)})


def _epochs(start_epoch: int, max_epochs: int, seeder: bool = True) -> dict[int, list]:
    """Run from ``start_epoch`` (as a resumed run does) and record every epoch's order and random draws."""
    seen: dict[int, list] = {}
    engine = Engine(lambda e, b: seen.setdefault(e.state.epoch, []).append(
        (b["i"].tolist(), b["x"].flatten().tolist(), torch.rand(1).item())))
    if seeder:
        EpochSeeder(seed=3).attach(engine)

    @engine.on(Events.STARTED)
    def _resume(e):
        e.state.epoch, e.state.iteration = start_epoch, start_epoch * 3

    torch.manual_seed(start_epoch)  # whatever ran before differs between a fresh and a resumed process
    engine.run(DataLoader(_Items(6), batch_size=2, shuffle=True), max_epochs=max_epochs)
    return seen


def test_each_epoch_depends_only_on_seed_and_epoch():
    full, resumed = _epochs(0, 3), _epochs(2, 3)
    assert list(resumed) == [3] and resumed[3] == full[3]  # order, transform noise and torch draws all replayed
    assert full[2] != full[3]
    assert _epochs(2, 3, seeder=False)[3] != _epochs(0, 3, seeder=False)[3]  # without it a resume differs


def test_attach_once_and_bad_seed():
    engine = Engine(lambda e, b: None)
    seeder = EpochSeeder(0)
    seeder.attach(engine)
    seeder.attach(engine)
    assert len(engine._event_handlers[Events.EPOCH_STARTED]) == 1
    with pytest.raises(TypeError, match="seed must be an int or None"):
        EpochSeeder(1.5)
    torch.manual_seed(7)
    EpochSeeder(None)(engine)  # an unseeded run: the generators are left alone
    assert torch.initial_seed() == 7
