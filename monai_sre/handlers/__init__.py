"""Ignite handlers: atomic checkpoints and resume, per-epoch summary, rotated evaluation, prediction CSVs."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, ResumeFromCheckpoint, SRECheckpointLoader, SRECheckpointSaver, read_checkpoint
from .epoch_seed import EpochSeeder
from .epoch_summary import EpochSummary
from .layer_stats import LayerStatsHandler
from .prediction_writer import PredictionWriter
from .rotation_sweep import RotationSweep, make_views, rotation_sweep, summarize_sweep, write_sweep
from .segmentation_sweep import (
    SegmentationRotationSweep,
    dice_per_class,
    segmentation_sweep,
    summarize_segmentation_sweep,
    write_segmentation_sweep,
)

__all__ = [
    "AtomicDiskSaver",
    "EpochSeeder",
    "EpochSummary",
    "LayerStatsHandler",
    "PredictionWriter",
    "ResumeFromCheckpoint",
    "RotationSweep",
    "SRECheckpointLoader",
    "SRECheckpointSaver",
    "SegmentationRotationSweep",
    "dice_per_class",
    "make_views",
    "read_checkpoint",
    "rotation_sweep",
    "segmentation_sweep",
    "summarize_segmentation_sweep",
    "summarize_sweep",
    "write_segmentation_sweep",
    "write_sweep",
]
