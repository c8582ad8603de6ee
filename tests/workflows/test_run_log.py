"""The run log: logging.conf reserves it, log_to_run opens it in the run folder; the training's validation lines go
there and not to the console."""

from __future__ import annotations

import configparser
import io
import logging
from pathlib import Path

import pytest
from ignite.engine import Engine

from monai_sre.workflows import RUN_LOG, VALIDATION_LOGGER, log_to_run

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


@pytest.fixture
def configured():
    """Root and validation loggers set up as the bundles' logging.conf does, restored afterwards."""
    root, validation = logging.getLogger(), logging.getLogger(VALIDATION_LOGGER)
    saved = (list(root.handlers), root.level, list(validation.handlers), validation.level, validation.propagate)
    console = io.StringIO()
    stream = logging.StreamHandler(console)
    placeholders = [logging.NullHandler(), logging.NullHandler()]
    for handler in placeholders:
        handler.name = RUN_LOG
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.handlers = [stream, placeholders[0]]
    root.setLevel(logging.INFO)
    validation.handlers, validation.propagate = [placeholders[1]], False
    validation.setLevel(logging.INFO)
    yield console
    for handler in root.handlers + validation.handlers:
        if handler not in saved[0] and handler is not stream:
            handler.close()
    root.handlers, root.level = saved[0], saved[1]
    validation.handlers, validation.level, validation.propagate = saved[2], saved[3], saved[4]


def test_validation_lines_go_to_the_run_log_only(configured, tmp_path):
    evaluator = Engine(lambda e, b: None)
    logging.getLogger("before").info("logged before the run folder is known")  # not in the file
    assert log_to_run(tmp_path / "run", evaluator) == [str(tmp_path / "run" / "train.log")]
    assert evaluator.logger.name == VALIDATION_LOGGER
    evaluator.logger.info("Epoch[1] Complete")
    logging.getLogger("trainer").info("epoch 1, at most 2")
    text = (tmp_path / "run" / "train.log").read_text()
    assert text == f"{VALIDATION_LOGGER}: Epoch[1] Complete\ntrainer: epoch 1, at most 2\n"
    assert "Epoch[1]" not in configured.getvalue() and "epoch 1, at most 2" in configured.getvalue()
    log_to_run(tmp_path / "run")  # the same folder again: the same file, appended to
    logging.getLogger("trainer").info("resumed")
    assert (tmp_path / "run" / "train.log").read_text().endswith("trainer: resumed\n")


def test_without_the_placeholder_nothing_is_written(tmp_path):
    assert log_to_run(tmp_path / "run") == [] and not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match="evaluator must be an Ignite engine"):
        log_to_run(tmp_path, evaluator=object())


@pytest.mark.parametrize("bundle", ["sre_r3d", "sre_r18", "sre_unet3d"])
def test_every_bundle_reserves_the_run_log_and_routes_validation_there(bundle):
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(BUNDLES / bundle / "configs" / "logging.conf")
    assert conf[f"handler_{RUN_LOG}"]["class"] == "NullHandler"
    loggers = {conf[f"logger_{k}"].get("qualname", "root"): conf[f"logger_{k}"] for k in conf["loggers"]["keys"].split(",")}
    assert loggers[VALIDATION_LOGGER]["handlers"] == RUN_LOG and loggers[VALIDATION_LOGGER]["propagate"] == "0"
    assert RUN_LOG in loggers["root"]["handlers"].split(",")
