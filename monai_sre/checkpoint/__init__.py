"""Checkpoint files and the run record: atomic writing, reading with errors that name the file, the record of what
decides a training run (written into the run folder and every checkpoint), and the lock of a run folder."""

from __future__ import annotations

from .files import (
    FixedNameDiskSaver,
    fits,
    mismatch_message,
    non_finite,
    read_checkpoint,
    read_record,
    remove_stale_temporaries,
)
from .lock import LOCK_FILE, RunLock
from .record import (
    GROUPS,
    LEGACY_KEY,
    RECORD_FILE,
    RENAMED_VALUES,
    ADDED_KEYS,
    RECORD_KEY,
    RunRecord,
    differing,
    flat_record,
    plain,
    record_of,
    resume_refusal,
)

__all__ = [
    "GROUPS",
    "LEGACY_KEY",
    "LOCK_FILE",
    "RECORD_FILE",
    "RENAMED_VALUES",
    "ADDED_KEYS",
    "RECORD_KEY",
    "FixedNameDiskSaver",
    "RunLock",
    "RunRecord",
    "differing",
    "fits",
    "flat_record",
    "mismatch_message",
    "non_finite",
    "plain",
    "read_checkpoint",
    "read_record",
    "record_of",
    "remove_stale_temporaries",
    "resume_refusal",
]
