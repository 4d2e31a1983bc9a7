"""The model registry: ``@register_model`` on a builder, ``create_model(name)``, ``list_models()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import nn

from .._args import suggest

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name (the registry key)."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"register_model: {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def unregister_model(name: str) -> None:
    """Remove a builder (used for temporary registrations, e.g. ablation variants); no error if absent."""
    _MODELS.pop(name, None)


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def create_model(name: str, *, weights: Optional[str] = None, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``weights`` is a local state_dict file (nothing is downloaded).

    Example:
        >>> create_model("seed_cnn")(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if name not in _MODELS:
        raise ValueError(
            f"create_model: unknown model {name!r}{suggest(name, _MODELS)} "
            f"(convolab.models.list_models() lists all {len(_MODELS)})"
        )
    model = _MODELS[name](**kwargs)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    return model
