"""Experiments: applications built on the library and the bundles (speed and memory benchmark, model summary,
reproduction of the paper's tables, selection of settings on the validation split, rotation diagnosis). Nothing in the library (``layers``, ``blocks``, ``nets``,
``transforms``, ``data``, ``handlers``, ``utils``, ``workflows``) imports from here; ``scripts/`` are the command
lines.

The submodules are imported on demand (``from monai_sre.experiments import benchmark``), so ``import
monai_sre.experiments`` stays cheap.
"""

from __future__ import annotations

__all__ = ["benchmark", "model_summary", "reproduce", "rotation_diagnosis", "select_settings"]
