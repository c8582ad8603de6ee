"""Why does a trained classifier lose accuracy on rotated views? Separate the causes on the validation split.

Probes (each applied to the validation images after the run's own preprocessing; see
:mod:`monai_sre.experiments.rotation_diagnosis`): ``rot<a>`` turns by ``a`` degrees (3D: about each of ``--axes``,
averaged), ``round_trip<a>`` turns and back (blur and lost corners only), ``blur<s>`` smooths with sigma ``s``,
``corners<a>`` zeroes the corners a turn would bring in. Example::

    python scripts/rotation_diagnosis.py --run_dir runs/select/breastmnist/default/seed0 \\
        --dataset breastmnist --data_root $MONAI_SRE_DATA --output results/diagnosis

The table (accuracy in %, one row per run) is printed and written with ``--output`` as JSON and Markdown. The split
defaults to ``val``: use it to choose settings; ``test`` is allowed only for reporting.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from monai_sre.experiments.rotation_diagnosis import diagnose_runs, to_markdown
from monai_sre.utils.io import atomic_write


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", action="append", required=True, type=Path,
                        help="a finished run (done.json, models/model.pt); repeatable")
    parser.add_argument("--dataset", default=None, help="MedMNIST flag (default: from done.json)")
    parser.add_argument("--data_root", default=None, help="folder of the MedMNIST npz files")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--axes", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2],
                        help="3D: turn about each of these axes and average (default: 0 1 2)")
    parser.add_argument("--output", default=None, help="write <output>.json and <output>.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        rows = diagnose_runs(args.run_dir, args.dataset, args.data_root, args.split, args.size, args.axes)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    table = to_markdown(rows)
    print(table)
    if args.output:
        atomic_write(args.output + ".json", json.dumps(rows, indent=2))
        atomic_write(args.output + ".md", table)


if __name__ == "__main__":
    main()
