"""Reproducible runs: one call that seeds everything and fixes how SRE layers pick their algorithm."""

from __future__ import annotations

from monai.utils import set_determinism

from monai_sre.blocks.sre_conv import set_auto_policy

__all__ = ["seed_everything"]


def seed_everything(seed: int | None = 0, auto_policy: str = "model") -> None:
    """Seed Python, NumPy and torch (``monai.utils.set_determinism``) and set the ``algorithm="auto"`` policy.

    ``auto_policy="model"`` makes every ``SREConv(algorithm="auto")`` choose its computation path from the cost
    model alone, so two runs with the same seed do the same arithmetic; ``"measure"`` times the paths once per
    shape (faster where the cost model is off, but the choice, and so the rounding, can differ between runs).

    Raises:
        ValueError: for an unknown ``auto_policy``.
    """
    set_auto_policy(auto_policy)
    set_determinism(seed=seed)
