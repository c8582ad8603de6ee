"""Ignite handlers: atomic checkpoints and resume, per-epoch summary, rotated evaluation, prediction CSVs."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, ResumeFromCheckpoint, SRECheckpointLoader, SRECheckpointSaver, read_checkpoint
from .epoch_seed import EpochSeeder
from .epoch_summary import EpochSummary
from .prediction_writer import PredictionWriter
from .rotation_sweep import RotationSweep, make_views, rotation_sweep, summarize_sweep, write_sweep

__all__ = [
    "AtomicDiskSaver",
    "EpochSeeder",
    "EpochSummary",
    "PredictionWriter",
    "ResumeFromCheckpoint",
    "RotationSweep",
    "SRECheckpointLoader",
    "SRECheckpointSaver",
    "make_views",
    "read_checkpoint",
    "rotation_sweep",
    "summarize_sweep",
    "write_sweep",
]
