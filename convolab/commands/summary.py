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
    p.add_argument("model", metavar="MODEL", help="a registered name (e.g. resnet50; `convolab models` lists them), "
                   "path/to/file.py:attr or package.module:attr")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input shape without the batch: CxHxW for 2-D models, CxL for 1-D, CxDxHxW for 3-D "
                   "(default: the model's channels at its default size, e.g. 3x224x224)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--depth", type=int, default=3, help="deepest nesting listed (default 3)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="a terminal table (default), GitHub Markdown or JSON")
    p.add_argument("--width", type=int, default=None,
                   help="table width in characters (default: the terminal's); columns that do not fit are "
                   "left out, and named, rather than cut")
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


MIN_WIDTH = 40  # the narrowest table: Layer, Output shape and Params


def _first_conv(model: nn.Module) -> tuple[str, Any]:
    for name, m in model.named_modules():
        weight = getattr(m, "weight", None)
        if isinstance(getattr(m, "in_channels", None), int) and getattr(weight, "dim", lambda: 0)() >= 3:
            return name, m
    return "", None


def default_input(model: nn.Module) -> str:
    """The model's channels at its ``default_input_size`` (224 per spatial dim without one)."""
    _, conv = _first_conv(model)
    if conv is None:
        return "3x224x224"
    size = getattr(model, "default_input_size", None) or (224,) * (conv.weight.dim() - 2)
    return "x".join(map(str, (conv.in_channels, *size)))


def check_input(model: nn.Module, shape: tuple[int, ...], text: str) -> None:
    """The input shape must have the rank and channels of the model's first convolution.

    Checked before the analysis runs, so the message says what the model takes instead of
    failing deep inside its forward. A model without convolutions is not checked here.
    """
    name, m = _first_conv(model)
    if m is not None:
        nd = m.weight.dim() - 2
        form = {1: "CxL", 2: "CxHxW", 3: "CxDxHxW"}.get(nd, f"C and {nd} sizes")
        if len(shape) != nd + 1 or shape[0] != m.in_channels:
            example = default_input(model)
            raise UsageError(f"--input must be {form} with C = {m.in_channels} for this model (its first "
                             f"convolution, {name}, takes {m.in_channels} channel{'s' * (m.in_channels != 1)} and {nd} spatial dims), "
                             f"e.g. {example}; got {text!r}")


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {args.batch}")
    if args.depth < 0:
        raise UsageError(f"--depth must be >= 0, got {args.depth}")
    if args.width is not None and args.width < MIN_WIDTH:
        raise UsageError(f"--width must be >= {MIN_WIDTH} (room for Layer, Output shape and Params), got {args.width}")
    if args.input is not None:
        parse_shape(args.input)  # a malformed shape is reported before the model is built
    model = load_model(args.model)
    text = args.input or default_input(model)
    shape = parse_shape(text)
    check_input(model, shape, text)
    s = summary(model, (args.batch, *shape), depth=args.depth)
    if args.format == "json":
        print(s.to_json())
    elif args.format == "markdown":
        print(s.to_markdown(), end="")
    else:
        print(s.to_text(args.width), end="")
    return 0
