"""Why does a trained classifier lose accuracy on rotated views? Separate the causes on the validation split.

An off-grid rotation of a MedMNIST image does three things at once: it turns the content, it low-passes the image
(linear interpolation), and it swaps the image corners for padding. For an exactly equivariant network only the last
two can cost accuracy. This script measures each on its own, with the checkpoint of a bundle run::

    python scripts/rotation_diagnosis.py --run_dir runs/select/breastmnist/default/seed0 \
        --dataset breastmnist --data_root ../shared/data/medmnist

Probes (each applied to the validation images after the run's own preprocessing):

- ``rot<a>``: rotation by ``a`` degrees (in 3D about each of ``--axes``, averaged), linear interpolation, zero
  padding;
- ``round_trip<a>``: rotation by ``a`` and back: blur and lost corners, no net rotation;
- ``blur<s>``: isotropic Gaussian smoothing with sigma ``s`` pixels (MONAI ``GaussianFilter``), no rotation;
- ``corners<a>``: the corners that a rotation by ``a`` brings in set to 0, nothing else changed.

The table (accuracy in %, one row per run) is printed and written with ``--output`` as JSON and Markdown (atomically).
The split defaults to ``val``: use it to choose settings; ``test`` is allowed only for reporting. A run of
``select_settings.py --folds K`` is probed on its own held-out fold (``fold`` / ``num_folds`` in its done.json).
Settings that a run did not override (``field_of_view``, ``blur``, ``input_smoothing``) come from its bundle's
train.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path

import torch
from ignite.handlers import Checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai_sre.data import get_dataset  # noqa: E402
from monai_sre.experiments.reproduce import MODELS  # noqa: E402
from monai_sre.experiments.rotation_diagnosis import diagnose  # noqa: E402
from monai_sre.handlers import read_checkpoint  # noqa: E402
from monai_sre.nets import get_model  # noqa: E402
from monai_sre.transforms import classification_transforms  # noqa: E402
from monai_sre.utils.io import atomic_write  # noqa: E402

logger = logging.getLogger("rotation_diagnosis")


def _load_run(run_dir: Path, dataset: str | None) -> tuple[dict, str]:
    done = run_dir / "done.json"
    if not done.is_file():
        raise SystemExit(f"--run_dir {run_dir}: no done.json (a finished reproduce.py / select_settings.py run) there.")
    meta = json.loads(done.read_text())
    name = dataset or meta.get("dataset")
    if not name:
        raise SystemExit(f"--run_dir {run_dir}: done.json does not name the dataset; pass --dataset.")
    if not (run_dir / "models" / "model.pt").is_file():
        raise SystemExit(f"--run_dir {run_dir}: no models/model.pt (best checkpoint).")
    return meta, name


@functools.cache
def _bundle_defaults(spatial_dims: int) -> dict:
    """The ids of the run's bundle (``bundles/<name>/configs/train.json``) that change what the probes must see."""
    config = Path(__file__).resolve().parents[1] / "bundles" / MODELS[spatial_dims]["bundle"] / "configs" / "train.json"
    ids = json.loads(config.read_text())
    return {k: ids.get(k) for k in ("field_of_view", "blur", "input_smoothing")}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", action="append", required=True, type=Path,
                        help="a finished run (done.json, models/model.pt); repeatable")
    parser.add_argument("--dataset", default=None, help="MedMNIST flag (default: from done.json)")
    parser.add_argument("--data_root", default=None, help="folder of the MedMNIST npz files")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--axes", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2],
                        help="3D: turn about each of these axes and average, as the rotated evaluation does "
                             "(default: 0 1 2)")
    parser.add_argument("--output", default=None, help="write <output>.json and <output>.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rows, datasets, cache = [], {}, {}
    for run_dir in args.run_dir:
        meta, name = _load_run(run_dir, args.dataset)
        settings = meta.get("settings", {})
        if tuple(settings.get("intensity_range", (0.0, 1.0))) != (0.0, 1.0) or settings.get("input_size"):
            raise SystemExit(f"--run_dir {run_dir}: only runs on the data's own size and [0, 1] intensities are "
                             f"supported (the probes pad with 0), got {settings}.")
        data_key = (name, settings.get("fold"), settings.get("num_folds", 5))
        if data_key not in datasets:  # one read of the npz per dataset and fold, however many runs share it
            datasets[data_key] = get_dataset(name, args.split, root=args.data_root, size=args.size,
                                             fold=data_key[1], num_folds=data_key[2])
        ds = datasets[data_key]
        spatial_dims = len(ds[0]["image"].shape) - 1
        settings = {**_bundle_defaults(spatial_dims), **settings}
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
        axes = tuple(args.axes) if spatial_dims == 3 else None
        acc = diagnose(net, images, labels, spatial_dims, axes=axes)
        rows.append({"run": str(run_dir), "model": meta["model"], "dataset": name, "split": args.split,
                     "axes": axes, "fold": settings.get("fold"), "field_of_view": fov, "blur": settings.get("blur"),
                     "input_smoothing": settings.get("input_smoothing"), "n_images": len(labels), **acc})
        logger.info("%s: %s", run_dir, " ".join(f"{k} {v:.1f}" for k, v in acc.items()))

    names = list(acc)  # the probes, in diagnose()'s order
    lines = [f"Accuracy (%) on the `{args.split}` split under each probe (scripts/rotation_diagnosis.py).", "",
             "| run | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += ["| " + r["run"] + " | " + " | ".join(f"{r[n]:.1f}" for n in names) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        atomic_write(args.output + ".json", json.dumps(rows, indent=2))
        atomic_write(args.output + ".md", table)
    return rows


if __name__ == "__main__":
    main()
