"""Imports only point downward (STYLE.md): arithmetic/_args <- functional <- nn <- models; only cli imports commands."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "convolab"
# layer -> the convolab subpackages/modules it must never import
FORBIDDEN = {
    "arithmetic": {"functional", "nn", "models", "analysis", "viz", "data", "train", "cli", "commands", "torch"},
    "_args": {"functional", "nn", "models", "analysis", "viz", "data", "train", "cli", "commands", "torch", "arithmetic"},
    "functional": {"nn", "models", "analysis", "viz", "data", "train", "cli", "commands"},
    "nn": {"models", "analysis", "viz", "data", "train", "cli", "commands"},
    "models": {"analysis", "viz", "train", "cli", "commands"},
    "analysis": {"models", "viz", "train", "cli", "commands"},
    "viz": {"train", "cli", "commands"},
    "data": {"cli", "commands", "viz"},
    "train": {"cli", "commands", "viz"},
    "ablation": {"cli", "commands", "viz"},
    "onnx": {"nn", "models", "analysis", "viz", "data", "train", "cli", "commands"},
}


def _imports(path: pathlib.Path) -> set[str]:
    """Top-level names (within convolab, or third-party roots) that a module imports."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT).with_suffix("").parts
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names.add(parts[1] if parts[0] == "convolab" and len(parts) > 1 else parts[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(rel[:-1])[: len(rel) - node.level]
                target = base + (node.module.split(".") if node.module else [])
                if target:
                    names.add(target[0])
                else:
                    names.update(alias.name for alias in node.names)
            elif node.module:
                parts = node.module.split(".")
                names.add(parts[1] if parts[0] == "convolab" and len(parts) > 1 else parts[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_downward(layer):
    files = [ROOT / f"{layer}.py"] if (ROOT / f"{layer}.py").exists() else sorted((ROOT / layer).rglob("*.py"))
    for path in files:
        bad = _imports(path) & FORBIDDEN[layer]
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {sorted(bad)}"


# Inside analysis/: module -> the analysis modules it may import (docs/architecture.md). The report
# knows no rendering and no tracing; the tracer knows no rule; only summary ties them together.
ANALYSIS = ROOT / "analysis"
ANALYSIS_MAY_IMPORT = {
    "_fields": set(),
    "_tracer": {"_fields"},
    "_rules": {"_fields", "_tracer"},
    "layers": {"_fields", "_tracer", "_rules"},
    "report": set(),
    "format": {"report"},
    "erf": set(),
    "summary": {"_fields", "_tracer", "_rules", "layers", "report", "format"},
    "__init__": {"erf", "summary"},
}


def _analysis_imports(path: pathlib.Path) -> set[str]:
    """The analysis modules (or subpackages) that a module of analysis/ imports."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])  # ["convolab", "analysis", ...]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            targets = [module] if node.module else [module + [alias.name] for alias in node.names]
        else:
            continue
        found.update(t[2] for t in targets if t[:2] == ["convolab", "analysis"] and len(t) > 2)
    return found


def _analysis_module(path: pathlib.Path) -> str:
    rel = path.relative_to(ANALYSIS).with_suffix("").parts
    return rel[0]


@pytest.mark.parametrize("path", sorted(ANALYSIS.rglob("*.py")), ids=lambda p: str(p.relative_to(ANALYSIS)))
def test_analysis_modules_import_only_below_them(path):
    module = _analysis_module(path)
    assert module in ANALYSIS_MAY_IMPORT, f"analysis/{module}: place it in ANALYSIS_MAY_IMPORT"
    bad = _analysis_imports(path) - ANALYSIS_MAY_IMPORT[module] - {module}
    assert not bad, f"{path.relative_to(ROOT.parent)} imports analysis modules {sorted(bad)}"


def test_import_convolab_does_not_import_heavy_optional_packages():
    import subprocess
    import sys

    code = (
        "import sys, torch; before = set(sys.modules); import convolab; "
        "print(sorted(m for m in ('matplotlib', 'rich', 'PIL', 'tqdm', 'scipy') if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
