"""Reproduce the paper's Orig./Rot./Ref. table on MedMNIST with the bundles: SRE, the plain baseline, the baseline
trained with rotation augmentation and the baseline with test-time augmentation over the grid rotations.

Example (CPU-budget profile, the data in $MONAI_SRE_DATA)::

    python scripts/reproduce.py --datasets adrenalmnist3d breastmnist --data_root $MONAI_SRE_DATA
    python scripts/reproduce.py --datasets breastmnist --rows sre baseline --max_epochs 2   # a quick subset

    python scripts/reproduce.py --cv breastmnist=5 adrenalmnist3d=3 --output_dir runs/cv   # rank rows, test unread

Re-running the same command resumes: finished (dataset, row) runs are read back, an interrupted training
continues from its last checkpoint. ``--cv`` ranks the rows by K-fold cross-validation on the training and
validation images pooled, paired image by image against ``--reference`` (see
:mod:`monai_sre.experiments.cross_validation`); it never reads the test split. ``--profile paper`` switches to the paper's setting (100 epochs, full widths).
The ``baseline_tta`` row evaluates the ``baseline`` row's checkpoint, so it needs that row (now or from an earlier
run).
"""

from __future__ import annotations

import argparse
import logging
import os

from monai_sre.experiments.cross_validation import cross_validate
from monai_sre.experiments.reproduce import EXTRA_ROLES, PROFILES, ROLES, reproduce


def _folds(values: list[str]) -> int | dict[str, int]:
    """``--cv K`` (every dataset) or ``--cv DATASET=K ...``."""
    try:
        if len(values) == 1 and "=" not in values[0]:
            return int(values[0])
        return {name: int(k) for name, k in (v.split("=", 1) for v in values)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cv takes K or DATASET=K ..., got {' '.join(values)!r}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["adrenalmnist3d", "breastmnist"])
    parser.add_argument("--data_root", default=os.environ.get("MONAI_SRE_DATA"),
                        help="folder of the MedMNIST npz files (default: $MONAI_SRE_DATA)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds to run; the table shows mean ± std over them (each seed under <output_dir>/seed<s>)")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--output_dir", default="runs/reproduce")
    parser.add_argument("--rows", nargs="+", choices=ROLES + EXTRA_ROLES, default=list(ROLES),
                        help=f"which rows to run per dataset (default: {' '.join(ROLES)}; also: {' '.join(EXTRA_ROLES)})")
    parser.add_argument("--max_epochs", "--epochs", dest="epochs", type=int,
                        help="override the bundles' epochs, the most a model trains (e.g. for a quick check)")
    parser.add_argument("--widths", type=int, nargs=4, help="override the profile's stage widths")
    parser.add_argument("--cv", nargs="+", metavar="K", help="K-fold cross-validation instead of the test split: "
                        "one K for every dataset or DATASET=K per dataset (e.g. breastmnist=5 adrenalmnist3d=3)")
    parser.add_argument("--reference", default="sre", choices=ROLES + EXTRA_ROLES,
                        help="with --cv: the row every other row is compared with (default: sre, the bundles' recipe)")
    parser.add_argument("--cv_name", default="cv",
                        help="with --cv: the tables and the figure go to <output_dir>/<cv_name>.{md,json,png}")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("widths", args.widths)) if v is not None}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cv:
        try:
            folds = _folds(args.cv)
        except argparse.ArgumentTypeError as e:
            parser.error(str(e))
        paths = cross_validate(args.datasets, args.output_dir, folds, args.data_root, args.profile, args.seeds,
                               args.size, overrides, args.rows, args.reference, name=args.cv_name)
        print(open(paths["md"]).read())
        return
    paths = reproduce(args.datasets, args.output_dir, args.data_root, args.profile, args.seeds, args.size, overrides,
                      args.rows)
    print(open(paths["md"]).read())
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
