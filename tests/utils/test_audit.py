from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from monai.networks.blocks import PatchEmbeddingBlock, SABlock, SpatialAttentionBlock

from monai_sre.utils import equivariance_error
from monai_sre.utils.audit import EQUIVARIANT, REFUSED, WALK, audit

# (module builder, 2D input shape): kept as they are, and they do commute with the 8 symmetries of the square
EQUIVARIANT_CASES = [
    (lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (2, 3, 8, 8)),
    (lambda: nn.Upsample(scale_factor=2, mode="nearest"), (1, 2, 5, 5)),
    (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), (1, 2, 6, 6)),
    (lambda: SpatialAttentionBlock(2, 8, num_head_channels=4, norm_num_groups=4), (1, 8, 6, 6)),
    (lambda: nn.GroupNorm(2, 4), (1, 4, 5, 5)),
]
# (module builder, 2D input shape, reason fragment): refused, and they do not commute with the symmetries
REFUSED_CASES = [
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(2 * 36, 2 * 36), nn.Unflatten(1, (2, 6, 6))), (1, 2, 6, 6),
     "spatial positions become features"),
    (lambda: nn.Upsample(scale_factor=1.5, mode="nearest"), (1, 2, 6, 6), "non-integer factor"),
    (lambda: nn.LayerNorm((6, 6)), (1, 2, 6, 6), "weight per position"),
]


def _kind(module: nn.Module) -> tuple[str, list]:
    """The verdicts of every module in ``module`` (its children with their previous siblings)."""
    kinds, problems = [], []
    previous = None
    children = list(module.named_children()) if isinstance(module, nn.Sequential) else [("m", module)]
    for name, child in children:
        kind, found = audit(name, child, previous)
        kinds.append(kind)
        problems += found
        previous = child
    return kinds, problems


@pytest.mark.parametrize("builder, shape", EQUIVARIANT_CASES)
def test_kept_modules_commute_with_the_grid_symmetries(builder, shape):
    torch.manual_seed(0)
    module = builder().eval()
    kinds, problems = _kind(module)
    assert set(kinds) == {EQUIVARIANT} and not problems
    with torch.no_grad():
        assert equivariance_error(module, torch.randn(shape)) <= 1e-5


@pytest.mark.parametrize("builder, shape, reason", REFUSED_CASES)
def test_refused_modules_do_not_commute_and_say_why(builder, shape, reason):
    torch.manual_seed(0)
    module = builder().eval()
    with torch.no_grad():  # make the per-position weights of LayerNorm differ
        for p in module.parameters():
            p.add_(torch.randn_like(p))
    kinds, problems = _kind(module)
    assert REFUSED in kinds and any(reason in r for _, r in problems), problems
    with torch.no_grad():
        assert equivariance_error(module, torch.randn(shape)) > 1e-3


def test_patch_embedding_names_its_patches_and_positions_and_attention_is_refused():
    embedding = PatchEmbeddingBlock(1, (16, 16), 8, 16, 2, spatial_dims=2)
    kind, problems = audit("embed", embedding)
    assert kind == REFUSED
    assert [name for name, _ in problems] == ["embed.patch_embeddings", "embed.position_embeddings"]
    kind, problems = audit("attn", SABlock(16, 2))
    assert kind == REFUSED and "attention" in problems[0][1]


def test_unknown_modules_are_walked_and_their_own_multi_axis_tensors_named():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))  # per channel: fine
            self.table = nn.Parameter(torch.ones(4, 9))
            self.conv = nn.Conv2d(4, 4, 3)

    kind, problems = audit("block", Custom())
    assert kind == WALK and [name for name, _ in problems] == ["block.table"]
    assert audit("seq", nn.Sequential(nn.ReLU())) == (WALK, [])
