"""What the ops share: operand checks, autocast at the op's entry and the rank-pinned wrappers.

``conv``, ``deform_conv``, ``locally_connected`` and the pooling ops take their number of
spatial dims from their operands; ``conv2d``, ``max_pool2d`` and the like only pin it.
:func:`rank_pinned` builds those wrappers, so each shows its general op's signature (without
the private ``_op``/``_nd`` keywords), names itself in errors and checks the weight's rank.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from ._checks import check_floating

__all__ = ["PADDING_MODES", "autocast_operands", "check_bias", "check_dtypes", "check_tensors",
           "public_signature", "rank_pinned", "transposed_weight"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_tensors(
    op: str, input: Tensor, weight: Tensor, bias: Optional[Tensor], fixed: bool, dtypes: bool = True
) -> int:
    """Check types and ranks (and dtypes unless ``dtypes=False``: ops that autocast check them
    after casting); ``op`` is the base name, suffixed by the rank unless ``fixed``."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if weight.dim() not in (3, 4, 5):
        raise ValueError(
            f"{op}: expected weight of rank 3, 4 or 5 ([C_out, C_in/groups, *kernel] with 1-3 "
            f"spatial dims), got rank {weight.dim()} with shape {list(weight.shape)}"
        )
    nd = weight.dim() - 2
    op = op if fixed else f"{op}{nd}d"
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected input of rank {nd + 2} ([N, C, *spatial]) or {nd + 1} (unbatched) "
            f"for a weight with {nd} spatial dims, got rank {input.dim()} with shape {list(input.shape)}"
        )
    if dtypes:
        check_dtypes(op, input, weight, bias)
    return nd


def check_dtypes(op: str, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> None:
    """The dtype rule of :mod:`convolab.functional._checks`: one floating dtype for all operands."""
    check_floating(op, input)
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype ({input.dtype}) must equal weight dtype ({weight.dtype})")
    if bias is not None and bias.dtype != weight.dtype:
        raise TypeError(f"{op}: bias dtype ({bias.dtype}) must equal weight dtype ({weight.dtype})")


def check_bias(op: str, bias: Optional[Tensor], out_channels: int) -> None:
    """bias must be None or of shape ``[out_channels]``."""
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(
            f"{op}: expected bias of shape [{out_channels}] (out_channels), got {list(bias.shape)}"
        )


def autocast_operands(*tensors: Optional[Tensor]) -> tuple[Optional[Tensor], ...]:
    """Cast floating operands to the autocast dtype when autocast is on for their device.

    Convolutions are on autocast's lower-precision list; torch casts inside its kernels,
    convolab casts at the op's entry so its checks and algorithms see one dtype.
    """
    first = next(t for t in tensors if t is not None)
    device = first.device.type
    if not torch.amp.is_autocast_available(device) or not torch.is_autocast_enabled(device):
        return tensors
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) if t is not None and t.is_floating_point() else t for t in tensors)


def public_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature without its private keywords (``_op``, ``_nd``: what a wrapper passes)."""
    signature = inspect.signature(fn)
    return signature.replace(parameters=[p for p in signature.parameters.values() if not p.name.startswith("_")])


def rank_pinned(
    nd: int,
    public: Callable[..., Any],
    name: str,
    core: Callable[..., Any],
    *,
    weight_at: Optional[int] = 1,
    weight_rank: Optional[int] = None,
    weight_layout: Optional[str] = None,
    pin_ndim: bool = False,
) -> Callable[..., Any]:
    """``conv2d``-style wrapper of ``core``: the arguments of ``public``, ``nd`` spatial dims.

    The wrapper calls ``core`` with ``_op=name`` (errors name the wrapper) and, with
    ``pin_ndim``, ``_nd=nd`` (ops whose rank comes from the input: pooling). When
    ``weight_at`` is the weight's position it checks the weight's rank first
    (``weight_rank``, default ``nd + 2``; ``weight_layout`` describes it in the error).
    """
    rank = nd + 2 if weight_rank is None else weight_rank
    layout = weight_layout or f"{nd} spatial dims"
    pinned = {"_op": name, **({"_nd": nd} if pin_ndim else {})}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if weight_at is not None:
            weight = args[weight_at] if len(args) > weight_at else kwargs.get("weight")
            if isinstance(weight, Tensor) and weight.dim() != rank:
                raise ValueError(
                    f"{name}: expected weight of rank {rank} ({layout}), "
                    f"got rank {weight.dim()} with shape {list(weight.shape)}"
                )
        return core(*args, **pinned, **kwargs)

    wrapper.__signature__ = public_signature(public)  # type: ignore[attr-defined]
    wrapper.__name__ = wrapper.__qualname__ = name
    what = (f"``weight`` is {weight_layout}" if weight_layout else
            f"``weight`` must have {nd} spatial dims" if weight_at is not None else
            f"input ``[N, C, *{nd} spatial]`` or unbatched")
    wrapper.__doc__ = (
        f"{nd}-D form of :func:`{public.__name__}`: same arguments, {what}. "
        f"See :func:`convolab.functional.{public.__name__}` for the full contract."
    )
    return wrapper


def transposed_weight(weight: Tensor, groups: int) -> Tensor:
    """Map a conv weight ``[C_out, C_in/g, *k]`` to the transposed-conv weight ``[C_in, C_out/g, *k]``
    that computes the same map on a zero-inserted input, and back (the map is an involution).

    It swaps the two channel axes within each group and flips the kernel in every spatial dim.
    """
    c0, c1, *k = weight.shape
    w = weight.reshape(groups, c0 // groups, c1, *k).transpose(1, 2).reshape(c1 * groups, c0 // groups, *k)
    return w.flip(list(range(2, weight.dim())))
