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
from .overrides import as_bool
from .seeding import seed_everything
from .settings import FROM_CHECKPOINT, configured, trained_settings

__all__ = [
    "FROM_CHECKPOINT",
    "IMAGE_SUFFIXES",
    "InferenceDataset",
    "MULTI_LABEL",
    "ClassificationLoss",
    "ClassificationOutput",
    "as_bool",
    "classification_postprocessing",
    "configured",
    "export_images",
    "find_bundle_root",
    "image_datalist",
    "is_multilabel",
    "output_names",
    "run_name",
    "seed_everything",
    "shutdown_distributed",
    "trained_settings",
]
