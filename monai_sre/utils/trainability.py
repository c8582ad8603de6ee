"""Per-layer statistics that show whether a network can train: activation gain and gradient-to-weight ratio.

A layer whose output standard deviation is many times its input's, or whose weight gradient is many times the weight
itself, makes plain SGD either explode or freeze (with BatchNorm after it, a huge relative step inflates the weight
norm and the effective learning rate then collapses). ``docs/experiments.md`` uses these numbers to compare SRE
layers with standard convolutions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

from monai_sre.blocks.sre_conv import SREConvBase

__all__ = ["ActivationRecorder", "tracked_layers", "layer_statistics"]

_LAYER_TYPES = (SREConvBase, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                nn.ConvTranspose3d, nn.Linear)


def tracked_layers(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolutions (SRE or standard) and linear layers of ``network``, by qualified name."""
    return [(name, m) for name, m in network.named_modules() if isinstance(m, _LAYER_TYPES)]


class ActivationRecorder:
    """Context manager recording input and output standard deviation of every tracked layer during a forward pass.

    Example::

        >>> with ActivationRecorder(net) as rec:
        ...     net(x)
        >>> rec.stats["stem.0"]  # {"in_std": ..., "out_std": ..., "gain": out_std / in_std}
    """

    def __init__(self, network: nn.Module, layers: Iterable[tuple[str, nn.Module]] | None = None) -> None:
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        self.layers = list(tracked_layers(network) if layers is None else layers)
        self.stats: dict[str, dict[str, float]] = {}
        self._handles: list = []

    def _hook(self, name: str) -> Callable:
        def hook(module, inputs, output):
            x = inputs[0].detach()
            y = output.detach()
            in_std, out_std = float(x.float().std()), float(y.float().std())
            self.stats[name] = {"in_std": in_std, "out_std": out_std, "gain": out_std / max(in_std, 1e-12)}

        return hook

    def __enter__(self) -> ActivationRecorder:
        self.stats = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def layer_statistics(
    network: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
) -> list[dict[str, float | str]]:
    """One forward and backward pass in training mode; per tracked layer: activation gain and ``|grad W| / |W|``.

    Args:
        network: the model (left in training mode with gradients populated; zero them before training on).
        inputs: a batch ``(B, C, *spatial)``.
        targets: what ``loss_fn`` compares the output with.
        loss_fn: ``(output, targets) -> scalar``.

    Returns:
        Rows ``{"layer", "type", "in_std", "out_std", "gain", "grad_to_weight"}`` in module order.
    """
    network.train()
    network.zero_grad(set_to_none=True)
    with ActivationRecorder(network) as rec:
        loss = loss_fn(network(inputs), targets)
    loss.backward()
    rows = []
    for name, m in rec.layers:
        if name not in rec.stats:
            continue
        w, g = m.weight.detach(), m.weight.grad
        ratio = float(g.norm() / w.norm().clamp_min(1e-12)) if g is not None else float("nan")
        rows.append({"layer": name, "type": type(m).__name__, **rec.stats[name], "grad_to_weight": ratio})
    return rows
