"""``shutdown_distributed``: the end-of-run step of the multi-GPU bundle configs."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from monai_sre.workflows import shutdown_distributed


def test_rejects_negative_settle_time():
    with pytest.raises(ValueError, match="settle_s"):
        shutdown_distributed(-1.0)


def test_no_process_group_is_a_no_op():
    assert not dist.is_initialized()
    shutdown_distributed(0.0)
    assert not dist.is_initialized()


def test_destroys_the_group_after_a_collective(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        t = torch.ones(3)
        dist.all_reduce(t)
        shutdown_distributed(0.05)
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
