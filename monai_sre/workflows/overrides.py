"""Values and switches that reach a bundle config from the command line, read strictly.

``python -m monai.bundle run ... --augment false`` goes through Fire, which turns ``False`` into a Python bool but
leaves ``false`` a string, and any non-empty string is true in Python: without a check, ``--augment false`` would
switch augmentation on. The configs therefore read their switches with ``monai.utils.str2bool``, after
:func:`~monai_sre.workflows.check_settings` has accepted only true or false (any case). And a mistyped switch
(``--epoch 1``) would become a new config id that nothing reads: :func:`check_switches` refuses it.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RECORDED_COMPONENTS", "RUN_ARGUMENTS", "check_switches"]


#: the arguments of ``python -m monai.bundle run`` itself (``monai.bundle.scripts.run`` and ``ConfigWorkflow``)
RUN_ARGUMENTS = (
    "run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file",
    "workflow_type", "workflow_name", "properties_path",
)


def _bundle_configs(bundle_root: str | os.PathLike) -> dict[str, dict]:
    """``{file name: content}`` of every JSON config of the bundle but its metadata."""
    folder = Path(bundle_root) / "configs"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "metadata.json"}


def _has_path(config: Any, parts: list[str]) -> bool:
    """Whether the ``#`` path ``parts`` exists in ``config`` (dict keys, list indices)."""
    for part in parts:
        if isinstance(config, dict) and part in config:
            config = config[part]
        elif isinstance(config, list) and part.isdigit() and int(part) < len(config):
            config = config[int(part)]
        else:
            return False
    return True


def _known(key: str, configs: dict[str, dict]) -> bool:
    """A top-level id of a config (or an overlay's ``a#b`` id), or a ``#`` path whose parent exists in one."""
    if key in RUN_ARGUMENTS or any(key in c for c in configs.values()):
        return True
    parts = key.split("#")
    if len(parts) == 1:
        return False
    # a path into an existing component: its parent exists in a config, directly or through an overlay's a#b id
    for config in configs.values():
        for split in range(1, len(parts)):
            head = "#".join(parts[:split])
            if head in config and _has_path(config[head], parts[split:-1]):
                return True
    return False


#: components that the run record's switches build: a ``#`` path into one would change the run behind the record
RECORDED_COMPONENTS = ("network_def", "run_record")


def _references(config: Any) -> list[str]:
    """The ``@id`` references in a component's config, in order."""
    if isinstance(config, dict):
        return [r for v in config.values() for r in _references(v)]
    if isinstance(config, list):
        return [r for v in config for r in _references(v)]
    return [config[1:]] if isinstance(config, str) and config.startswith("@") and "#" not in config else []


def _switches(argv: Sequence[str]) -> list[str]:
    """The ``--key`` names of a Fire command line (``--key value``, ``--key=value``)."""
    return [a[2:].split("=", 1)[0] for a in argv if a.startswith("--") and len(a) > 2]


def _workflow_ids(argv: Sequence[str]) -> set[str]:
    """The ids the command runs: ``run <run_id>`` and the values of ``--run_id``, ``--init_id``, ``--final_id``; such
    an id may be defined on the command line (``run show --show "$print(@epochs)"``)."""
    args = list(argv)
    ids = {args[i + 1] for i, a in enumerate(args[:-1]) if a == "run" and not args[i + 1].startswith("--")}
    for i, a in enumerate(args):
        key, _, value = a[2:].partition("=") if a.startswith("--") else ("", "", "")
        if key in ("run_id", "init_id", "final_id"):
            ids.add(value or (args[i + 1] if i + 1 < len(args) else ""))
    return ids


def _launched_by_monai_bundle(argv: Sequence[str]) -> bool:
    return bool(argv) and Path(argv[0]).parts[-3:] == ("monai", "bundle", "__main__.py")


def check_switches(bundle_root: str | os.PathLike, argv: Sequence[str] | None = None) -> None:
    """Refuse a command-line switch that no config of the bundle defines, before anything runs.

    MONAI adds an unknown ``--key`` to the config as a new id that nothing reads, so a mistyped switch
    (``--epoch 1``) would be ignored silently. Known are the top-level ids of the bundle's configs
    (``configs/*.json``), ``python -m monai.bundle run``'s own arguments, ``#`` paths into existing components
    (``--train#dataloader#pin_memory true``: the parent ``train#dataloader`` exists), and the id the command runs
    (``run show --show "$print(@epochs)"``). A ``#`` path into a component that the run record's switches build
    (:data:`RECORDED_COMPONENTS`: ``--network_def#sre_kwargs``) is refused, naming those switches (``--sre_kwargs``):
    the run would differ from its record.

    Args:
        bundle_root: the bundle folder, whose ``configs/*.json`` define the known ids (none: nothing is checked).
        argv: the command line to check; None: ``sys.argv`` when the process was started as
            ``python -m monai.bundle`` (else there is nothing to check).

    Raises:
        ValueError: one line naming each unknown switch and its nearest known ids, or a switch into a recorded
            component and the switches to use instead.

    Example:
        In ``train.json``: ``"initialize": ["$monai_sre.workflows.check_switches(@bundle_root)", ...]``.
    """
    if argv is None:
        argv = sys.argv if _launched_by_monai_bundle(sys.argv) else []
    configs = _bundle_configs(bundle_root)
    if not configs:  # a bundle_root without configs/*.json: nothing to check against
        return
    ran = _workflow_ids(argv)
    behind = [k for k in _switches(argv) if "#" in k and k.split("#")[0] in RECORDED_COMPONENTS]
    if behind:
        head = behind[0].split("#")[0]
        refs = sorted({r for c in configs.values() if isinstance(c.get(head), dict) for r in _references(c[head])})
        raise ValueError(
            f"--{behind[0]}: {head} is built from switches that the run record holds "
            f"({', '.join('--' + r for r in refs)}); set those instead, so that the record says what the run does."
        )
    unknown = [k for k in _switches(argv) if k not in ran and not _known(k, configs)]
    if not unknown:
        return
    ids = sorted({k for c in configs.values() for k in c if "#" not in k} | set(RUN_ARGUMENTS))
    parts = []
    for key in unknown:
        near = difflib.get_close_matches(key.split("#")[0] if "#" in key else key, ids, n=3, cutoff=0.6)
        parts.append(f"--{key} (nearest: {', '.join('--' + n for n in near)})" if near else f"--{key}")
    raise ValueError(
        f"unknown switch {'; '.join(parts)}: no config of bundle {Path(bundle_root).name} defines it. Use an id of "
        f"the configs in {Path(bundle_root) / 'configs'}, or a '#' path into an existing component."
    )
