"""The backbone API: named intermediate feature maps of any model, and freezing for fine-tuning.

A *backbone* is the feature-extracting part of a network (VGG, ResNet,
Inception ...) whose feature maps downstream heads build on; fine-tuning keeps
its pretrained weights fixed and trains only the new head. Every model here
also has ``forward_features(x)`` (its last feature map).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

from torch import Tensor, nn

from .._args import positive_int, suggest

__all__ = ["FeatureExtractor", "feature_extractor", "freeze_except_head", "reset_head"]


class _Collected(Exception):
    """Raised by the last hook to stop the forward once every requested map is in hand."""


def _module_named(model: nn.Module, name: str, op: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        raise ValueError(
            f"{op}: {type(model).__name__} has no submodule {name!r}{suggest(name, list(modules)[1:])}"
        )
    return modules[name]


class FeatureExtractor(nn.Module):
    """Wraps a model; its forward returns the outputs of chosen submodules as an ordered dict.

    The model runs normally with forward hooks on the requested submodules and
    stops as soon as the last of them has produced its output (the rest of the
    network, e.g. the classifier, is not computed). A reused module (called
    more than once in a forward) reports its first call. Each captured map is
    kept as produced: later in-place ops (``ReLU(inplace=True)``) act on a copy.

    Args:
        model (nn.Module): any model.
        return_layers: submodule names (as in ``model.named_modules()``), or a
            mapping ``{submodule name: output name}``.

    Returns:
        ``forward(x)`` gives ``OrderedDict[output name, Tensor]`` in the order requested.

    Raises:
        ValueError: no layers, or an unknown layer name (closest names suggested).
    """

    def __init__(self, model: nn.Module, return_layers: Union[Iterable[str], Mapping[str, str]]) -> None:
        super().__init__()
        op = "feature_extractor"
        if isinstance(return_layers, Mapping):
            layers = dict(return_layers)
        elif isinstance(return_layers, str):
            layers = {return_layers: return_layers}
        else:
            layers = {name: name for name in return_layers}
        if not layers:
            raise ValueError(f"{op}: return_layers must name at least one submodule")
        self.model = model
        self.return_layers = layers
        self._targets = {name: _module_named(model, name, op) for name in layers}

    def forward(self, x: Any) -> "OrderedDict[str, Tensor]":
        features: dict[str, Any] = {}
        pending = set(self.return_layers)

        def hook_for(name: str):
            def hook(module: nn.Module, args: Any, output: Any) -> Any:
                if name not in pending:
                    return None
                features[self.return_layers[name]] = output
                pending.discard(name)
                if not pending:
                    raise _Collected
                return output.clone() if isinstance(output, Tensor) else None

            return hook

        handles = [m.register_forward_hook(hook_for(name)) for name, m in self._targets.items()]
        try:
            self.model(x)
        except _Collected:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [name for name in self.return_layers if name in pending]
        if missing:
            raise ValueError(f"feature_extractor: submodules {missing} were not called by the forward")
        return OrderedDict((out, features[out]) for out in self.return_layers.values())


def feature_extractor(
    model: nn.Module, return_layers: Union[Iterable[str], Mapping[str, str]]
) -> FeatureExtractor:
    """Named intermediate feature maps of ``model`` (a "backbone").

    Example:
        >>> import torch
        >>> from convolab.models import create_model
        >>> body = feature_extractor(create_model("resnet18"), ["layer2", "layer4"])
        >>> {k: tuple(v.shape) for k, v in body(torch.randn(1, 3, 64, 64)).items()}
        {'layer2': (1, 128, 8, 8), 'layer4': (1, 512, 2, 2)}
    """
    return FeatureExtractor(model, return_layers)


def _head_names(model: nn.Module, head: Optional[Union[str, Iterable[str]]], op: str) -> tuple[str, ...]:
    if head is None:
        head = getattr(model, "head_names", None)
        if head is None:
            raise ValueError(
                f"{op}: {type(model).__name__} declares no head_names; pass head='<submodule name>'"
            )
    names = (head,) if isinstance(head, str) else tuple(head)
    if not names:
        raise ValueError(f"{op}: head must name at least one submodule")
    for name in names:
        _module_named(model, name, op)
    return names


def reset_head(
    model: nn.Module, num_classes: int, head: Optional[Union[str, Iterable[str]]] = None
) -> nn.Module:
    """Replace the last linear layer of each head with a fresh one of ``num_classes`` outputs.

    The fine-tuning recipe of a "backbone": load weights trained on
    a large dataset, give the network a new classifier for the new classes,
    then train the head (see :func:`freeze_except_head`). Returns ``model``.

    Args:
        model (nn.Module): the network (changed in place).
        num_classes (int): outputs of the new classifier(s).
        head: submodule name(s) holding the classifier; default the model's ``head_names``.

    Raises:
        ValueError: ``num_classes < 1``; no head; a head without a linear layer.

    Example:
        >>> from convolab.models import create_model
        >>> reset_head(create_model("mobilenet_v2"), 5).classifier
        GlobalPoolLinear(
          (0): Dropout(p=0.2, inplace=False)
          (1): Linear(in_features=1280, out_features=5, bias=True)
        )
    """
    op = "reset_head"
    num_classes = positive_int(num_classes, "num_classes", op)
    modules = dict(model.named_modules())
    for name in _head_names(model, head, op):
        linears = [n for n, m in modules[name].named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(
                f"{op}: head {name!r} of {type(model).__name__} has no linear layer; "
                f"build the model with num_classes={num_classes} instead"
            )
        path = f"{name}.{linears[-1]}" if linears[-1] else name
        old = modules[path]
        parent_name, _, attr = path.rpartition(".")
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        setattr(modules[parent_name] if parent_name else model, attr, new)
    return model


def freeze_except_head(model: nn.Module, head: Optional[Union[str, Iterable[str]]] = None) -> list[str]:
    """Freeze every parameter except those of the head, for fine-tuning; returns the trainable names.

    Args:
        model (nn.Module): the network.
        head: submodule name(s) to keep trainable; default the model's
            ``head_names`` (e.g. ``("fc",)`` for ResNet, ``("classifier",)`` for VGG).

    Returns:
        the names of the parameters left with ``requires_grad=True``.

    Raises:
        ValueError: no head given and the model declares none; unknown submodule names.

    Note:
        Batch-norm layers still update their running statistics in training
        mode; call ``.eval()`` on them too to freeze those.

    Example:
        >>> from convolab.models import create_model
        >>> freeze_except_head(create_model("resnet18", num_classes=5))
        ['fc.weight', 'fc.bias']
    """
    names = _head_names(model, head, "freeze_except_head")
    trainable = []
    for pname, p in model.named_parameters():
        p.requires_grad = any(pname.startswith(h + ".") for h in names)
        if p.requires_grad:
            trainable.append(pname)
    return trainable
