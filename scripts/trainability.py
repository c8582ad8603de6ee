"""Per-layer activation gain and gradient/weight ratio at initialisation: SRE (both bases) against the baseline.

Example (real MedMNIST images from $MONAI_SRE_DATA)::

    python scripts/trainability.py --data_root $MONAI_SRE_DATA --json runs/trainability.json

Prints one Markdown table per dataset (stem, median and maximum over the network's convolutions, each averaged over
``--inits`` random initialisations) and, with ``--json``, writes every layer's numbers. The numbers in docs/experiments.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import numpy as np
import torch

from monai_sre.data.medmnist import npz_name
from monai_sre.nets import get_model
from monai_sre.utils import atomic_write, layer_statistics

CASES = {  # dataset: (SRE model, baseline)
    "adrenalmnist3d": ("sre_r3d_18", "r3d_18"),
    "breastmnist": ("sre_resnet18", "plain_resnet18"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"), help="MedMNIST npz folder")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inits", type=int, default=5, help="random initialisations to average over")
    parser.add_argument("--widths", type=int, nargs=4, default=[16, 32, 64, 128])
    parser.add_argument("--json", help="write every layer's numbers here")
    args = parser.parse_args()
    if not args.data_root or not os.path.isdir(args.data_root):
        parser.error(f"--data_root {args.data_root!r} is not a folder of MedMNIST npz files")
    report = {}
    for dataset, (sre, base) in CASES.items():
        with np.load(os.path.join(args.data_root, npz_name(dataset))) as npz:
            x = torch.from_numpy(npz["train_images"][: args.batch]).float().div(255).unsqueeze(1)
            y = torch.from_numpy(npz["train_labels"][: args.batch].reshape(-1)).long()
        print(f"\n{dataset}: batch of {len(x)} training images, widths {args.widths}\n")
        print("| model | basis | stem gain | median gain | max gain | stem |g|/|w| | median |g|/|w| | max |g|/|w| |")
        print("|---|---|---|---|---|---|---|---|")
        for model, norm in ((sre, "none"), (sre, "mean"), (base, "—")):
            summaries = []
            for seed in range(args.inits):
                torch.manual_seed(seed)
                kwargs = {"widths": args.widths} | ({"sre_kwargs": {"basis_norm": norm}} if norm != "—" else {})
                net = get_model(model, in_channels=1, num_classes=2, **kwargs)
                rows = [r for r in layer_statistics(net, x, y) if r["type"] != "Linear"]
                report[f"{dataset}/{model}/{norm}/init{seed}"] = rows
                gains, ratios = [r["gain"] for r in rows], [r["grad_to_weight"] for r in rows]
                summaries.append((gains[0], statistics.median(gains), max(gains),
                                  ratios[0], statistics.median(ratios), max(ratios)))
            means = [statistics.mean(col) for col in zip(*summaries)]
            print(f"| {model} | {norm} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
