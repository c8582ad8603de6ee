from __future__ import annotations

import time

import pytest
import torch

from monai_sre.blocks import time_calls

CPU = torch.device("cpu")


def test_round_robin_after_warmup():
    calls = []
    times = time_calls({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, CPU, warmup=2, repeats=3)
    assert calls == ["a", "b"] * 5
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}


def test_cpu_clock_ignores_sleep_and_wall_clock_does_not():
    nap = {"nap": lambda: time.sleep(0.05)}
    assert min(time_calls(nap, CPU, warmup=0, repeats=2, clock="wall")["nap"]) >= 0.045
    assert max(time_calls(nap, CPU, warmup=0, repeats=2, clock="cpu")["nap"]) < 0.02


def test_bad_arguments():
    with pytest.raises(ValueError, match="clock must be one of .*'sundial'"):
        time_calls({}, CPU, clock="sundial")
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_calls({}, CPU, repeats=0)
