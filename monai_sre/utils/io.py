"""Crash-safe file output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["atomic_path", "atomic_write"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` when the block ends without error.

    The temporary file lies in the same folder (created if needed) and ends with ``path``'s name, so writers that
    pick the format from the suffix (``.nii.gz``) behave as for ``path``. When the block exits, the file is flushed
    to disk and moved onto ``path`` with :func:`os.replace`, so readers see the old file or the whole new one,
    never a partial file; on an error it is removed and ``path`` is left as it was. The file is readable by
    everyone (mode 0o644), as a plain ``open`` would leave it, not private like a temporary file.

    Example:
        >>> with atomic_path("out/seg.nii.gz") as tmp:  # doctest: +SKIP
        ...     nibabel.save(image, tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=os.path.basename(path))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a partial file.

    Text is encoded as UTF-8. The file goes through :func:`atomic_path`.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
