"""The one timer of the package: ``algorithm="benchmark"`` in :class:`~monai_sre.blocks.SREConv` and the benchmark
(:mod:`monai_sre.experiments.benchmark`) both time their candidates with :func:`time_calls`.

``torch.utils.benchmark.Timer`` does not fit these two uses: each of its measurements runs its own warm-up calls and
pins the thread count (to 1 by default), while the callers here need one timed call per round, round-robin over the
candidates (so load spikes on a shared machine hit every candidate alike), at the caller's thread count, and process
CPU time on a CPU (far steadier than wall time when other jobs share the machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

__all__ = ["CLOCKS", "time_calls"]

CLOCKS = ("cpu", "wall")


def time_calls(
    fns: dict[str, Callable[[], object]], device: torch.device, warmup: int = 1, repeats: int = 3, clock: str = "cpu"
) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each callable, round-robin, after ``warmup`` untimed rounds.

    Args:
        fns: the candidates, by name.
        device: where they run; on CUDA every call is bracketed by ``torch.cuda.synchronize`` and timed by wall time.
        warmup: untimed rounds first.
        repeats: timed rounds.
        clock: on a CPU, ``"cpu"`` (process CPU time) or ``"wall"``.

    Returns:
        ``{name: [seconds of each timed call]}``.

    Raises:
        ValueError: for an unknown ``clock`` or fewer than one repeat.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}.")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}.")
    cuda = torch.device(device).type == "cuda"
    timer = time.perf_counter if cuda or clock == "wall" else time.process_time

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            sync()
            t0 = timer()
            fn()
            sync()
            if r >= warmup:
                times[name].append(timer() - t0)
    return times
