"""Output transform that feeds the raw network outputs (logits) and labels to a loss metric such as Ignite ``Loss``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["LogitsOutput"]


class LogitsOutput:
    """Ignite ``output_transform`` turning MONAI's decollated engine output into ``(logits, labels)`` batch tensors.

    The evaluator's post-processing turns ``"pred"`` into scores (softmax or sigmoid), so a loss on the logits needs
    them kept under another key first, e.g. by ``CopyItemsd(keys="pred", names="logits")`` at the start of the
    post-processing. With :class:`~monai_sre.workflows.ClassificationLoss` as the loss function, Ignite ``Loss``
    then gives the validation loss the trainer minimises, for multi-class, binary and multi-label tasks alike
    (the loss reshapes the labels to its task).

    Args:
        key: item key of the logits, ``(K,)`` per item.
        label_key: item key of the label: a class index ``(1,)`` or a multi-hot vector ``(K,)`` per item.

    Raises:
        ValueError: if ``key`` or ``label_key`` is not a non-empty string.
        KeyError: when called, if an item lacks ``key`` or ``label_key`` (the message lists the keys it has).

    Example:
        >>> out = [{"logits": torch.tensor([2.0, -1.0]), "label": torch.tensor([0])}] * 3
        >>> logits, labels = LogitsOutput()(out)
        >>> logits.shape, labels.shape
        (torch.Size([3, 2]), torch.Size([3, 1]))
    """

    def __init__(self, key: str = "logits", label_key: str = "label") -> None:
        for name, value in (("key", key), ("label_key", label_key)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
        self.key = key
        self.label_key = label_key

    def __call__(self, output: Any) -> tuple[torch.Tensor, torch.Tensor]:
        items: Sequence[dict] = [output] if isinstance(output, dict) else output
        for item in items[:1]:
            missing = [k for k in (self.key, self.label_key) if k not in item]
            if missing:
                raise KeyError(
                    f"engine output has no {missing} (it has {sorted(item)}); keep the logits under {self.key!r}, "
                    f"e.g. with CopyItemsd(keys='pred', names={self.key!r}) before the post-processing activation."
                )
        logits = torch.stack([torch.as_tensor(d[self.key]).float().reshape(-1) for d in items])
        labels = torch.stack([torch.as_tensor(d[self.label_key]).reshape(-1) for d in items])
        return logits, labels
