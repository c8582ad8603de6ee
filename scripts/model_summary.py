"""Print parameters, FLOPs and grid-symmetry invariance error of every registered model.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` run on the plain-conv export of each
model (so an SRE convolution counts as the dense convolution with its expanded kernel): convolutions
and matrix products only, 2 FLOPs per multiply-add, per sample, eval mode.
The invariance error is ``max_g max|f(g x) - f(x)| / max|f(x)|`` over all 8 (2D) / 48 (3D) grid
symmetries ``g`` for a random input, with random weights and BatchNorm in eval mode.

Example::

    python scripts/model_summary.py --size-2d 28 --size-3d 28 --json /tmp/summary.json
    python scripts/model_summary.py --models sre_r3d_18 r3d_18 --widths 16 32 64 128 --no-invariance
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from monai_sre.nets import list_models
from monai_sre.experiments.model_summary import format_summary_table, model_summary
from monai_sre.utils.io import atomic_write


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help=f"default: all ({', '.join(list_models())})")
    parser.add_argument("--size-2d", type=int, default=28, help="side of the 2D input (default 28)")
    parser.add_argument("--size-3d", type=int, default=28, help="side of the 3D input (default 28)")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=2)
    parser.add_argument("--widths", type=int, nargs="+", default=None, help="override every model's stage widths")
    parser.add_argument("--no-invariance", action="store_true", help="skip the invariance check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    kwargs = {"in_channels": args.in_channels, "num_classes": args.num_classes, "seed": args.seed}
    if args.widths:
        kwargs["widths"] = tuple(args.widths)
    rows = model_summary(args.models, args.size_2d, args.size_3d, invariance=not args.no_invariance, **kwargs)
    print(format_summary_table(rows))
    if args.json:
        target = os.path.abspath(args.json)
        atomic_write(target, json.dumps(rows, indent=2))
        print(f"wrote {target}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
