"""Values that reach a bundle config from the command line, read strictly.

``python -m monai.bundle run ... --augment false`` goes through Fire, which turns ``False`` into a Python bool but
leaves ``false`` a string, and any non-empty string is true in Python: without a check, ``--augment false`` would
switch augmentation on. The configs therefore pass their switches through :func:`as_bool`.
"""

from __future__ import annotations

__all__ = ["as_bool"]

_WORDS = {"true": True, "false": False}


def as_bool(value: object, name: str) -> bool:
    """A config switch as a bool: ``True``/``False``, or the strings ``"true"``/``"false"`` in any case.

    Args:
        value: the id's value (a bool from JSON or ``--id False``, a string from ``--id false``).
        name: the config id, for the error message.

    Returns:
        the bool.

    Raises:
        ValueError: for anything else (``"yes"``, ``1``, ``None``, ...), naming ``name`` and the value given.

    Example:
        In a config: ``"disable": "$not monai_sre.workflows.as_bool(@progress_bar, 'progress_bar')"``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        return _WORDS[value.strip().lower()]
    raise ValueError(f"{name} must be true or false (any case), got {value!r}.")
