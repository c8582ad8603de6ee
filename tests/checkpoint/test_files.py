"""Checkpoint files: atomic fixed-name writes through Ignite's DiskSaver, reads whose errors name the file."""

from __future__ import annotations

import os

import pytest
import torch

from monai_sre.checkpoint import FixedNameDiskSaver, read_checkpoint, read_record, remove_stale_temporaries


def test_fixed_name_is_replaced_never_deleted_first(tmp_path):
    saver = FixedNameDiskSaver(tmp_path / "ck", "last.pt")
    saver({"a": torch.tensor(1)}, "ignored_1.pt")
    saver.remove("ignored_1.pt")  # what Ignite's Checkpoint calls before saving the next one
    assert sorted(os.listdir(tmp_path / "ck")) == ["last.pt"]
    saver({"a": torch.tensor(2)}, "ignored_2.pt")
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["a"].item() == 2
    assert sorted(os.listdir(tmp_path / "ck")) == ["last.pt"]  # no temporary file left
    assert os.stat(tmp_path / "ck" / "last.pt").st_mode & 0o044 == 0o044  # readable by group and others


def test_generated_names_are_kept_and_removed(tmp_path):
    saver = FixedNameDiskSaver(tmp_path)
    saver({"a": torch.tensor(1)}, "epoch_1.pt")
    saver.remove("epoch_1.pt")
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    saver = FixedNameDiskSaver(tmp_path, "last.pt")
    saver({"a": torch.tensor(1)}, "ignored.pt")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        saver({"a": torch.tensor(2)}, "ignored.pt")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # the temporary file is gone
    assert torch.load(tmp_path / "last.pt", weights_only=True)["a"].item() == 1  # the old checkpoint is intact


def test_truncated_and_missing_files_are_named(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": torch.nn.Linear(2, 1).state_dict()}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy killed half-way
    with pytest.raises(RuntimeError, match="model.pt .*truncated or corrupt.*Restore a good copy"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        read_checkpoint(tmp_path / "absent.pt")


def test_record_is_read_from_a_checkpoint_a_json_file_and_a_legacy_checkpoint(tmp_path):
    record = {"network": {"widths": [4]}, "training": {"seed": 0}}
    torch.save({"model": {}, "record": record}, tmp_path / "new.pt")
    torch.save({"model": {}, "settings": {"widths": [4]}}, tmp_path / "legacy.pt")
    torch.save({"model": {}}, tmp_path / "none.pt")
    (tmp_path / "record.json").write_text('{"network": {"widths": [4]}}')
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert read_record(tmp_path / "new.pt") == record
    assert read_record(tmp_path / "legacy.pt") == {"widths": [4]}
    assert read_record(tmp_path / "none.pt") is None and read_record(tmp_path / "absent.pt") is None
    assert read_record(tmp_path / "record.json") == {"network": {"widths": [4]}}
    with pytest.raises(ValueError, match="bad.json must hold a JSON object, got list"):
        read_record(tmp_path / "bad.json")


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    saver = FixedNameDiskSaver(tmp_path, "last.pt")
    saver({"a": torch.tensor(1)}, "ignored.pt")

    def full_disk(obj, f, *args, **kwargs):  # what torch.save raises when the disk fills while it writes
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . basic_ios::clear: iostream error")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as err:
        saver({"a": torch.tensor(2)}, "ignored.pt")
    monkeypatch.undo()
    message = str(err.value)
    assert message.startswith(f"checkpoint {tmp_path / 'last.pt'} could not be written (RuntimeError: ")
    assert "MiB free on its disk): the previous file is kept." in message and "\n" not in message
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["a"].item() == 1


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path, caplog):
    stale = [tmp_path / "tmpa1b2_c3d", tmp_path / "tmp0000zzzz", tmp_path / ".tmp_k2x9_q0zlast.pt",
             tmp_path / ".tmp_0a1b2c3dmodel.pt"]  # the last two: checkpoint writes of earlier versions
    for path in stale:
        path.write_bytes(b"PK\x03\x04 truncated by kill -9")
    kept = [tmp_path / "last.pt", tmp_path / "tmp_notes.txt", tmp_path / "tmpABCDEFGH", tmp_path / ".tmp_short"]
    for path in kept:
        path.write_bytes(b"x")
    (tmp_path / "tmpdirectory").mkdir()
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(map(str, stale))
    assert sorted(os.listdir(tmp_path)) == sorted([p.name for p in kept] + ["tmpdirectory"])
    assert "removed 4 temporary file(s)" in caplog.text
    assert remove_stale_temporaries(tmp_path / "absent") == []
