"""The import rules of docs/ARCHITECTURE.md: each package imports only the packages listed for it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_sre"
LIBRARY = {"layers", "blocks", "nets", "utils", "transforms", "data", "handlers"}
# package -> the monai_sre packages it may import
ALLOWED = {
    "layers": set(),
    "blocks": {"layers"},
    "nets": {"layers", "blocks"},
    "utils": {"layers", "blocks"},
    "transforms": set(),
    "data": {"transforms", "utils"},
    "handlers": {"layers", "blocks", "nets", "utils", "transforms", "data"},
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
