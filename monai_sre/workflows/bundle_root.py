"""Locate a bundle's root folder from inside its config, whatever the working directory.

MONAI's ``ConfigParser`` has no ``__file__`` for a config, and ``"bundle_root": "."`` only works when the command runs
inside the bundle folder. :func:`find_bundle_root` asks the running MONAI workflow which config it parsed, so both
``python -m monai.bundle run training --config_file bundles/sre_r3d/configs/train.json`` (repository root) and
``python -m monai.bundle run training --config_file configs/train.json`` (bundle folder) resolve the same folder.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["find_bundle_root", "config_paths_in_stack"]

logger = logging.getLogger(__name__)


def _as_paths(value: object) -> list[Path]:
    if isinstance(value, (str, os.PathLike)):
        text = str(value)
        if text.startswith("[") and text.endswith("]"):  # a list given as one command-line string
            import ast

            try:
                return _as_paths(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                return []
        return [Path(text)]
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [p for v in value for p in _as_paths(v)]
    return []


def config_paths_in_stack() -> list[Path]:
    """Config files of the MONAI bundle call that is parsing us, innermost first.

    Looks up the call stack for a ``ConfigWorkflow`` (its ``config_root_path``) or a ``config_file`` argument
    (``monai.bundle`` ``run``, ``ckpt_export``, ...). Only existing files/folders are returned, made absolute.
    """
    from monai.bundle import ConfigWorkflow

    found: list[Path] = []
    frame = inspect.currentframe()
    try:
        while frame is not None:
            local = frame.f_locals
            owner = local.get("self")
            if isinstance(owner, ConfigWorkflow):
                found.append(Path(owner.config_root_path) / "__config__")
            elif "config_file" in local:
                found.extend(_as_paths(local["config_file"]))
            frame = frame.f_back
    finally:
        del frame
    out = []
    for p in found:
        parent = p.parent.resolve()
        if parent.is_dir() and parent not in out:
            out.append(parent)
    return out


def _root_of(config_dir: Path) -> Path:
    return config_dir.parent if config_dir.name == "configs" else config_dir


def find_bundle_root(name: str | None = None) -> str:
    """Absolute path of the bundle folder (the parent of its ``configs/``).

    Search order: the config folder of the MONAI workflow or command currently parsing the config (see
    :func:`config_paths_in_stack`); the working directory if it is the bundle (it holds ``configs/metadata.json``
    and, when ``name`` is given, is called ``name``); ``./bundles/<name>``; ``bundles/<name>`` next to the installed
    ``monai_sre`` package (an editable install of this repository).

    Args:
        name: bundle folder name, e.g. ``"sre_r3d"``; used to check candidates and for the fallbacks.

    Returns:
        absolute path as a string.

    Raises:
        FileNotFoundError: if no candidate holds ``configs/metadata.json``.

    Example:
        In a bundle config: ``"bundle_root": "$monai_sre.workflows.find_bundle_root('sre_r3d')"``.
    """

    def _ok(root: Path) -> bool:
        return (root / "configs" / "metadata.json").is_file() and (name is None or root.name == name)

    for config_dir in config_paths_in_stack():
        root = _root_of(config_dir)
        if _ok(root):
            return str(root)
    cwd = Path.cwd()
    candidates = [cwd]
    if name is not None:
        import monai_sre

        candidates += [cwd / "bundles" / name, Path(monai_sre.__file__).resolve().parents[1] / "bundles" / name]
    for root in candidates:
        if _ok(root):
            return str(root.resolve())
    raise FileNotFoundError(
        f"Cannot find the bundle root of {name or 'this bundle'!r}: no configs/metadata.json in the parsed config's "
        f"folder, in {cwd} or in {[str(c) for c in candidates[1:]]}. Pass --bundle_root <path>."
    )
