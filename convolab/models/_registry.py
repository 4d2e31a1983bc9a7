"""The model registry: ``@register_model`` on a builder, ``create_model(name)``, ``list_models()``.

A renamed model keeps its old name as an alias (:func:`register_alias`): ``create_model``
and :func:`canonical_name` accept it, ``list_models()`` lists only the current names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import nn

from .._args import suggest

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}  # old name -> registered name


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (the registry key)."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"register_model: {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def register_alias(alias: str, name: str) -> None:
    """Let ``alias`` (e.g. a model's name in an earlier release) stand for the registered ``name``."""
    if name not in _MODELS:
        raise ValueError(f"register_alias: {name!r} is not registered")
    if alias in _MODELS or alias in _ALIASES:
        raise ValueError(f"register_alias: {alias!r} is already a model name or alias")
    _ALIASES[alias] = name


def canonical_name(name: str) -> str:
    """The registered name ``name`` stands for (itself unless it is an alias).

    >>> canonical_name("seed_cnn"), canonical_name("resnet18")
    ('mnist_cnn', 'resnet18')
    """
    return _ALIASES.get(name, name)


def unregister_model(name: str) -> None:
    """Remove a builder (used for temporary registrations, e.g. ablation variants); no error if absent."""
    _MODELS.pop(name, None)


def list_models(aliases: bool = False) -> list[str]:
    """Registered model names, sorted; with ``aliases=True`` also the old names that still work."""
    return sorted([*_MODELS, *_ALIASES] if aliases else _MODELS)


def create_model(name: str, *, weights: Optional[str] = None, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``weights`` is a local state_dict file (nothing is downloaded).

    Example:
        >>> create_model("mnist_cnn")(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if canonical_name(name) not in _MODELS:
        raise ValueError(
            f"create_model: unknown model {name!r}{suggest(name, list_models(aliases=True))} "
            f"(convolab.models.list_models() lists all {len(_MODELS)})"
        )
    model = _MODELS[canonical_name(name)](**kwargs)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    return model
