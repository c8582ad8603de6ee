"""Stop training at the first NaN/Inf loss, before the optimiser step, naming the epoch and iteration."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from monai.engines import IterationEvents
from monai.handlers import from_engine
from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
idist, _ = optional_import("ignite.distributed", IgniteInfo.OPT_IMPORT_VERSION, min_version)
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["NonFiniteLossError", "StopOnNonFiniteLoss"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or Inf."""


def _finite(value: Any) -> bool:
    """Whether every number of ``value`` (a tensor, a number, or a tuple/list/dict of them) is finite."""
    if torch.is_tensor(value):
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, numbers.Number):
        return math.isfinite(float(value))
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def _first(value: Any) -> Any:
    """The first number of ``value``, for the message."""
    if torch.is_tensor(value):
        return value.detach().flatten()[0].item() if value.numel() else value
    if isinstance(value, Mapping):
        value = list(value.values())
    return _first(value[0]) if isinstance(value, (list, tuple)) and value else value


class StopOnNonFiniteLoss:
    """Raise :class:`NonFiniteLossError` at the first non-finite training loss, naming the epoch and iteration.

    Ignite's :class:`~ignite.handlers.TerminateOnNan` ends the run quietly, and only after the iteration, whose
    optimiser step has already written NaN into the weights. On a MONAI trainer this handler runs at
    ``IterationEvents.LOSS_COMPLETED``, before the backward pass and the step, so the network keeps the weights of
    the previous iteration; on another engine it runs at ``ITERATION_COMPLETED``. Raising stops the run before any
    later handler of the epoch (validation, checkpoints) and makes the command fail, so neither ``model.pt`` nor
    ``last.pt`` receives the diverged weights. In a multi-process run the ranks agree on the check (one
    all-reduce), so every rank stops at the same iteration.

    Args:
        output_transform: the loss from ``engine.state.output`` (default: its ``"loss"`` entry).

    Raises:
        NonFiniteLossError: when run, if the loss is NaN or Inf.

    Example:
        >>> StopOnNonFiniteLoss().attach(trainer)  # doctest: +SKIP
    """

    def __init__(self, output_transform: Callable[[Any], Any] = from_engine(["loss"], first=True)) -> None:
        if not callable(output_transform):
            raise TypeError(f"output_transform must be callable, got {output_transform!r}.")
        self.output_transform = output_transform

    def attach(self, engine: Engine) -> None:
        """Register on the trainer's ``LOSS_COMPLETED`` event, else on ``ITERATION_COMPLETED`` (once)."""
        for event in (IterationEvents.LOSS_COMPLETED, Events.ITERATION_COMPLETED):
            try:
                if not engine.has_event_handler(self, event):
                    engine.add_event_handler(event, self)
                return
            except ValueError:  # an engine without MONAI's iteration events
                continue

    def __call__(self, engine: Engine) -> None:
        loss = self.output_transform(engine.state.output)
        here = not _finite(loss)
        bad = bool(idist.all_reduce(float(here)) > 0) if idist.get_world_size() > 1 else here
        if not bad:
            return
        length = engine.state.epoch_length or 0
        within = f" (batch {(engine.state.iteration - 1) % length + 1} of {length})" if length else ""
        value = _first(loss) if here else "NaN/Inf in another process"
        raise NonFiniteLossError(
            f"training loss is {value} at epoch {engine.state.epoch}, iteration {engine.state.iteration}{within}: "
            f"training stopped before the optimiser step, and no checkpoint holds these weights. Check the images "
            f"of this batch for extreme values, or lower --learning_rate."
        )
