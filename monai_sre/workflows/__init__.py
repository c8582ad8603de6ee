"""Python helpers called by the bundle configs (anything with a loop or a branch lives here, not in JSON)."""

from __future__ import annotations

from .bundle_root import find_bundle_root
from .classification import (
    MULTI_LABEL,
    ClassificationLoss,
    ClassificationOutput,
    classification_postprocessing,
    is_multilabel,
    run_name,
)
from .distributed import shutdown_distributed
from .inference import IMAGE_SUFFIXES, InferenceDataset, export_images, image_datalist, output_names
from .overrides import RUN_ARGUMENTS, as_bool, check_switches
from .seeding import seed_everything
from .runs import data_fingerprint, trained_record

__all__ = [
    "IMAGE_SUFFIXES",
    "InferenceDataset",
    "MULTI_LABEL",
    "RUN_ARGUMENTS",
    "ClassificationLoss",
    "ClassificationOutput",
    "as_bool",
    "check_switches",
    "classification_postprocessing",
    "data_fingerprint",
    "export_images",
    "find_bundle_root",
    "image_datalist",
    "is_multilabel",
    "output_names",
    "run_name",
    "seed_everything",
    "shutdown_distributed",
    "trained_record",
]
