"""Choose training settings on the validation split only: train each variant, compare validation accuracy.

See :mod:`monai_sre.experiments.select_settings` for what is trained, scored and written. Example::

    python scripts/select_settings.py --dataset adrenalmnist3d --data_root $MONAI_SRE_DATA --seeds 0 1 \\
        --variant default '{}' --variant augment '{"augment": true}' --folds 5 --rotated
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from monai_sre.experiments.reproduce import PROFILES
from monai_sre.experiments.select_settings import parse_variants, select


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="MedMNIST flag, e.g. adrenalmnist3d or breastmnist")
    parser.add_argument("--role", choices=("sre", "baseline"), default="sre",
                        help="which model of the reproduction pair the variants start from (default: sre)")
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True,
                        help="a variant: its name and a JSON object of bundle overrides (repeatable)")
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"),
                        help="folder of the MedMNIST npz files (default: $MONAI_SRE_DATA)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--output_dir", default="runs/select")
    parser.add_argument("--rotated", action="store_true",
                        help="also sweep each best checkpoint over the rotated views of the validation split")
    parser.add_argument("--folds", type=int, default=None, metavar="K",
                        help="K-fold cross-validation on the training and validation images pooled (K >= 2): "
                             "each (variant, seed) trains once per fold")
    args = parser.parse_args(argv)
    try:
        variants = parse_variants(args.variant)
        if args.folds is not None and args.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {args.folds}.")
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sys.stdout.write(select(args.dataset, variants, args.output_dir, args.data_root, role=args.role,
                            profile=args.profile, seeds=args.seeds, size=args.size, rotated=args.rotated,
                            folds=args.folds))


if __name__ == "__main__":
    main()
