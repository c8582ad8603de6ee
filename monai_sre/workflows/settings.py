"""Every user-settable switch of a bundle checked before anything trains, with one message naming the switch, the
value given and what is expected.

A bundle's ``train.json`` lists its switches once under ``settings`` (``{"epochs": "@epochs", ...}``) and its
``initialize`` calls :func:`check_settings` on them before any data is read or network built, then
:func:`check_network` (the network name fits the bundle's task and dimension). Its ``training`` calls
:func:`check_writable` on the folders it will write before it takes the run folder's lock. Each raises a
:class:`~monai_sre.workflows.SettingError`, which the bundle's error hook prints as one line.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from monai_sre.data import BUNDLE_FOR_DIMS
from monai_sre.handlers import SCHEDULES
from monai_sre.nets import canonical_name, get_model, list_models, list_segmentation_models
from monai_sre.transforms import FIELDS_OF_VIEW

from .errors import SettingError

__all__ = ["BUNDLE_FOR", "SETTING_RULES", "check_network", "check_settings", "check_writable", "network_kind"]

#: the bundle for each (task, spatial dimensions) of a network
BUNDLE_FOR = {
    **{("classification", dims): bundle for dims, bundle in BUNDLE_FOR_DIMS.items()},
    ("segmentation", 3): "bundles/sre_unet3d",
}

#: a rule returns None for a good value, else what is expected (a phrase to follow "expected")
Rule = Callable[[Any, Mapping[str, Any]], "str | None"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def _integer(low: int | None = None, high: int | None = None) -> Rule:
    def rule(value: Any, context: Mapping[str, Any]) -> str | None:
        ok = _is_int(value) and (low is None or value >= low) and (high is None or value <= high)
        return None if ok else f"an integer {_bounds(low, high, False, False)}".rstrip()

    return rule


def _number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False
            ) -> Rule:
    def rule(value: Any, context: Mapping[str, Any]) -> str | None:
        ok = _is_number(value) and (low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high))
        return None if ok else f"a number {_bounds(low, high, low_open, high_open)}".rstrip()

    return rule


def _optional(rule: Rule) -> Rule:
    def optional(value: Any, context: Mapping[str, Any]) -> str | None:
        expected = None if value is None else rule(value, context)
        return None if expected is None else f"null or {expected}"

    return optional


def _choice(*options: Any) -> Rule:
    def rule(value: Any, context: Mapping[str, Any]) -> str | None:
        ok = any(value == o and type(value) is type(o) for o in options)
        return None if ok else "one of " + ", ".join(repr(o) for o in options)

    return rule


def _text(value: Any, context: Mapping[str, Any]) -> str | None:
    return None if isinstance(value, (str, os.PathLike)) and os.fspath(value) else "a non-empty text or path"


def _boolean(value: Any, context: Mapping[str, Any]) -> str | None:
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false")):
        return None
    return "true or false (any case)"


def _mapping(value: Any, context: Mapping[str, Any]) -> str | None:
    return None if isinstance(value, Mapping) else "a dict of keyword arguments"


def _positive_integers(value: Any, context: Mapping[str, Any]) -> str | None:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0 and all(
        _is_int(v) and v >= 1 for v in value)
    return None if ok else "a non-empty list of integers >= 1"


def _intensity_range(value: Any, context: Mapping[str, Any]) -> str | None:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        _is_number(v) for v in value) and value[0] < value[1]
    return None if ok else "a list [low, high] of two numbers with low < high"


def _per_dim(value: Any, context: Mapping[str, Any]) -> str | None:
    """None, a positive number, or one per spatial dimension (``pixdim``)."""
    if value is None:
        return None
    dims = context.get("spatial_dims")
    values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    ok = all(_is_number(v) and v > 0 for v in values) and (values is not value or dims is None or len(values) == dims)
    what = f"{dims} numbers > 0 (one per spatial dimension)" if dims else "numbers > 0, one per spatial dimension"
    return None if ok else f"null, a number > 0, or a list of {what}"


def _fold(value: Any, context: Mapping[str, Any]) -> str | None:
    folds = context.get("num_folds")
    high = folds - 1 if _is_int(folds) else None
    return _optional(_integer(0, high))(value, context)


def _spatial_dims(value: Any, context: Mapping[str, Any]) -> str | None:
    dims = context.get("bundle_dims")
    return None if dims is None or (_is_int(value) and value == dims) else f"{dims} (this bundle's data is {dims}D)"


def _device(value: Any, context: Mapping[str, Any]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"cuda:{value}"
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        return "a torch device such as 'cpu' or 'cuda:0'"
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "'cpu': no CUDA GPU is available here"
        if (device.index or 0) >= count:
            return f"'cpu' or one of cuda:0..cuda:{count - 1} ({count} CUDA GPUs here)"
    elif device.type != "cpu" and device.type != getattr(torch.accelerator.current_accelerator(), "type", None):
        return f"'cpu' or an accelerator of this machine, not {device.type!r}"
    return None


#: switch -> rule; a bundle checks the switches it lists under ``settings``
SETTING_RULES: dict[str, Rule] = {
    # data
    "dataset": _text,
    "data_root": _optional(_text),
    "download": _boolean,
    "num_folds": _integer(2),
    "fold": _fold,
    "size": _integer(1),
    "input_size": _optional(_integer(1)),
    "num_classes": _optional(_integer(2)),
    "spatial_dims": _spatial_dims,
    "in_channels": _integer(1),
    # preprocessing and augmentation
    "intensity_range": _intensity_range,
    "augment": _boolean,
    "rotate_augment": _boolean,
    "blur": _optional(_number(0.0, 8.0, high_open=True)),
    "field_of_view": _choice(*FIELDS_OF_VIEW),
    "pixdim": _per_dim,
    # network
    "network_name": _text,
    "widths": _positive_integers,
    "features": _positive_integers,
    "input_smoothing": _optional(_number(0.0, low_open=True)),
    "sre_kwargs": _optional(_mapping),
    # optimisation and schedule
    "epochs": _integer(1),
    "schedule": _choice(*SCHEDULES),
    "lr_factor": _number(0.0, 1.0, low_open=True, high_open=True),
    "lr_patience": _integer(0),
    "lr_threshold": _number(0.0),
    "lr_reductions": _integer(0),
    "patience": _optional(_integer(1)),
    "min_delta": _number(0.0),
    "batch_size": _integer(1),
    "learning_rate": _number(0.0, low_open=True),
    "momentum": _number(0.0, 1.0, high_open=True),
    "weight_decay": _number(0.0),
    "val_interval": _integer(1),
    "seed": _optional(_integer(0, 2**32 - 1)),
    # running
    "num_workers": _integer(0),
    "device": _device,
    "amp": _boolean,
    "resume": _boolean,
    "progress_bar": _boolean,
    "output_dir": _text,
    "override_preprocessing": _boolean,
    "sw_batch_size": _integer(1),
    "overlap": _number(0.0, 1.0, high_open=True),
}


def check_settings(settings: Mapping[str, Any], spatial_dims: int | None = None) -> None:
    """Check each switch of ``settings`` against :data:`SETTING_RULES`, all problems in one message.

    Args:
        settings: ``{switch: value}`` as the config holds them (after the command line's overrides).
        spatial_dims: the bundle's number of spatial dimensions (the length of per-dimension values such as
            ``pixdim``, and the only ``spatial_dims`` it accepts); None: not fixed.

    Raises:
        SettingError: naming each wrong switch, the value given and what is expected, e.g. ``--epochs 0: expected
            an integer >= 1``.
        KeyError: for a switch without a rule (a config listing a switch this module does not know).

    Example:
        In ``train.json``: ``"initialize": [..., "$monai_sre.workflows.check_settings(@settings, 3)", ...]``.
    """
    unknown = sorted(set(settings) - set(SETTING_RULES))
    if unknown:
        raise KeyError(f"check_settings: no rule for {unknown}; add one to monai_sre.workflows.SETTING_RULES.")
    context = {**settings, "bundle_dims": spatial_dims, "spatial_dims": spatial_dims}
    problems = []
    for name, value in settings.items():
        expected = SETTING_RULES[name](value, context)
        if expected is not None:
            problems.append(f"--{name} {value!r}: expected {expected}")
    if problems:
        raise SettingError("; ".join(problems) + ".")


def network_kind(name: str) -> tuple[str, int | None] | None:
    """``(task, spatial_dims)`` of a registered network name: ``("classification", 2 or 3)``, or
    ``("segmentation", None)`` (segmentation networks take ``spatial_dims`` as an argument); None if unknown. A
    renamed network's old name (:data:`monai_sre.nets.RENAMED`) is its new name's, with a ``FutureWarning``."""
    name = canonical_name(name)
    if name in list_segmentation_models():
        return "segmentation", None
    if name in list_models():
        return "classification", get_model(name, widths=[1, 1, 1, 1]).spatial_dims
    return None


def _names(task: str, spatial_dims: int) -> list[str]:
    if task == "segmentation":
        return list_segmentation_models()
    return [n for n in list_models() if network_kind(n) == (task, spatial_dims)]


def check_network(name: Any, spatial_dims: int, task: str = "classification", switch: str = "network_name") -> None:
    """Refuse a network name this bundle cannot train: unknown, of the other task, or of another dimension.

    Args:
        name: the configured network name.
        spatial_dims: the bundle's number of spatial dimensions.
        task: the bundle's task, ``"classification"`` or ``"segmentation"``.
        switch: the config id, for the message.

    Raises:
        SettingError: naming the switch, the value, the networks this bundle takes and the bundle for that network.
    """
    kind = network_kind(name) if isinstance(name, str) else None
    if kind is not None and kind[0] == task and kind[1] in (None, spatial_dims):
        return
    expected = f"one of {', '.join(_names(task, spatial_dims))} ({spatial_dims}D {task} networks)"
    if kind is None:
        raise SettingError(f"--{switch} {name!r}: expected {expected}; {name!r} is not a registered network.")
    held_task, held_dims = kind[0], kind[1] or spatial_dims
    what = f"a {held_dims}D {held_task} network" if held_task == "classification" else f"a {held_task} network"
    where = BUNDLE_FOR.get((held_task, held_dims))
    raise SettingError(f"--{switch} {name!r} is {what}, but this bundle trains {spatial_dims}D {task} networks: "
                       f"expected {expected}" + (f"; use {where} for {name!r}." if where else "."))


def check_writable(folders: Mapping[str, str | os.PathLike]) -> None:
    """Create each folder (if missing) and write a temporary file into it, so a run that could not save its
    checkpoints or logs fails before its first epoch.

    Args:
        folders: ``{switch: folder}``, e.g. ``{"ckpt_dir": ".../models", "log_dir": ".../tensorboard"}``.

    Raises:
        SettingError: naming the switch, the folder and why it cannot be written.
    """
    for switch, folder in folders.items():
        path = os.path.abspath(os.fspath(folder))
        try:
            os.makedirs(path, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as err:
            other = f"another --{switch}" + ("" if switch == "output_dir" else " (or --output_dir)")
            raise SettingError(
                f"--{switch} {path} is not a writable folder ({type(err).__name__}: {err.strerror or err}): the run "
                f"could not save into it. Make it writable, or choose {other}."
            ) from None
