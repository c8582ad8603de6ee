"""The last line a user sees when a bundle run is refused: the message, not MONAI's chained traceback.

An error raised while MONAI's config parser evaluates an expression reaches the user wrapped in ``RuntimeError:
Failed to evaluate ConfigExpression ...`` (and ``Failed to instantiate``), an ~80-line chained traceback with the
useful line at its top. Each bundle config's ``initialize`` therefore starts with :func:`install_error_hook`, which
replaces :data:`sys.excepthook` for that process: an uncaught error that is a refusal (see :func:`refusal`) is
printed as its one message, ``<Type>: <message>``, and the process exits with status 1 as for any uncaught error.
Anything else (a bug) keeps its full traceback. ``MONAI_SRE_TRACEBACK=1`` prints the full traceback of refusals too,
still followed by the message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["SettingError", "TRACEBACK_VARIABLE", "install_error_hook", "refusal"]

#: environment variable that keeps the full traceback of a refusal (any non-empty value but ``0``)
TRACEBACK_VARIABLE = "MONAI_SRE_TRACEBACK"

_PACKAGE = Path(__file__).resolve().parents[1]
#: error types this package raises on purpose to refuse a setting, a file or a run
_REFUSALS = (ValueError, TypeError, OSError, RuntimeError)


class SettingError(ValueError):
    """A bundle switch or file that cannot work, found before anything trains; the message names the switch (or
    file), the value given and what is expected."""


def _raised_here(err: BaseException) -> bool:
    """Whether ``err`` was raised by code of this package (its innermost traceback frame is in it)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    try:
        return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def refusal(err: BaseException) -> BaseException | None:
    """The error of the chain of ``err`` that is a refusal to show in one line, or None.

    A refusal is a :class:`SettingError` anywhere in the chain, else the first ``ValueError``, ``TypeError``,
    ``OSError`` or ``RuntimeError`` of the chain raised by this package's own code (a checked setting, file,
    checkpoint or run folder; or a message of ours that names the file a library failed to read).
    """
    chain, cause = [err], err
    while cause.__cause__ is not None and cause.__cause__ not in chain:
        cause = cause.__cause__
        chain.append(cause)
    for item in chain:
        if isinstance(item, SettingError):
            return item
    return next((item for item in reversed(chain) if isinstance(item, _REFUSALS) and _raised_here(item)), None)


def _hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    found = refusal(value) if isinstance(value, Exception) else None
    if found is None or os.environ.get(TRACEBACK_VARIABLE, "0") not in ("", "0"):
        _previous(kind, value, tb)
    if found is not None:
        sys.stderr.write(f"{type(found).__name__}: {found}\n")
        sys.stderr.flush()


_previous = sys.excepthook


def install_error_hook() -> None:
    """Make an uncaught refusal print as its one message (see the module docstring); idempotent.

    Example:
        The first step of a bundle config's ``initialize``:
        ``"$monai_sre.workflows.install_error_hook()"``.
    """
    global _previous
    if sys.excepthook is not _hook:
        _previous = sys.excepthook
        sys.excepthook = _hook
