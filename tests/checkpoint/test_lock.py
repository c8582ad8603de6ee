"""One training per run folder: the lock names the process holding it; a dead process's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from monai_sre.checkpoint import LOCK_FILE, RunLock


def test_acquire_writes_this_process_and_release_removes_it(tmp_path):
    lock = RunLock(tmp_path / "run")
    lock.acquire()
    held = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
    assert held["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_folder_in_use_is_refused_naming_the_other_process(tmp_path, other_process, write_lock):
    write_lock(tmp_path, other_process.pid)
    with pytest.raises(RuntimeError) as err:
        RunLock(tmp_path).acquire()
    message = str(err.value)
    assert f"in use by process {other_process.pid}" in message and "monai.bundle run training" in message
    assert str(tmp_path / LOCK_FILE) in message and "\n" not in message
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == other_process.pid  # left alone


def test_the_lock_of_a_dead_process_is_taken_over_with_one_warning(tmp_path, caplog, write_lock):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(tmp_path, dead.pid)
    with caplog.at_level(logging.WARNING):
        lock = RunLock(tmp_path)
        lock.acquire()
    warnings = [r for r in caplog.records if "taking over the lock" in r.getMessage()]
    assert len(warnings) == 1 and str(dead.pid) in warnings[0].getMessage()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


def test_a_lock_on_another_machine_is_refused(tmp_path, write_lock):
    write_lock(tmp_path, 1, host="elsewhere")
    with pytest.raises(RuntimeError, match="in use by process 1 on elsewhere"):
        RunLock(tmp_path).acquire()
