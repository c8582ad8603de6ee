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
from .errors import SettingError, install_error_hook, refusal
from .inference import IMAGE_SUFFIXES, InferenceDataset, export_images, image_datalist, output_names
from .overrides import RUN_ARGUMENTS, check_switches
from .run_log import RUN_LOG, VALIDATION_LOGGER, log_to_run
from .settings import BUNDLE_FOR, SETTING_RULES, check_network, check_settings, check_writable, network_kind
from .runs import data_fingerprint, trained_record

__all__ = [
    "IMAGE_SUFFIXES",
    "InferenceDataset",
    "MULTI_LABEL",
    "RUN_ARGUMENTS",
    "BUNDLE_FOR",
    "SETTING_RULES",
    "SettingError",
    "RUN_LOG",
    "VALIDATION_LOGGER",
    "ClassificationLoss",
    "ClassificationOutput",
    "check_network",
    "check_settings",
    "check_switches",
    "check_writable",
    "classification_postprocessing",
    "data_fingerprint",
    "export_images",
    "find_bundle_root",
    "image_datalist",
    "install_error_hook",
    "is_multilabel",
    "log_to_run",
    "network_kind",
    "output_names",
    "refusal",
    "run_name",
    "shutdown_distributed",
    "trained_record",
]
