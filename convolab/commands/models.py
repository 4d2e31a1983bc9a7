"""``convolab models``: the model registry with parameter counts."""

from __future__ import annotations

import argparse
import inspect

import torch


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the registered models with their parameter counts",
        description="List every network of the registry (convolab.models.create_model(name)) with its "
        "parameter count and the paper it comes from. Counts are computed on the meta device: nothing is "
        "allocated. Any name here works with `convolab summary`, `convolab train` and `convolab explain`.",
    )
    p.add_argument("filter", nargs="?", default="", help="only names containing this text, e.g. resnet")
    p.set_defaults(func=run)


def model_rows(filter: str = "") -> list[tuple[str, int, str]]:
    """(name, parameters, one-line description) of every registered model whose name contains ``filter``.

    Models are built on the meta device: no memory is allocated, so even VGG is instant.
    """
    from .. import models
    from ..models._registry import _MODELS

    rows = []
    for name in models.list_models():
        if filter.lower() not in name.lower():
            continue
        try:
            with torch.device("meta"):
                model = models.create_model(name)
        except Exception:  # a builder whose init needs real tensors: build it for real
            model = models.create_model(name)
        doc = inspect.getdoc(_MODELS[name]) or ""
        rows.append((name, sum(p.numel() for p in model.parameters()), doc.splitlines()[0] if doc else ""))
    return rows


def run(args: argparse.Namespace) -> int:
    from .._bench import print_table
    from ..cli import UsageError

    rows = model_rows(args.filter)
    if not rows:
        raise UsageError(f"no registered model name contains {args.filter!r} (`convolab models` lists all)")
    print_table(f"convolab models ({len(rows)})", ["model", "parameters", "description"],
                [(n, f"{p:,}", d) for n, p, d in rows])
    return 0
