"""Classification task pieces shared by the handlers and the bundle configs: task strings, post-processing of
logits into scores, and the output transform that feeds Ignite ``Accuracy`` and MONAI ``ROCAUC``.

Each picks its behaviour from the MedMNIST ``task`` string returned by :func:`monai_sre.data.dataset_info`, so the
same code serves multi-class, binary and multi-label (ChestMNIST) tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.transforms import Activationsd, Compose

__all__ = ["MULTI_LABEL", "TASKS", "check_task", "is_multilabel", "classification_postprocessing", "ClassificationOutput"]

MULTI_LABEL = "multi-label, binary-class"
TASKS = ("multi-class", "binary-class", "ordinal-regression", MULTI_LABEL)


def check_task(task: str) -> str:
    """``task`` itself if it is a MedMNIST task string; a ``ValueError`` naming it otherwise."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    return task


def is_multilabel(task: str) -> bool:
    """True for MedMNIST's ``"multi-label, binary-class"`` (ChestMNIST)."""
    return check_task(task) == MULTI_LABEL


def classification_postprocessing(task: str, key: str = "pred") -> Compose:
    """Logits -> scores: sigmoid for multi-label tasks, softmax otherwise (per decollated item)."""
    multilabel = is_multilabel(task)
    return Compose([Activationsd(keys=key, sigmoid=multilabel, softmax=not multilabel)])


class ClassificationOutput:
    """Ignite ``output_transform`` turning MONAI's decollated engine output into ``(y_pred, y)`` tensors.

    Args:
        task: MedMNIST task string.
        mode: ``"acc"`` for :class:`ignite.metrics.Accuracy` (scores + class indices, or thresholded multi-label),
            ``"auc"`` for :class:`monai.handlers.ROCAUC` (scores + one-hot labels).
        num_classes: number of classes (for one-hot labels in ``"auc"`` mode).
        threshold: multi-label decision threshold.

    Raises:
        ValueError: for an unknown ``mode`` or ``task``.
    """

    def __init__(self, task: str, mode: str = "acc", num_classes: int | None = None, threshold: float = 0.5) -> None:
        if mode not in ("acc", "auc"):
            raise ValueError(f"mode must be 'acc' or 'auc', got {mode!r}.")
        if mode == "auc" and not is_multilabel(task) and not num_classes:
            raise ValueError(f"num_classes is required for mode='auc' with task {task!r}, got {num_classes!r}.")
        self.multilabel = is_multilabel(task)
        self.mode = mode
        self.num_classes = num_classes
        self.threshold = threshold

    def __call__(self, output: Any) -> tuple[torch.Tensor, torch.Tensor]:
        items: Sequence[dict] = [output] if isinstance(output, dict) else output
        pred = torch.stack([torch.as_tensor(d["pred"]).float().reshape(-1) for d in items])
        label = torch.stack([torch.as_tensor(d["label"]).reshape(-1) for d in items])
        if self.multilabel:
            if self.mode == "acc":
                return (pred > self.threshold).long(), label.long()
            return pred, label.float()
        label = label[:, 0].long()
        if self.mode == "acc":
            return pred, label
        return pred, torch.nn.functional.one_hot(label, int(self.num_classes)).float()
