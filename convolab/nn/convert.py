"""convolab modules as torch's own, for tools that match modules by their exact class.

convolab's conv and pooling modules subclass torch's, so ``isinstance`` checks, ``state_dict``
keys and FLOP counters that trace the graph (fvcore, ``torch.utils.flop_counter``, torchinfo)
see them as torch's. Some tools look classes up in a table by exact type instead (thop,
ptflops' default backend, ``torch.ao.quantization`` fusion): :func:`torch_equivalents` gives
the table entries, :func:`to_torch` the model rebuilt from torch's classes wherever a layer's
configuration has a torch spelling (the outputs are identical; what has none stays).
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from .conv import _ConvNd
from .pool import _AdaptivePoolNd, _AvgPoolNd, _LPPoolNd, _MaxPoolNd

__all__ = ["to_torch", "torch_equivalents"]


def torch_equivalents() -> dict[type, type]:
    """``{convolab class: the torch.nn class it subclasses}`` for every such module class.

    Use it to extend tables keyed by torch's classes, e.g. thop's counting hooks:

    >>> import convolab.nn as cnn
    >>> torch_equivalents()[cnn.Conv2d] is torch.nn.Conv2d
    True
    """
    table: dict[type, type] = {}
    stack = [nn.Module]
    seen: set[type] = set()
    while stack:  # every convolab class below nn.Module whose MRO holds a torch.nn class
        for cls in stack.pop().__subclasses__():
            if cls in seen:
                continue
            seen.add(cls)
            stack.append(cls)
            if cls.__module__.startswith("convolab.") and not cls.__name__.startswith("_"):
                base = next((b for b in cls.__mro__[1:] if b.__module__.startswith("torch.nn.modules")
                             and not b.__name__.startswith("_")), None)
                if base is not None:
                    table[cls] = base
    return table


def _torch_conv(m: _ConvNd) -> Optional[nn.Module]:
    padding = m.padding
    if not (isinstance(padding, str) and padding in ("valid", "same") and not m._size_dependent) and not (
        isinstance(padding, tuple) and all(isinstance(p, int) for p in padding)
    ):
        return None  # per-side or strided 'same' padding: torch has no such conv
    base = torch_equivalents()[type(m)]
    kwargs = dict(stride=m.stride, padding=padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None,
                  device=m.weight.device, dtype=m.weight.dtype)
    if m.transposed:
        twin = base(m.in_channels, m.out_channels, m.kernel_size, output_padding=m.output_padding, **kwargs)
    else:
        twin = base(m.in_channels, m.out_channels, m.kernel_size, padding_mode=m.padding_mode, **kwargs)
    with torch.no_grad():
        twin.weight.copy_(m.weight.flip(list(range(2, m.weight.dim()))) if getattr(m, "flip", False) else m.weight)
        if m.bias is not None:
            twin.bias.copy_(m.bias)
    return twin.train(m.training)


def _torch_pool(m: nn.Module) -> Optional[nn.Module]:
    base = torch_equivalents()[type(m)]
    if isinstance(m, _AdaptivePoolNd):
        return base(m.output_size, m.return_indices) if m.mode == "max" else base(m.output_size)
    if isinstance(m, _LPPoolNd):  # torch scales ceil_mode's partial windows differently
        return None if m.ceil_mode else base(m.norm_type, m.kernel_size, m.stride, m.ceil_mode)
    padding = m._torch_padding()
    if padding is None:
        return None  # 'same' or per-side padding, or over half the window: not torch's
    if isinstance(m, _MaxPoolNd):
        return base(m.kernel_size, m.stride, padding, m.dilation, m.return_indices, m.ceil_mode)
    if isinstance(m, _AvgPoolNd):
        if m.ndim == 1:
            return None if m.divisor_override is not None else base(m.kernel_size, m.stride, padding, m.ceil_mode,
                                                                       m.count_include_pad)
        return base(m.kernel_size, m.stride, padding, m.ceil_mode, m.count_include_pad, m.divisor_override)
    return None


def to_torch(model: nn.Module, *, strict: bool = False) -> nn.Module:
    """A copy of ``model`` with every convolab conv and pooling layer that torch can spell as
    torch's own module (same weights, same outputs); the rest is kept as it is.

    Args:
        model (nn.Module): any model (or a single layer).
        strict (bool): raise instead of keeping a layer torch cannot spell. Default: False.

    Returns:
        The converted copy (``model`` itself is untouched).

    Raises:
        ValueError: with ``strict``, naming the layers torch has no module for (e.g. padding
            "same" with a stride, per-side padding).

    Example:
        >>> import convolab.nn as cnn
        >>> net = torch.nn.Sequential(cnn.Conv2d(3, 8, 3, padding=1), cnn.MaxPool2d(2))
        >>> [type(m).__module__ for m in to_torch(net)]
        ['torch.nn.modules.conv', 'torch.nn.modules.pooling']
        >>> x = torch.randn(1, 3, 8, 8)
        >>> torch.equal(to_torch(net)(x), net(x))
        True
    """
    model = copy.deepcopy(model)
    kept: list[str] = []

    def convert(m: nn.Module) -> Optional[nn.Module]:
        if isinstance(m, _ConvNd):
            return _torch_conv(m)
        if isinstance(m, (_MaxPoolNd, _AvgPoolNd, _LPPoolNd, _AdaptivePoolNd)):
            return _torch_pool(m)
        return m

    root = convert(model)
    if root is None:
        kept.append(type(model).__name__)
        root = model
    elif root is not model:
        model = root
    for name, child in list(model.named_modules()):
        for key, sub in list(child._modules.items()):
            if sub is None or sub.__class__.__module__.startswith("torch."):
                continue
            new = convert(sub)
            if new is None:
                kept.append(f"{name + '.' if name else ''}{key} ({type(sub).__name__})")
            elif new is not sub:
                child._modules[key] = new
    if strict and kept:
        raise ValueError(f"to_torch: torch has no module for {', '.join(kept)}")
    return model
