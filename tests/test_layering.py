"""Imports only point downward (STYLE.md): _args <- arithmetic <- functional <- nn <- models; only cli imports commands; inside arithmetic/, viz/ and train/ too."""

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


def _modules(path: pathlib.Path) -> set[tuple[str, tuple[str, ...]]]:
    """(module, names taken from it) for each import of ``path``: convolab modules dotted without the
    ``convolab.`` prefix, others as written; ``names`` is empty for ``import x``."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((a.name.removeprefix("convolab."), ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                module = (node.module or "").removeprefix("convolab.")
            found.add((module, tuple(a.name for a in node.names)))
    return found


def _imports(path: pathlib.Path) -> set[str]:
    """Top-level names (within convolab, or third-party roots) that a module imports."""
    names = set()
    for module, taken in _modules(path):
        names.update([module.split(".")[0]] if module else taken)  # ``from .. import nn`` takes a subpackage
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_downward(layer):
    files = [ROOT / f"{layer}.py"] if (ROOT / f"{layer}.py").exists() else sorted((ROOT / layer).rglob("*.py"))
    for path in files:
        bad = _imports(path) & FORBIDDEN[layer]
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {sorted(bad)}"


# arithmetic/ is pure Python: besides the standard library it imports only _args. Inside it, module ->
# the arithmetic modules it may import: sizes is the bottom, the other three build on it, __init__
# re-exports them all.
ARITHMETIC = ROOT / "arithmetic"
ARITHMETIC_MAY_IMPORT = {
    "sizes": set(),
    "pooling": {"sizes"},
    "receptive_field": {"sizes"},
    "costs": {"sizes"},
    "__init__": {"sizes", "pooling", "receptive_field", "costs"},
}


@pytest.mark.parametrize("path", sorted(ARITHMETIC.glob("*.py")), ids=lambda p: p.name)
def test_arithmetic_imports_only_args_the_standard_library_and_the_modules_below(path):
    import sys

    module = path.stem
    assert module in ARITHMETIC_MAY_IMPORT, f"arithmetic/{module}: place it in ARITHMETIC_MAY_IMPORT"
    assert not [p for p in ARITHMETIC.iterdir() if p.is_dir() and p.name != "__pycache__"], "arithmetic/ has no subpackage"
    for name, taken in _modules(path):
        top, *rest = name.split(".")
        if top == "arithmetic":
            inner = set(rest[:1]) if rest else set(taken)
            bad = inner - ARITHMETIC_MAY_IMPORT[module] - {module}
            assert not bad, f"{path.relative_to(ROOT.parent)} imports arithmetic modules {sorted(bad)}"
        else:
            assert top == "_args" or top in sys.stdlib_module_names, (
                f"{path.relative_to(ROOT.parent)} imports {name or taken}: arithmetic/ may import only _args "
                f"and the standard library"
            )


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


# importing these loads no heavy optional package: the functions that draw import them
@pytest.mark.parametrize("modules", ["convolab", "convolab.train, convolab.viz.gallery, convolab.viz.grids"])
def test_import_convolab_does_not_import_heavy_optional_packages(modules):
    import subprocess
    import sys

    code = (
        f"import sys, torch; before = set(sys.modules); import {modules}; "
        "print(sorted(m for m in ('matplotlib', 'rich', 'PIL', 'tqdm', 'scipy') if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Inside viz/ and train/: file or folder (under convolab/) -> modules it must never import, as dotted
# names under convolab ("viz._scene") or third-party roots ("torch"). A name also forbids its submodules.
_TRAIN = {"train.config", "train.pipeline", "train.metrics", "train.checkpoint", "train.mining", "train.loop"}
INSIDE = {
    # the frames are data: they know no layout and no renderer
    "viz/frames": {"viz._scene", "viz.render_gif", "viz.render_html", "viz.gallery", "viz.animate"},
    # the records are plain values, filled by the builders and read by everyone else
    "viz/frames/records.py": {"torch", "functional", "arithmetic", "viz.frames.conv", "viz.frames.channels",
                              "viz.frames.pool", "viz.frames.roi", "viz.frames.cells", "viz.frames.example"},
    # the layout and the renderers draw records; they never build an animation
    "viz/_scene.py": {"torch", "functional", "viz.frames.conv", "viz.frames.channels", "viz.frames.pool", "viz.frames.roi"},
    "viz/render_gif.py": {"torch", "functional", "viz.frames.conv", "viz.frames.channels", "viz.frames.pool", "viz.frames.roi"},
    "viz/render_html.py": {"torch", "functional", "viz.frames.conv", "viz.frames.channels", "viz.frames.pool", "viz.frames.roi"},
    # the settings are plain data; the pipeline, the measures and the checkpoint layout sit below the loop
    "train/config.py": {"torch"} | _TRAIN - {"train.config"},
    "train/pipeline.py": _TRAIN - {"train.config", "train.pipeline"},
    "train/metrics.py": _TRAIN - {"train.config", "train.pipeline", "train.metrics"},
    "train/checkpoint.py": _TRAIN - {"train.config", "train.checkpoint"},
    "train/mining.py": {"train.loop", "train.checkpoint", "train.metrics"},
    "train/atomic.py": {"torch"} | _TRAIN,
}


def _forbidden(module: str, names: tuple[str, ...], rules: set[str]) -> list[str]:
    """The rules an import breaks: ``from viz.frames import conv`` imports ``viz.frames.conv`` too."""
    targets = [module] + [f"{module}.{n}" for n in names]
    return sorted({t for t in targets for rule in rules if t == rule or t.startswith(rule + ".")})


@pytest.mark.parametrize("place", sorted(INSIDE))
def test_imports_inside_viz_and_train_point_downward(place):
    target = ROOT / place
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    for path in files:
        bad = [b for module, names in _modules(path) for b in _forbidden(module, names, INSIDE[place])]
        assert not bad, f"{path.relative_to(ROOT.parent)} imports {bad}"


@pytest.mark.parametrize("package", ["viz", "train"])
def test_no_file_takes_a_private_name_of_another_file_of_its_package(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        taken = [f"{module}.{n}" for module, names in _modules(path) if module.split(".")[0] == package
                 for n in names if n.startswith("_") and not n.startswith("__")]
        assert not taken, f"{path.relative_to(ROOT.parent)} imports private names {taken}"
