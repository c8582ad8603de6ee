"""Seed every random number generator at the start of each epoch from ``(seed, epoch)``, so that resuming is exact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai.data.utils import set_rnd
from monai.utils import IgniteInfo, min_version, optional_import, set_determinism

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine")

__all__ = ["EpochSeeder"]


class EpochSeeder:
    """At ``EPOCH_STARTED``, seed Python, NumPy and torch (``monai.utils.set_determinism``) and the random
    transforms of the engine's dataset (``monai.data.utils.set_rnd``) with ``seed + epoch``.

    Every random draw of an epoch (shuffle order, augmentation, dropout, worker seeds) then depends only on the seed
    and the epoch number, not on what ran before. A run killed at any point and resumed from its last epoch
    checkpoint (:class:`~monai_sre.handlers.ResumeFromCheckpoint`) therefore replays the interrupted epoch exactly
    and ends bit-identical to an uninterrupted run, which restoring the RNG states alone would not give: the shuffle
    order of the next epoch is drawn from the global torch generator when the data loader iterator is created, and
    MONAI's random transforms keep their own generators. This follows Ignite's ``DeterministicEngine``, which
    reseeds from the epoch counter; the dataset is walked the way MONAI's data-loader ``worker_init_fn`` does.

    Args:
        seed: base seed; epoch ``e`` (1-based) uses ``seed + e``. None disables the handler (an unseeded run, whose
            resume is not exact).

    Raises:
        TypeError: if ``seed`` is not an int or None.

    Example:
        >>> EpochSeeder(seed=0).attach(trainer)  # doctest: +SKIP
    """

    def __init__(self, seed: int | None = 0) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an int or None, got {seed!r}.")
        self.seed = seed

    def attach(self, engine: Engine) -> None:
        """Register on ``Events.EPOCH_STARTED`` (once); attach it before handlers that draw random numbers there."""
        if not engine.has_event_handler(self, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if self.seed is None:
            return
        seed = self.seed + int(engine.state.epoch)
        set_determinism(seed=seed)
        dataset = getattr(engine.state.dataloader, "dataset", None)
        if dataset is not None:
            set_rnd(dataset, seed)
