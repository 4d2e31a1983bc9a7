"""Classic blocks and networks, one file per family, and the registry."""

from . import mnist_cnn  # noqa: F401  (registers its builders)
from . import alexnet, convnext, googlenet, hourglass, inception, mobilenet, replknet, resnet, shufflenet, vgg  # noqa: F401  (register)
from ._registry import canonical_name, create_model, list_models, register_alias, register_model, unregister_model
from .backbone import FeatureExtractor, feature_extractor, freeze_except_head, reset_head
from .blocks import ConvNormAct, FlattenLinear, GlobalPoolLinear, SPPLinear

__all__ = [
    "ConvNormAct",
    "FeatureExtractor",
    "FlattenLinear",
    "GlobalPoolLinear",
    "SPPLinear",
    "canonical_name",
    "create_model",
    "feature_extractor",
    "freeze_except_head",
    "list_models",
    "register_alias",
    "register_model",
    "unregister_model",
    "reset_head",
]
