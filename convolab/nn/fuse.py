"""Inference-time reparameterisation: fold a BatchNorm into the convolution before it.

In eval mode a BatchNorm is a per-channel affine map,
``bn(y) = gamma * (y - mean) / sqrt(var + eps) + beta``, and a convolution is
linear in its weight, so ``bn(conv(x))`` is one convolution with

    ``w' = w * s``  (``s = gamma / sqrt(var + eps)``, one factor per output channel)
    ``b' = (b - mean) * s + beta``

which saves the BatchNorm's pass over the activations (and its memory).
Works for convolab's and torch's Conv1d/2d/3d and ConvTranspose1d/2d/3d (for
transposed convs the output channels are axis 1 of the weight, per group).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fuse", "fuse_conv_bn"]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
ConvModule = nn.modules.conv._ConvNd  # convolab's convs subclass torch's


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.conv._ConvNd)


def fuse_conv_bn(conv: ConvModule, bn: nn.modules.batchnorm._BatchNorm) -> ConvModule:
    """A new convolution computing ``bn(conv(x))`` with BatchNorm's running statistics.

    Args:
        conv (convolab.nn.Conv*/ConvTranspose* or torch.nn ones): left unchanged.
        bn (torch.nn.BatchNorm1d/2d/3d): must track running statistics; left unchanged.

    Returns:
        A deep copy of ``conv`` (same class, in eval mode, with a bias) whose output equals
        ``bn.eval()(conv(x))``.

    Raises:
        TypeError: ``conv`` is not a convolution or ``bn`` not a BatchNorm.
        ValueError: channel counts differ, or ``bn`` has no running statistics.

    Example:
        >>> import convolab.nn as cnn
        >>> conv, bn = cnn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8).eval()
        >>> fused = fuse_conv_bn(conv, bn)
        >>> x = torch.randn(2, 3, 5, 5)
        >>> torch.allclose(fused(x), bn(conv(x)), atol=1e-5)
        True
    """
    if not _is_conv(conv):
        raise TypeError(f"fuse_conv_bn: conv must be a convolution module, got {type(conv).__name__}")
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
        raise TypeError(f"fuse_conv_bn: bn must be a BatchNorm module, got {type(bn).__name__}")
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"fuse_conv_bn: bn.num_features ({bn.num_features}) must equal conv.out_channels "
            f"({conv.out_channels})"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fuse_conv_bn: bn must track running statistics (track_running_stats=True)")
    fused = copy.deepcopy(conv).eval()
    w = fused.weight.detach()
    with torch.no_grad():
        scale = bn.running_var.to(w.dtype).add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.to(w.dtype)
        shift = -bn.running_mean.to(w.dtype) * scale
        if bn.bias is not None:
            shift = shift + bn.bias.to(w.dtype)
        bias = shift if conv.bias is None else conv.bias.detach() * scale + shift
        k = [1] * (w.dim() - 2)
        if getattr(conv, "transposed", False):  # weight [C_in, C_out/g, *k]: out channels on axis 1
            g = conv.groups
            scaled = w.reshape(g, w.shape[0] // g, w.shape[1], *w.shape[2:]) * scale.view(g, 1, -1, *k)
            fused.weight.copy_(scaled.reshape(w.shape))
        else:
            fused.weight.copy_(w * scale.view(-1, 1, *k))
    fused.bias = nn.Parameter(bias.to(w.dtype))
    return fused


def fuse(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution inside an ``nn.Sequential``.

    The BatchNorm is replaced by ``nn.Identity`` so indices and ``state_dict`` prefixes of the
    other layers do not move. Convolutions followed by anything else are left alone (the
    fusion is only exact when the BatchNorm sees the conv's output and nothing else).

    Args:
        model (nn.Module): any module tree.
        inplace (bool): modify ``model`` itself instead of a deep copy. Default: False.

    Returns:
        The fused model, in eval mode.

    Example:
        >>> import convolab.nn as cnn
        >>> net = torch.nn.Sequential(cnn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU()).eval()
        >>> fused = fuse(net)
        >>> [type(m).__name__ for m in fused]
        ['Conv2d', 'Identity', 'ReLU']
        >>> x = torch.randn(1, 3, 6, 6)
        >>> torch.allclose(fused(x), net(x), atol=1e-5)
        True
    """
    if not inplace:
        model = copy.deepcopy(model)
    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            first, second = module._modules[a], module._modules[b]
            if _is_conv(first) and isinstance(second, _BATCHNORMS) and second.running_mean is not None:
                module._modules[a] = fuse_conv_bn(first, second)
                module._modules[b] = nn.Identity()
    return model.eval()
