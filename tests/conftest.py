"""The session's data cache in a temporary folder, and fixtures shared by the tests of the run lock
(tests/checkpoint, tests/bundles) and of the folder checks (tests/workflows, tests/bundles)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from monai_sre.checkpoint import LOCK_FILE


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    """Generated data (the embedded synthetic sets) goes to the session's temporary folder, not the user's cache."""
    folder = tmp_path_factory.mktemp("monai_sre_cache")
    before = os.environ.get("MONAI_SRE_CACHE")
    os.environ["MONAI_SRE_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("MONAI_SRE_CACHE", None)
    else:
        os.environ["MONAI_SRE_CACHE"] = before


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


def _writable(folder) -> bool:
    probe = os.path.join(folder, ".probe")
    try:
        open(probe, "w").close()
    except OSError:
        return False
    os.remove(probe)
    return True


def _make_writable(folder) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    os.chmod(folder, 0o755)


@pytest.fixture
def read_only_folder():
    """``read_only_folder(path)`` creates the folder ``path`` and makes it read-only, also for root (``chattr +i``
    where ``chmod`` is not enough); skips the test where neither works. Made writable again at the end."""
    made = []

    def make(path):
        path.mkdir(parents=True, exist_ok=True)
        made.append(path)
        os.chmod(path, 0o555)
        if _writable(path) and shutil.which("chattr"):
            subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if _writable(path):
            pytest.skip("cannot make a folder read-only here")
        return path

    yield make
    for path in made:
        _make_writable(path)
