"""Classic blocks and networks, one file per family, and the registry."""

from . import seed_cnn  # noqa: F401  (registers its builders)
from . import alexnet, convnext, googlenet, hourglass, inception, mobilenet, replknet, resnet, shufflenet, vgg  # noqa: F401  (register)
from ._registry import create_model, list_models, register_model, unregister_model
from .backbone import FeatureExtractor, feature_extractor, freeze_except_head, reset_head
from .blocks import ConvNormAct, FlattenLinear, GlobalPoolLinear, SPPLinear

__all__ = [
    "ConvNormAct",
    "FeatureExtractor",
    "FlattenLinear",
    "GlobalPoolLinear",
    "SPPLinear",
    "create_model",
    "feature_extractor",
    "freeze_except_head",
    "list_models",
    "register_model",
    "unregister_model",
    "reset_head",
]
