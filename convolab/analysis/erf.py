"""The empirical receptive field: how much each input pixel moves a centre unit (Luo et al., 2016).

The theoretical field (:func:`~convolab.analysis.receptive_field`) says which
pixels a unit *can* see; the effective field measures how much each one
matters: the gradient of the centre unit of a layer's output with respect to
the input, on real compute. It is usually Gaussian-shaped and much smaller
than the theoretical field.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import Optional, Union

import torch
from torch import Tensor, nn

from .._args import suggest

__all__ = ["effective_receptive_field"]


class _Reached(Exception):
    """Raised by the hook to stop the forward pass once the layer has run."""


def effective_receptive_field(
    model: nn.Module,
    input: Tensor,
    layer: Union[str, nn.Module, None] = None,
    unit: Optional[Sequence[int]] = None,
) -> Tensor:
    """Heatmap of ``|d unit / d input|`` for one unit of ``layer``'s output (default: the centre).

    Definition: with ``y`` the layer's output ``[N, C, *S]`` and ``c`` the unit's
    spatial index (default ``S // 2`` per dim), the map is ``sum_{n, k} |d (sum_c' y[n, c', c]) / d x[n, k]|``
    over the batch and input channels, normalised to sum 1. Averaging over a
    batch of (random or real) inputs gives the expected effective field. The
    model runs in eval mode (restored afterwards) and stops after ``layer``;
    parameter gradients are not touched.

    Args:
        model (nn.Module): the network.
        input (Tensor[N, C, *spatial]): the input(s) to probe with.
        layer (str or nn.Module, optional): qualified module name or the module itself;
            default: the model's output.
        unit (sequence of ints, optional): spatial index of the unit in the layer's output;
            default: its centre.

    Returns:
        Tensor[*spatial]: non-negative, sums to 1 (all zeros if the unit does not depend
        on the input).

    Shape:
        ``input [N, C, *S_in]`` -> ``[*S_in]``.

    Raises:
        ValueError: an unknown layer name (closest names listed), or a layer output without
            spatial dims.
        TypeError: ``input`` is not a floating-point tensor.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))
        >>> erf = effective_receptive_field(net, torch.randn(2, 1, 9, 9))
        >>> erf.shape, int((erf > 0).sum())          # the theoretical field: 5x5
        (torch.Size([9, 9]), 25)
    """
    op = "effective_receptive_field"
    if not isinstance(input, Tensor) or not input.is_floating_point():
        raise TypeError(f"{op}: input must be a floating-point tensor, got "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    if input.dim() < 3:
        raise ValueError(f"{op}: input must be [N, C, *spatial] with 1-3 spatial dims, "
                         f"got shape {list(input.shape)}")
    if isinstance(layer, str) and layer:
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ValueError(f"{op}: no layer named {layer!r}{suggest(layer, modules)}")
        target = modules[layer]
    elif isinstance(layer, nn.Module):
        target = layer
    else:
        target = model
    captured: list[Tensor] = []

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        out = output if isinstance(output, Tensor) else next(
            t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, Tensor))
        captured.append(out)
        raise _Reached

    x = input.detach().clone().requires_grad_(True)
    handle = target.register_forward_hook(hook)
    training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.enable_grad():
            try:
                model(x)
            except _Reached:
                pass
    finally:
        handle.remove()
        for m, t in training:
            m.training = t
    if not captured:
        raise ValueError(f"{op}: layer {layer!r} was not called by the forward pass")
    y = captured[0]
    if y.dim() < 3:
        raise ValueError(f"{op}: the output of {layer!r} has no spatial dims (shape {list(y.shape)})")
    size = tuple(y.shape[2:])
    index = tuple(s // 2 for s in size) if unit is None else tuple(unit)
    if len(index) != len(size) or any(
        not isinstance(u, int) or isinstance(u, bool) or not 0 <= u < s for u, s in zip(index, size)
    ):
        raise ValueError(f"{op}: unit must be {len(size)} indices inside the output {size}, got {unit!r}")
    centre = (slice(None), slice(None), *index)
    if not y.requires_grad:
        return torch.zeros(x.shape[2:], dtype=x.dtype)
    (grad,) = torch.autograd.grad(y[centre].sum(), x, allow_unused=True)
    if grad is None:
        return torch.zeros(x.shape[2:], dtype=x.dtype)
    heat = grad.abs().sum(dim=(0, 1))
    total = heat.sum()
    return heat / total if total > 0 else heat
