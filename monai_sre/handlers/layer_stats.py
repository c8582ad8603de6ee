"""Per-layer activation and gradient statistics of a training run, logged to TensorBoard with Ignite's handlers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from monai.utils import IgniteInfo, min_version, optional_import

from monai_sre.utils.trainability import ActivationRecorder, tracked_layers

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
tb, _ = optional_import("ignite.handlers.tensorboard_logger")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["LayerStatsHandler"]


class LayerStatsHandler:
    """Every ``interval`` iterations, log per layer the activation gain (output std / input std), the weight norm, the
    gradient norm and their ratio, to TensorBoard.

    Weights and gradients go through Ignite's ``WeightsScalarHandler`` and ``GradsScalarHandler``; activations and
    ``|grad W| / |W|`` through its ``OutputHandler``, all on one ``TensorboardLogger``. The tags are
    ``weights_norm/<layer>``, ``grads_norm/<layer>`` and ``layers/<layer>/{gain,grad_to_weight}``. ``history`` keeps
    the logged rows for tests and notebooks.

    Args:
        network: the trained model (its convolutions, SRE or standard, and linear layers are tracked).
        log_dir: TensorBoard folder.
        interval: log every this many iterations (the first iteration is always logged).

    Raises:
        ValueError: ``interval`` below 1.
        TypeError: ``network`` is not a module.

    Example (bundle overlay ``configs/diagnostics.json``)::

        "+train#handlers": [{"_target_": "monai_sre.handlers.LayerStatsHandler", "network": "@network",
                             "log_dir": "@log_dir", "interval": 20}]
    """

    def __init__(self, network: nn.Module, log_dir: str | os.PathLike, interval: int = 20) -> None:
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ValueError(f"interval must be a positive int, got {interval!r}.")
        self.network = network
        self.log_dir = str(log_dir)
        self.interval = interval
        self.layers = tracked_layers(getattr(network, "module", network))
        self.latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self._recorder: ActivationRecorder | None = None
        self.logger = None

    def _due(self, engine: Engine) -> bool:
        return engine.state.iteration == 1 or engine.state.iteration % self.interval == 0

    def _start(self, engine: Engine) -> None:
        if self._due(engine):
            self._recorder = ActivationRecorder(self.network, self.layers).__enter__()

    def __call__(self, engine: Engine) -> None:
        """At the end of a due iteration (gradients still populated): collect the statistics."""
        if self._recorder is None:
            return
        self._recorder.__exit__(None, None, None)
        stats = {"iteration": float(engine.state.iteration)}
        for name, m in self.layers:
            if name not in self._recorder.stats:
                continue
            stats[f"layers/{name}/gain"] = self._recorder.stats[name]["gain"]
            grad = m.weight.grad
            if grad is not None:
                stats[f"layers/{name}/grad_to_weight"] = float(grad.norm() / m.weight.detach().norm().clamp_min(1e-12))
        self._recorder = None
        self.latest = stats
        self.history.append(stats)

    def attach(self, engine: Engine) -> None:
        """Register the recorder and Ignite's TensorBoard handlers on the trainer (once)."""
        if engine.has_event_handler(self._start, Events.ITERATION_STARTED):
            return
        engine.add_event_handler(Events.ITERATION_STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        due = Events.ITERATION_COMPLETED(event_filter=lambda _, i: i == 1 or i % self.interval == 0)
        self.logger = tb.TensorboardLogger(log_dir=self.log_dir)
        model = getattr(self.network, "module", self.network)
        self.logger.attach(engine, tb.WeightsScalarHandler(model, reduction=torch.norm), event_name=due)
        self.logger.attach(engine, tb.GradsScalarHandler(model, reduction=torch.norm), event_name=due)
        stats_out = tb.OutputHandler(
            tag="train", output_transform=lambda _: {k: v for k, v in self.latest.items() if k != "iteration"}
        )
        self.logger.attach(engine, stats_out, event_name=due)
        engine.add_event_handler(Events.COMPLETED, lambda _: self.logger.close())
