"""seed_everything: seeds torch, and accepts the cost-model policy that bundle configs pass."""

from __future__ import annotations

import pytest
import torch

from monai_sre.workflows import seed_everything


def test_same_seed_same_draws_and_policy_checked():
    seed_everything(5, auto_policy="model")
    first = torch.rand(3)
    seed_everything(5)
    assert torch.equal(first, torch.rand(3))
    with pytest.raises(ValueError, match="auto_policy"):
        seed_everything(5, auto_policy="measure")
