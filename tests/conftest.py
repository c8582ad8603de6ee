"""Fixtures shared by the tests of the run lock (tests/checkpoint, tests/bundles)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from monai_sre.checkpoint import LOCK_FILE


@pytest.fixture
def other_process():
    """A live process of this machine, as the holder of a run folder's lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def write_lock():
    """``write_lock(run_dir, pid, host=None)`` leaves the lock file of a training with process id ``pid`` on ``host``
    (default: this machine) in ``run_dir``."""

    def write(run_dir, pid, host=None):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                     "command": "python -m monai.bundle run training"}))

    return write
