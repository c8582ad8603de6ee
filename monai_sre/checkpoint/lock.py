"""One training per run folder: a lock file that holds the process id of the training writing into it."""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import sys

__all__ = ["LOCK_FILE", "RunLock"]

logger = logging.getLogger(__name__)

#: file name of the lock in the run folder
LOCK_FILE = "train.lock"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class RunLock:
    """The lock of a run folder: ``<run_dir>/train.lock`` holds ``{"pid", "host", "command"}`` of its training.

    :meth:`acquire` creates the file (atomically, ``O_EXCL``) or refuses when another live process holds it, naming
    that process. A lock left by a process that no longer exists (killed with ``kill -9``, a crashed machine) is
    taken over with one warning. :meth:`release` removes it; it is also removed when the process exits.

    Args:
        run_dir: the run folder (created if missing).

    Example:
        >>> lock = RunLock("runs/synthetic3d_sre_r3d_18_1a2b3c4d")  # doctest: +SKIP
        >>> lock.acquire()  # doctest: +SKIP
        >>> lock.release()  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.path = os.path.join(self.run_dir, LOCK_FILE)
        self.held = False

    def _holder(self) -> dict:
        try:
            with open(self.path) as f:
                holder = json.load(f)
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return True

    def acquire(self) -> None:
        """Take the lock of the run folder.

        Raises:
            RuntimeError: if another live process holds it; the message names its process id, host and command,
                and the lock file.
        """
        if self.held:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        for _ in range(2):
            if self._create():
                self.held = True
                atexit.register(self.release)
                return
            holder = self._holder()
            pid, host = holder.get("pid"), holder.get("host")
            if pid == os.getpid() and host == socket.gethostname():  # this process: an earlier run left it
                os.remove(self.path)
                continue
            if not isinstance(pid, int) or (host == socket.gethostname() and not _alive(pid)):
                logger.warning("taking over the lock %s of process %s on %s, which no longer runs.", self.path, pid,
                               host)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            break
        holder = self._holder()
        raise RuntimeError(
            f"run folder {self.run_dir} is in use by process {holder.get('pid')} on {holder.get('host')} "
            f"({holder.get('command', '')!r}): wait for it to end, or train into another folder (--output_dir); if "
            f"that process is gone, delete {self.path}."
        )

    def release(self) -> None:
        """Remove the lock if this process holds it (a lock taken over by another process is left alone)."""
        if not self.held:
            return
        self.held = False
        atexit.unregister(self.release)
        holder = self._holder()
        if holder.get("pid") == os.getpid() and os.path.isfile(self.path):
            os.remove(self.path)
