"""Equivariance error of one SRE layer under off-grid rotations, per band profile, against interpolation's floor.

See :mod:`monai_sre.experiments.layer_invariance`. Example (the table of docs/design.md)::

    python scripts/layer_invariance.py --data_root $MONAI_SRE_DATA --md layer_invariance.md
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from monai_sre.experiments.layer_invariance import layer_invariance, smooth_fields, to_markdown, training_images
from monai_sre.utils.io import atomic_write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--angles", type=float, nargs="+", default=[15.0, 30.0, 45.0])
    parser.add_argument("--kernel_sizes", type=int, nargs="+", default=[7, 3])
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"),
                        help="folder of the MedMNIST npz files; their training images join the random fields")
    parser.add_argument("--datasets", nargs="+", default=["breastmnist", "adrenalmnist3d"])
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--md", help="write the Markdown tables here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    inputs = {"2D random fields (48², σ 1.5)": smooth_fields(2, 16, 48),
              "3D random fields (32³, σ 1.5)": smooth_fields(3, 2, 32)}
    if args.data_root:
        for name in args.datasets:
            inputs[f"{name} training images"] = training_images(name, args.data_root)
    tables = {f"{title}, kernel {k}": layer_invariance(x, args.angles, kernel_size=k, draws=4 if x.dim() == 4 else 2)
              for k in args.kernel_sizes for title, x in inputs.items()}
    md = to_markdown(tables, args.angles)
    print(md)
    if args.json:
        atomic_write(args.json, json.dumps(tables, indent=2))
    if args.md:
        atomic_write(args.md, md)


if __name__ == "__main__":
    main()
