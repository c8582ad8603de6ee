"""Separate the causes of a classifier's accuracy loss on rotated views: the turn, the interpolation blur, the corners.

An off-grid rotation of an image turns its content, low-passes it (linear interpolation) and swaps its corners for
padding. :func:`probes` applies each effect on its own, :func:`diagnose` measures a network's accuracy under each,
and :func:`diagnose_runs` does so for finished bundle runs (a ``done.json`` and ``models/model.pt``, as written by
:mod:`~monai_sre.experiments.reproduce` and :mod:`~monai_sre.experiments.select_settings`), on the run's own
preprocessing and, for a cross-validation run, its own held-out fold. Settings that a run did not override
(``field_of_view``, ``blur``, ``input_smoothing``) come from its bundle's ``train.json``.
``scripts/rotation_diagnosis.py`` is the command line; docs/experiments.md shows what it found for SRE-R18.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from ignite.handlers import Checkpoint
from ignite.metrics import Accuracy
from monai.bundle import ConfigParser
from monai.networks.layers import GaussianFilter

from monai_sre.checkpoint import read_checkpoint
from monai_sre.data import get_dataset
from monai_sre.experiments.reproduce import MODELS
from monai_sre.nets import get_model
from monai_sre.transforms import classification_transforms
from monai_sre.transforms.rotation import rotate_batch
from monai_sre.workflows import find_bundle_root

__all__ = ["ANGLES", "SIGMAS", "diagnose", "diagnose_runs", "probes", "to_markdown"]

logger = logging.getLogger(__name__)

# the bundle settings that change what the probes must see
_BUNDLE_KEYS = ("field_of_view", "blur", "input_smoothing")
# what a row of diagnose_runs says about the run; the other entries are the probes' accuracies
_RUN_KEYS = ("run", "model", "dataset", "split", "axes", "fold", "n_images", *_BUNDLE_KEYS)

ANGLES = (10.0, 30.0, 45.0)
SIGMAS = (0.3, 0.5, 0.7)


def probes(spatial_dims: int, angles=ANGLES, sigmas=SIGMAS, axis: int | None = None) -> dict:
    """``name -> function(x)`` for a batch ``x`` of shape ``(B, C, *spatial)`` with background 0.

    In 3D the turns are about the spatial ``axis`` (default 0); in 2D ``axis`` must be None.
    """
    if spatial_dims == 3 and axis is None:
        axis = 0
    elif spatial_dims == 2 and axis is not None:
        raise ValueError(f"axis must be None for 2D probes, got {axis!r}.")
    out = {"original": lambda x: x}
    for a in angles:
        out[f"rot{a:g}"] = lambda x, a=a: rotate_batch(x, a, axis)
    for a in angles:
        out[f"round_trip{a:g}"] = lambda x, a=a: rotate_batch(rotate_batch(x, a, axis), -a, axis)
    for s in sigmas:
        out[f"blur{s:g}"] = GaussianFilter(spatial_dims, s)  # batched, the kernel of MONAI's GaussianSmooth
    for a in angles:
        out[f"corners{a:g}"] = lambda x, a=a: x * (rotate_batch(torch.ones_like(x[:1]), a, axis) > 0.5)
    return out


def _turns(name: str) -> bool:
    """Whether probe ``name`` depends on the rotation axis (everything but the original and the blurs)."""
    return not (name == "original" or name.startswith("blur"))


@torch.no_grad()
def diagnose(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, spatial_dims: int,
             batch_size: int = 64, axes=None) -> dict[str, float]:
    """Accuracy (%) of ``network`` under every probe of :func:`probes`.

    In 3D the probes that turn the volume are applied about each of ``axes`` (default: all three, as the rotated
    evaluation does) and their accuracies averaged; the original and the blurs, which have no axis, run once.
    """
    if spatial_dims == 2:
        if axes is not None:
            raise ValueError(f"axes must be None for 2D images, got {axes!r}.")
        axes = (None,)
    else:
        axes = (0, 1, 2) if axes is None else tuple(axes)
        if not axes or any(a not in (0, 1, 2) for a in axes):
            raise ValueError(f"axes must be a non-empty subset of (0, 1, 2) for 3D volumes, got {axes!r}.")
    network.eval()
    sums: dict[str, float] = {}
    for i, axis in enumerate(axes):
        for name, probe in probes(spatial_dims, axis=axis).items():
            if i > 0 and not _turns(name):
                continue
            accuracy = Accuracy()
            for start in range(0, len(images), batch_size):
                x = probe(images[start:start + batch_size])
                accuracy.update((network(x), labels[start:start + batch_size]))
            sums[name] = sums.get(name, 0.0) + 100.0 * accuracy.compute()
    return {name: total / (len(axes) if _turns(name) else 1) for name, total in sums.items()}


def _load_run(run_dir: Path, dataset: str | None) -> tuple[dict, str]:
    done = run_dir / "done.json"
    if not done.is_file():
        raise FileNotFoundError(f"run_dir {run_dir}: no done.json (a finished reproduction or selection run) there.")
    meta = json.loads(done.read_text())
    name = dataset or meta.get("dataset")
    if not name:
        raise ValueError(f"run_dir {run_dir}: done.json does not name the dataset; pass dataset.")
    if not (run_dir / "models" / "model.pt").is_file():
        raise FileNotFoundError(f"run_dir {run_dir}: no models/model.pt (best checkpoint).")
    settings = meta.get("settings", {})
    if tuple(settings.get("intensity_range", (0.0, 1.0))) != (0.0, 1.0) or settings.get("input_size"):
        raise ValueError(f"run_dir {run_dir}: only runs on the data's own size and [0, 1] intensities are "
                         f"supported (the probes pad with 0), got {settings}.")
    return meta, name


def _bundle_defaults(spatial_dims: int) -> dict:
    """The :data:`_BUNDLE_KEYS` of the ``train.json`` of the bundle that trains ``spatial_dims`` networks."""
    config = ConfigParser()
    config.read_config(Path(find_bundle_root(MODELS[spatial_dims]["bundle"])) / "configs" / "train.json")
    return {k: config.get(k) for k in _BUNDLE_KEYS}


def diagnose_runs(run_dirs: Sequence[str | Path], dataset: str | None = None, data_root: str | None = None,
                  split: str = "val", size: int = 28, axes: Sequence[int] = (0, 1, 2)) -> list[dict]:
    """One row per run: the run's settings and its accuracy (%) under every probe, on ``split``.

    Args:
        run_dirs: finished runs, each with ``done.json`` and ``models/model.pt``.
        dataset: MedMNIST flag; default: the one in each ``done.json``.
        data_root: folder of the MedMNIST npz files.
        split: ``"val"`` to choose settings; ``"test"`` only for reporting.
        size: MedMNIST image size.
        axes: 3D: the axes turned about and averaged over, as the rotated evaluation does.

    Raises:
        FileNotFoundError: a run without ``done.json`` or ``models/model.pt``.
        ValueError: a run that names no dataset, or was trained on resized or rescaled images.
    """
    rows, datasets, cache, defaults = [], {}, {}, {}
    for run_dir in map(Path, run_dirs):
        meta, name = _load_run(run_dir, dataset)
        settings = meta.get("settings", {})
        data_key = (name, settings.get("fold"), settings.get("num_folds", 5))
        if data_key not in datasets:  # one read of the npz per dataset and fold, however many runs share it
            datasets[data_key] = get_dataset(name, split, root=data_root, size=size, fold=data_key[1],
                                             num_folds=data_key[2])
        ds = datasets[data_key]
        spatial_dims = len(ds[0]["image"].shape) - 1
        if spatial_dims not in defaults:
            defaults[spatial_dims] = _bundle_defaults(spatial_dims)
        settings = {**defaults[spatial_dims], **settings}
        fov = settings["field_of_view"]
        key = (*data_key, fov)
        if key not in cache:
            xform = classification_transforms(spatial_dims, field_of_view=fov)
            items = [xform(ds[i]) for i in range(len(ds))]
            cache[key] = (torch.stack([torch.as_tensor(it["image"]).float() for it in items]),
                          torch.tensor([int(it["label"]) for it in items]))
        images, labels = cache[key]
        kwargs = {k: settings[k] for k in ("widths", "input_smoothing") if settings.get(k) is not None}
        net = get_model(meta["model"], in_channels=images.shape[1], num_classes=int(labels.max()) + 1, **kwargs)
        Checkpoint.load_objects({"model": net}, read_checkpoint(run_dir / "models" / "model.pt", map_location="cpu"))
        run_axes = tuple(axes) if spatial_dims == 3 else None
        acc = diagnose(net, images, labels, spatial_dims, axes=run_axes)
        rows.append({"run": str(run_dir), "model": meta["model"], "dataset": name, "split": split, "axes": run_axes,
                     "fold": settings.get("fold"), "field_of_view": fov, "blur": settings.get("blur"),
                     "input_smoothing": settings.get("input_smoothing"), "n_images": len(labels), **acc})
        logger.info("%s: %s", run_dir, " ".join(f"{k} {v:.1f}" for k, v in acc.items()))
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The accuracy table of :func:`diagnose_runs`: one row per run, one column per probe."""
    names = [k for k in rows[0] if k not in _RUN_KEYS]
    lines = [f"Accuracy (%) on the `{rows[0]['split']}` split under each probe.", "",
             "| run | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += ["| " + r["run"] + " | " + " | ".join(f"{r[n]:.1f}" for n in names) + " |" for r in rows]
    return "\n".join(lines) + "\n"
