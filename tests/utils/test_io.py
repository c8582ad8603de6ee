"""Crash-safe writes: a reader sees the old file or the whole new one."""

from __future__ import annotations

import os
import stat

import pytest

from monai_sre.utils import atomic_path, atomic_write


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "mask.nii.gz"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp.endswith("mask.nii.gz")
        open(tmp, "wb").write(b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(target) as tmp:
        open(tmp, "wb").write(b"partial")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path / "sub") == ["mask.nii.gz"]
    atomic_write(target, "text")
    assert target.read_text() == "text"
