"""Reproduce the paper's Orig./Rot./Ref. table on MedMNIST with the bundles (SRE vs baseline, paired t-tests).

Example (CPU-budget profile, the data in ../shared/data/medmnist)::

    python scripts/reproduce.py --datasets adrenalmnist3d breastmnist --data_root ../shared/data/medmnist

Re-running the same command resumes: finished (dataset, model) pairs are read back, an interrupted training
continues from its last checkpoint. ``--profile paper`` switches to the paper's setting (100 epochs, full widths).
"""

from __future__ import annotations

import argparse
import logging
import os

from monai_sre.experiments.reproduce import PROFILES, reproduce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["adrenalmnist3d", "breastmnist"])
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"),
                        help="folder of the MedMNIST npz files (default: $MONAI_SRE_DATA)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds to run; the table shows mean ± std over them (each seed under <output_dir>/seed<s>)")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--output_dir", default="runs/reproduce")
    parser.add_argument("--epochs", type=int, help="override the profile's epochs (e.g. for a quick check)")
    parser.add_argument("--widths", type=int, nargs=4, help="override the profile's stage widths")
    args = parser.parse_args()
    overrides = {k: v for k, v in (("epochs", args.epochs), ("widths", args.widths)) if v is not None}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    paths = reproduce(args.datasets, args.output_dir, args.data_root, args.profile, args.seeds, args.size, overrides)
    print(open(paths["md"]).read())
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
