"""Small classification pieces the bundle configs call: the loss and the run folder name.

The task strings, post-processing and metric output transforms live in :mod:`monai_sre.handlers.classification`
(the handlers use them too) and are re-exported here for the configs.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from monai_sre.handlers.classification import (
    MULTI_LABEL,
    ClassificationOutput,
    classification_postprocessing,
    is_multilabel,
)

__all__ = [
    "MULTI_LABEL",
    "is_multilabel",
    "ClassificationLoss",
    "classification_postprocessing",
    "ClassificationOutput",
    "run_name",
]


class ClassificationLoss(torch.nn.Module):
    """Cross-entropy for single-label tasks, binary cross-entropy with logits for multi-label tasks.

    Accepts MedMNIST labels as ``(B,)`` or ``(B, 1)`` class indices, or ``(B, K)`` multi-hot vectors.

    Args:
        task: MedMNIST task string.
        label_smoothing: passed to :class:`torch.nn.CrossEntropyLoss` (single-label only).

    Example:
        >>> loss = ClassificationLoss("multi-class")
        >>> loss(torch.randn(4, 3), torch.tensor([[0], [2], [1], [1]])).shape
        torch.Size([])
    """

    def __init__(self, task: str, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.multilabel = is_multilabel(task)
        self.loss = torch.nn.BCEWithLogitsLoss() if self.multilabel else torch.nn.CrossEntropyLoss(
            label_smoothing=label_smoothing
        )

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = torch.as_tensor(label, device=logits.device)
        if self.multilabel:
            return self.loss(logits, label.reshape(logits.shape).to(logits.dtype))
        return self.loss(logits, label.reshape(-1).long())


def run_name(*parts: Any) -> str:
    """Folder name for a run from its dataset (a name or a datalist path) and network name, e.g. ``synthetic3d``."""
    names = [os.path.splitext(os.path.basename(os.path.normpath(str(p))))[0] for p in parts if p]
    return "_".join(n for n in names if n) or "run"
