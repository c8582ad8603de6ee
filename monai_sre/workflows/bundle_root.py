"""The default ``bundle_root`` of our bundle configs, overridable the model-zoo way with ``--bundle_root``.

Model-zoo bundles set ``"bundle_root": "."`` and expect to be run from the bundle folder, or get ``--bundle_root``.
Ours default to :func:`find_bundle_root`, which also accepts the repository root, so both
``python -m monai.bundle run training --config_file bundles/sre_r3d/configs/train.json`` (repository root) and
``python -m monai.bundle run training --config_file configs/train.json`` (bundle folder) resolve the same folder.
Anywhere else, pass ``--bundle_root <path>``.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["find_bundle_root"]

logger = logging.getLogger(__name__)


def find_bundle_root(name: str | None = None) -> str:
    """Absolute path of the bundle folder (the folder holding ``configs/metadata.json``).

    Candidates, in order: the working directory (the bundle folder itself; when ``name`` is given it must be called
    ``name``); ``./bundles/<name>`` (the repository root); ``bundles/<name>`` of the repository the ``monai_sre``
    package is installed from (an editable install, for commands run from another folder).

    Args:
        name: bundle folder name, e.g. ``"sre_r3d"``.

    Returns:
        absolute path as a string.

    Raises:
        FileNotFoundError: if no candidate holds ``configs/metadata.json`` (the message lists them and names
            ``--bundle_root``).

    Example:
        In a bundle config: ``"bundle_root": "$monai_sre.workflows.find_bundle_root('sre_r3d')"``; on the command
        line ``--bundle_root /path/to/sre_r3d`` replaces it.
    """
    cwd = Path.cwd()
    candidates = [cwd]
    if name is not None:
        import monai_sre

        candidates += [cwd / "bundles" / name, Path(monai_sre.__file__).resolve().parents[1] / "bundles" / name]
    for root in candidates:
        if (root / "configs" / "metadata.json").is_file() and (name is None or root.resolve().name == name):
            return str(root.resolve())
    raise FileNotFoundError(
        f"Cannot find the bundle root of {name or 'this bundle'!r}: no configs/metadata.json in "
        f"{[str(c) for c in candidates]}. Run from the repository root or the bundle folder, or pass "
        f"--bundle_root <path>."
    )
