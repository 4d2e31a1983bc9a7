"""Classic blocks and networks, one file per family, and the registry."""

from . import seed_cnn  # noqa: F401  (registers its builders)
from ._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
