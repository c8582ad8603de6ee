"""Benchmark SRE convolutions (dense vs band path vs nn.ConvNd) and SRE networks; prints tables, writes JSON.

Sections: ``layers`` (one convolution, each algorithm), ``models`` (whole networks, each algorithm), ``twins``
(SRE networks against their plain twins at equal widths, 28^3-128^3, peak memory, growth exponent, sliding-window
segmentation of a 256^3 volume) and ``parts`` (where a ResNet's time goes, stem and stage by stage).

Examples::

    python scripts/benchmark.py --sections twins,parts --threads 1 --clock cpu --json bench.json --md bench.md
    python scripts/benchmark.py --quick
    python scripts/benchmark.py --device cuda --json /tmp/bench_cuda.json --md /tmp/bench_cuda.md
    python scripts/benchmark.py --sections models --batch 4 --size 32
"""

from __future__ import annotations

import argparse
import json
import logging

from monai_sre.experiments.benchmark import SECTIONS, format_tables, run_benchmark, timed_training
from monai_sre.utils.io import atomic_write


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help="small grid and narrow models (minutes on a laptop CPU)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--json", default=None, help="write the raw results here")
    parser.add_argument("--md", default=None, help="write the tables here (markdown)")
    parser.add_argument("--batch", type=int, default=None, help="model batch size (default 4 in 3D, 16 in 2D)")
    parser.add_argument("--size", type=int, default=None, help="model input size per axis (default 32^3 / 64^2)")
    parser.add_argument("--widths", default=None, help="model stage widths, e.g. 16,32,64,128")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="cpu: time CPU runs by process CPU time (steadier on a shared machine)")
    parser.add_argument("--train-data", default=None, help="also run a timed real training: MedMNIST folder (root)")
    parser.add_argument("--train-dataset", default="adrenalmnist3d")
    parser.add_argument("--train-model", default="sre_r3d_18")
    parser.add_argument("--train-seconds", type=float, default=90.0)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else None
    result = run_benchmark(
        args.device, args.quick, [s.strip() for s in args.sections.split(",") if s.strip()],
        args.batch, args.size, widths, not args.no_memory, args.clock,
    ) if args.sections.strip() else {"meta": {"device": args.device}}
    if args.train_data:
        result["training"] = timed_training(
            args.train_dataset, args.train_data, args.train_model, args.device, args.train_seconds,
            args.train_batch, widths=widths,
        )
    tables = format_tables(result)
    if "training" in result:
        t = result["training"]
        tables += (
            f"\n### Training ({t['dataset']}, {t['model']}, {t['device']}, {t['seconds']:.0f} s)\n\n"
            f"iterations {t['iterations']} ({t['epochs']:.2f} epochs), {t['samples_per_s']:.1f} samples/s, "
            f"last loss {t['train_loss']:.3f}, test accuracy {t['test_accuracy']:.3f}\n"
        )
    print(tables)
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=1))
    if args.md:
        atomic_write(args.md, tables)
    return result


if __name__ == "__main__":
    main()
