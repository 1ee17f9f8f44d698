"""The library's layers import only downward (docs/DESIGN.md §2), and geometry/ never imports Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEOMETRY = ROOT / "geometry"
# docs/DESIGN.md §2, lowest first; packages on one rung may not import each other
LAYERS = [
    {"runtime"},
    {"data"},
    {"models"},
    {"boundary"},
    {"slices"},
    {"features"},
    {"inspection"},
    {"atlas", "playground"},
    {"figures"},
    {"report"},
    {"cli"},
]
RUNG = {package: i for i, rung in enumerate(LAYERS) for package in rung}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in the file, including those inside functions."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _package(path: Path) -> str | None:
    parts = path.relative_to(GEOMETRY).parts
    return parts[0] if len(parts) > 1 else None


def test_every_subpackage_is_placed_in_a_layer():
    packages = {p.name for p in GEOMETRY.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(RUNG), "add the new subpackage to docs/DESIGN.md §2 and to LAYERS here"


def test_imports_go_downward_only():
    wrong = []
    for path in sorted(GEOMETRY.rglob("*.py")):
        own = _package(path)
        if own is None:  # geometry/__init__.py and __main__.py sit on top
            continue
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "geometry" or len(parts) < 2 or parts[1] not in RUNG or parts[1] == own:
                continue
            if RUNG[parts[1]] >= RUNG[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {module}")
    assert wrong == []


def test_the_library_never_imports_streamlit_or_the_app():
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(GEOMETRY.rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] in {"streamlit", "ui", "views", "app"}
    ]
    assert wrong == []
