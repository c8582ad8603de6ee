"""Ending a multi-process (torchrun) bundle run cleanly."""

from __future__ import annotations

import time

import torch.distributed as dist

__all__ = ["shutdown_distributed"]


def shutdown_distributed(settle_s: float = 0.5) -> None:
    """Synchronise the ranks, let the backend's worker threads go idle, then destroy the default process group.

    Gloo's worker threads drop their last reference to a finished collective's tensors on their own, and dropping
    a tensor that Python also saw needs the GIL. If that happens once the interpreter is finalizing, the thread is
    torn down inside C++ and the process aborts (``terminate called without an active exception``, exit -6) after
    a run that otherwise succeeded. The barrier makes every earlier collective finish; sleeping ``settle_s`` seconds
    releases the GIL so the workers can drop those tensors while Python is still alive. No-op outside a process
    group.

    Raises:
        ValueError: if ``settle_s`` is negative.
    """
    if settle_s < 0:
        raise ValueError(f"settle_s must be >= 0 seconds, got {settle_s}.")
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    time.sleep(settle_s)
    dist.destroy_process_group()
