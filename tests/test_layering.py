"""The import rules of docs/ARCHITECTURE.md: each package imports only the packages listed for it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_sre"
LIBRARY = {"layers", "blocks", "nets", "utils", "transforms", "data", "checkpoint", "handlers"}
# package -> the monai_sre packages it may import
ALLOWED = {
    "layers": set(),
    "blocks": {"layers"},
    "nets": {"layers", "blocks"},
    "utils": {"layers", "blocks"},
    "transforms": set(),
    "data": {"transforms", "utils"},
    "checkpoint": {"utils"},
    "handlers": {"layers", "blocks", "nets", "utils", "transforms", "data", "checkpoint"},
    "workflows": LIBRARY,
    "experiments": LIBRARY | {"workflows"},
}


def _imported_packages(path: Path) -> set[str]:
    parts = path.relative_to(PACKAGE).parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            here = list(parts[:-1])
            base = here[: len(here) - (node.level - 1)]
            names = base + (node.module.split(".") if node.module else [])
            if names:
                found.add(names[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("monai_sre."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("monai_sre.")}
    return found - {parts[0]}


def test_every_package_has_a_rule():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_layers(package):
    bad = {
        str(f.relative_to(PACKAGE)): sorted(_imported_packages(f) - ALLOWED[package])
        for f in sorted((PACKAGE / package).rglob("*.py"))
    }
    assert not {k: v for k, v in bad.items() if v}, f"{package} may import only {sorted(ALLOWED[package])}"


# what workflows and experiments read checkpoints with; handlers may use it, but not re-export it for them
CHECKPOINT_READING = {"read_checkpoint", "read_record", "record_of"}


def test_checkpoint_reading_is_imported_from_checkpoint_not_handlers():
    import monai_sre.handlers

    assert not CHECKPOINT_READING & set(monai_sre.handlers.__all__)
    offenders = []
    for package in ("workflows", "experiments"):
        for f in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("monai_sre.handlers"):
                    offenders += [f"{f.name}: {a.name}" for a in node.names if a.name in CHECKPOINT_READING]
    assert not offenders


PRIVATE_SETTERS = ("._last_lr =", "_last_lr=", "._tracer_cls =", "._save_func", "._interval_checkpoint", "._key_metric_checkpoint",
                   "._final_checkpoint", "._saved =")


def test_no_private_ignite_or_torch_attribute_is_set():
    found = [f"{f.relative_to(PACKAGE)}: {p}" for f in sorted(PACKAGE.rglob("*.py")) for p in PRIVATE_SETTERS
             if p in f.read_text()]
    assert not found
