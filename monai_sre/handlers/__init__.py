"""Ignite handlers: checkpoint saving, loading and resume (the files and the run record are
:mod:`monai_sre.checkpoint`'s), the training schedule (plateau rule or cosine), per-epoch summary,
rotated evaluation, prediction CSVs, segmentation masks, and the classification post-processing and metric output
transforms they share with the configs."""

from __future__ import annotations

from .classification import (
    MULTI_LABEL,
    TASKS,
    ClassificationOutput,
    check_task,
    classification_postprocessing,
    is_multilabel,
)
from .checkpoint import ResumeFromCheckpoint, SRECheckpointLoader, SRECheckpointSaver
from .epoch_seed import EpochSeeder
from .epoch_summary import EpochSummary
from .layer_stats import LayerStatsHandler
from .logits_output import LogitsOutput
from .non_finite import NonFiniteLossError, StopOnNonFiniteLoss
from .prediction_writer import PredictionWriter
from .rotation_sweep import (
    RotationSweep,
    ViewBatch,
    rotation_sweep,
    summarize_sweep,
    write_sweep,
)
from .segmentation_writer import SegmentationWriter
from .segmentation_sweep import (
    SegmentationRotationSweep,
    SegmentationViewBatch,
    segmentation_dice,
    segmentation_sweep,
    summarize_segmentation_sweep,
    write_segmentation_sweep,
)
from .training_schedule import SCHEDULES, TrainingSchedule
from .view_sweep import ViewSweep, view_sweep, write_views

__all__ = [
    "MULTI_LABEL",
    "SCHEDULES",
    "TASKS",
    "ClassificationOutput",
    "EpochSeeder",
    "EpochSummary",
    "LayerStatsHandler",
    "LogitsOutput",
    "NonFiniteLossError",
    "PredictionWriter",
    "ResumeFromCheckpoint",
    "RotationSweep",
    "SRECheckpointLoader",
    "SRECheckpointSaver",
    "SegmentationRotationSweep",
    "SegmentationViewBatch",
    "SegmentationWriter",
    "StopOnNonFiniteLoss",
    "TrainingSchedule",
    "ViewBatch",
    "ViewSweep",
    "check_task",
    "classification_postprocessing",
    "is_multilabel",
    "rotation_sweep",
    "view_sweep",
    "write_views",
    "segmentation_dice",
    "segmentation_sweep",
    "summarize_segmentation_sweep",
    "summarize_sweep",
    "write_segmentation_sweep",
    "write_sweep",
]
