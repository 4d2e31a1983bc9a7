"""``convolab summary``: the layer-by-layer table of a model, computed on meta tensors."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ..analysis import summary
from ..cli import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="shapes, receptive fields, parameters and MACs of a model, layer by layer",
        description="Analyse MODEL on meta tensors (nothing is computed or allocated). MODEL is a "
        "registered model name (convolab.models.list_models()), 'path/to/file.py:attr' or "
        "'package.module:attr', where attr is an nn.Module or a callable returning one.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--input", default="3x224x224", metavar="CxHxW",
                   help="input shape without the batch, e.g. 3x224x224 (default) or 1x28x28")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--depth", type=int, default=3, help="deepest nesting listed (default 3)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument("--width", type=int, default=100, help="table width in columns (default 100)")
    p.set_defaults(func=run)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` -> ``(3, 224, 224)``."""
    try:
        shape = tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise UsageError(f"--input must look like 3x224x224 (positive ints joined by 'x'), got {text!r}")
    return shape


def load_model(spec: str) -> nn.Module:
    """A registered name, ``file.py:attr`` or ``module:attr`` (attr: a module or a builder)."""
    if ":" not in spec:
        from ..models import create_model

        return create_model(spec)
    where, attr = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {where}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise UsageError(f"cannot import {where!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        return obj
    if callable(obj):
        try:
            model = obj()
        except TypeError as exc:
            raise UsageError(f"{spec} is not an nn.Module, and calling it with no arguments failed: {exc}") from None
        if isinstance(model, nn.Module):
            return model
    raise UsageError(f"{spec} is not an nn.Module or a callable returning one (got {type(obj).__name__})")


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    if args.depth < 0:
        raise UsageError(f"--depth must be >= 0, got {args.depth}")
    model = load_model(args.model)
    s = summary(model, (args.batch, *parse_shape(args.input)), depth=args.depth)
    if args.format == "json":
        print(s.to_json())
    elif args.format == "markdown":
        print(s.to_markdown(), end="")
    else:
        print(s.to_text(args.width), end="")
    return 0
