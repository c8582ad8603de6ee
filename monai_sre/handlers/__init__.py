"""Ignite handlers: atomic checkpoints and resume, per-epoch summary, rotated evaluation, prediction CSVs."""

from __future__ import annotations

from .checkpoint import AtomicDiskSaver, ResumeFromCheckpoint, SRECheckpointSaver
from .epoch_summary import EpochSummary
from .prediction_writer import PredictionWriter
from .rotation_sweep import RotationSweep, make_views, rotation_sweep, summarize_sweep, write_sweep

__all__ = [
    "AtomicDiskSaver",
    "EpochSummary",
    "PredictionWriter",
    "ResumeFromCheckpoint",
    "RotationSweep",
    "SRECheckpointSaver",
    "make_views",
    "rotation_sweep",
    "summarize_sweep",
    "write_sweep",
]
