"""The log file of a training run: the bundles' ``logging.conf`` reserves it, :func:`log_to_run` opens it in the run
folder once the folder is known."""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["RUN_LOG", "VALIDATION_LOGGER", "log_to_run"]

#: name of the handler that ``logging.conf`` declares (a ``NullHandler``) where the run log is to be written
RUN_LOG = "runLog"
#: the logger of a training's validation engine; the bundles' ``logging.conf`` sends it to the run log only
VALIDATION_LOGGER = "monai_sre.validation"
#: the run log's file name in the run folder
_FILE_NAME = "train.log"


def log_to_run(run_dir: str | os.PathLike, evaluator: Any = None) -> list[str]:
    """Open the run log ``run_dir/train.log`` where the logging configuration reserved it, and give a training's
    validation engine the logger :data:`VALIDATION_LOGGER`.

    A logging configuration is read before the bundle config has resolved its run folder, so ``logging.conf``
    declares the run log as a ``NullHandler`` named :data:`RUN_LOG`; this call replaces it, on the root logger and
    on :data:`VALIDATION_LOGGER`, with a file handler of the same level and format that appends to the file (a
    resumed run continues its log). Ignite logs a few lines per validation that repeat what the epoch line says:
    the bundles' ``logging.conf`` sends the validation logger to the run log and not to the console. An
    evaluation's own engine keeps its logger, so its results still reach the console. Without such a logging
    configuration (``--logging_file False``, tests) no file is written.

    Args:
        run_dir: the run folder.
        evaluator: the training's validation engine, or None.

    Returns:
        the log files opened.

    Raises:
        TypeError: if ``evaluator`` is not None and has no ``logging.Logger`` as its ``logger``.

    Example:
        In a training config, before the trainer runs: ``"$monai_sre.workflows.log_to_run(@output_dir,
        @validate#evaluator)"``.
    """
    if evaluator is not None:
        if not isinstance(getattr(evaluator, "logger", None), logging.Logger):
            raise TypeError(f"evaluator must be an Ignite engine (with a logger), got {type(evaluator).__name__}.")
        evaluator.logger = logging.getLogger(VALIDATION_LOGGER)
    path = os.path.join(os.fspath(run_dir), _FILE_NAME)
    opened: dict[str, logging.Handler] = {}
    for logger in (logging.getLogger(), logging.getLogger(VALIDATION_LOGGER)):
        for i, handler in enumerate(list(logger.handlers)):
            if handler.name != RUN_LOG or getattr(handler, "baseFilename", None) == os.path.abspath(path):
                continue
            if path not in opened:
                os.makedirs(os.fspath(run_dir), exist_ok=True)
                opened[path] = logging.FileHandler(path, mode="a", encoding="utf-8")
                opened[path].name = RUN_LOG
                opened[path].setLevel(handler.level)
                opened[path].setFormatter(handler.formatter)
            logger.handlers[i] = opened[path]
            handler.close()
    return list(opened)
