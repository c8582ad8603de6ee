"""Wheel lists for ``scripts/gpu_check.sh``. Standard library only: it runs before anything is installed.

    python scripts/wheels.py requirements        # this environment's versions of the dependencies, torch excluded
    python scripts/wheels.py missing WHEEL_DIR   # the wheels in WHEEL_DIR whose distribution is not installed
"""

from __future__ import annotations

import glob
import os
import re
import sys
from importlib import metadata

SKIP = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|setuptools|pip|wheel)$")
ROOTS = ("monai", "pytorch-ignite", "torchio", "nibabel", "medmnist", "pytest", "pytest-timeout", "fire", "pyyaml",
         "tqdm", "scipy")


def requirements() -> list[str]:
    """``name==version`` of every installed distribution the roots need, recursively, without extras."""
    todo, seen = list(ROOTS), {}
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop())[0].lower().replace("_", "-")
        if not name or name in seen or SKIP.match(name):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist.version
        todo += [r for r in (dist.requires or []) if "extra ==" not in r]
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def missing(folder: str) -> list[str]:
    """The wheel files in ``folder`` whose distribution this interpreter lacks (keeps the machine's own numpy...)."""
    paths = []
    for path in sorted(glob.glob(os.path.join(folder, "*.whl"))):
        try:
            metadata.version(os.path.basename(path).split("-")[0].replace("_", "-"))
        except metadata.PackageNotFoundError:
            paths.append(path)
    return paths


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["requirements"] and len(args) == 1:
        lines = requirements()
    elif args[:1] == ["missing"] and len(args) == 2:
        lines = missing(args[1])
    else:
        sys.exit(__doc__)
    for line in lines:  # nothing at all for an empty list
        print(line)
