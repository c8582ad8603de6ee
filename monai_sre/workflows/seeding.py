"""Reproducible runs: one call that seeds everything."""

from __future__ import annotations

from monai.utils import set_determinism

__all__ = ["seed_everything"]

_AUTO_POLICIES = ("model",)


def seed_everything(seed: int | None = 0, auto_policy: str = "model") -> None:
    """Seed Python, NumPy and torch (``monai.utils.set_determinism``).

    SRE layers already choose their computation path by the cost model alone (``algorithm="auto"``), so two runs
    with the same seed do the same arithmetic. ``auto_policy`` is accepted for configs that pass it and must be
    ``"model"``; timing-based tuning is ``monai_sre.blocks.set_algorithm(network, "benchmark")``.

    Raises:
        ValueError: for an ``auto_policy`` other than ``"model"``.
    """
    if auto_policy not in _AUTO_POLICIES:
        raise ValueError(
            f"auto_policy must be 'model', got {auto_policy!r}; for timed path selection use "
            "monai_sre.blocks.set_algorithm(network, 'benchmark')."
        )
    set_determinism(seed=seed)
