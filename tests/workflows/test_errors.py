"""The error hook of the bundle configs: a refusal is printed as its one message, last, with exit status 1 (the real
command line: tests/bundles/test_run_record.py)."""

from __future__ import annotations

import sys

from monai_sre.workflows import SettingError, install_error_hook, refusal
from monai_sre.workflows import errors as errors_module


def _wrapped(err: BaseException) -> RuntimeError:
    """``err`` wrapped as MONAI's config parser does (``raise RuntimeError(...) from err``), twice."""
    try:
        try:
            try:
                raise err
            except Exception as inner:
                raise RuntimeError("Failed to evaluate ConfigExpression: ...\n" * 20) from inner
        except Exception as middle:
            raise RuntimeError("Failed to instantiate ...") from middle
    except RuntimeError as outer:
        return outer


def _raised_by_the_package() -> ValueError:
    from monai_sre.transforms import classification_transforms

    try:
        classification_transforms(3, augment="maybe")
    except ValueError as err:
        return err
    raise AssertionError("classification_transforms accepted augment='maybe'")


def test_refusal_finds_our_error_under_the_config_parser_wrappers():
    setting = SettingError("--epochs 0: expected an integer >= 1.")
    assert refusal(_wrapped(setting)) is setting
    ours = _raised_by_the_package()
    assert refusal(_wrapped(ours)) is ours


def test_our_message_about_a_library_error_is_the_refusal():
    from monai_sre.data import NiftiDataset

    dataset = NiftiDataset([{"image": __file__}], transform=lambda item: 1 / 0)
    try:
        dataset[0]
    except RuntimeError as err:
        ours = err
    assert isinstance(ours.__cause__.__cause__, ZeroDivisionError)  # under MONAI's "applying transform" wrapper
    assert refusal(_wrapped(ours)) is ours and "failed to load or transform" in str(ours)


def test_other_errors_keep_their_traceback():
    assert refusal(_wrapped(KeyError("x"))) is None
    assert refusal(_wrapped(ValueError("raised outside the package"))) is None


def test_the_hook_prints_the_message_last(capsys, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.delenv(errors_module.TRACEBACK_VARIABLE, raising=False)
    install_error_hook()
    install_error_hook()  # idempotent
    err = _wrapped(SettingError("--epochs 0: expected an integer >= 1."))
    sys.excepthook(type(err), err, err.__traceback__)
    assert capsys.readouterr().err == "SettingError: --epochs 0: expected an integer >= 1.\n"
    monkeypatch.setenv(errors_module.TRACEBACK_VARIABLE, "1")
    sys.excepthook(type(err), err, err.__traceback__)
    text = capsys.readouterr().err
    assert "Traceback" in text and text.endswith("SettingError: --epochs 0: expected an integer >= 1.\n")
    other = _wrapped(KeyError("x"))
    sys.excepthook(type(other), other, other.__traceback__)
    assert capsys.readouterr().err.rstrip().endswith("RuntimeError: Failed to instantiate ...")
