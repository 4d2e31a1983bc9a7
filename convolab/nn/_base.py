"""What every conv-like module shares: its checked arguments, their torch spelling, its repr.

:func:`conv_spec` checks the arguments of a convolution module once, at construction, with
the messages of :mod:`convolab._args`, and returns a :class:`ConvSpec`. Conv, transposed
conv, deformable and separable modules all build on it, so each states only what differs.

What ``.padding`` holds: torch's spelling when torch has one (a tuple of ints, "valid", or
"same" at stride 1), so tools that read ``module.padding`` of a ``torch.nn.Conv2d`` get what
they expect; convolab's own form otherwise — per-side pairs ``((before, after), ...)`` or
"same" with a stride > 1, which no ``torch.nn.Conv2d`` holds. A tool that assumes torch's
forms then fails loudly (a pair is not an int, torch's constructor rejects a strided "same")
instead of computing something silently different.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Optional, Union

from .. import arithmetic
from .._args import PaddingPairs, check_choice, check_groups, normalize_padding, ntuple, positive_int, positive_tuple

__all__ = ["ConvSpec", "conv_spec", "repr_arguments"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class ConvSpec:
    """The checked arguments of a conv-like module (per-dim tuples, padding resolved as far as
    it can be without the input: per-side pairs, or "same" when it depends on the input size)."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Union[str, PaddingPairs]
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    output_padding: tuple[int, ...]

    @property
    def size_dependent(self) -> bool:
        """'same' padding with a stride > 1: the padding follows the input size."""
        return self.padding == "same"

    @property
    def pairs(self) -> PaddingPairs:
        """Per-side padding when it is static (zeros when it depends on the input size)."""
        if isinstance(self.padding, str):
            return ((0, 0),) * len(self.kernel_size)
        return self.padding

    def torch_padding(self, spelled: Any) -> Union[str, tuple[int, ...], None]:
        """What ``torch.nn.ConvNd`` would hold for this padding, or None when it has no form.

        ``spelled`` is the user's argument: "same"/"valid" keep their name when torch has it.
        """
        if isinstance(spelled, str):
            if spelled.lower() == "valid":
                return "valid"
            return "same" if not self.size_dependent else None
        if all(b == a for b, a in self.pairs):
            return tuple(b for b, _ in self.pairs)
        return None

    def shown_padding(self, spelled: Any) -> Union[str, tuple[int, ...], PaddingPairs]:
        """The value of ``module.padding``: torch's form when it has one, else convolab's."""
        torch_form = self.torch_padding(spelled)
        if torch_form is not None:
            return torch_form
        return "same" if self.size_dependent else self.pairs


def conv_spec(
    op: str,
    ndim: int,
    in_channels: Any,
    out_channels: Any,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    output_padding: Any = 0,
    *,
    transposed: bool = False,
) -> ConvSpec:
    """Check a conv module's arguments; errors name ``op`` (the module's class).

    Raises:
        ValueError: non-positive channels, sizes, strides or dilations; groups that do not
            divide the channels; bad padding or padding mode; 'same' for a transposed conv;
            output_padding not smaller than stride or dilation.
    """
    c_in = positive_int(in_channels, "in_channels", op)
    c_out = positive_int(out_channels, "out_channels", op)
    check_groups(c_in, c_out, groups, op)
    kernel = positive_tuple(kernel_size, ndim, "kernel_size", op)
    stride_t = positive_tuple(stride, ndim, "stride", op)
    dilation_t = positive_tuple(dilation, ndim, "dilation", op)
    if transposed and normalize_padding(padding, ndim, op) == "same":
        raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
    pads = arithmetic.static_padding(padding, ndim, kernel, stride_t, dilation_t, op=op) or "same"
    out_pad = ntuple(output_padding, ndim, "output_padding", op)
    if transposed:
        for o, s, d in zip(out_pad, stride_t, dilation_t):
            if o < 0 or (o >= s and o >= d):
                raise ValueError(
                    f"{op}: output_padding ({out_pad}) must be smaller than "
                    f"stride ({stride_t}) or dilation ({dilation_t}) in every dim"
                )
    mode = check_choice(padding_mode, ("zeros",) if transposed else PADDING_MODES, "padding_mode", op)
    return ConvSpec(c_in, c_out, kernel, stride_t, pads, dilation_t, operator.index(groups), mode, out_pad)


def repr_arguments(module: Any, defaults: dict[str, Any], head: Optional[str] = None) -> str:
    """``extra_repr`` of a conv-like module: channels, kernel and stride, then every argument
    in ``defaults`` whose value differs from its default (as torch prints only those)."""
    s = head if head is not None else (
        f"{module.in_channels}, {module.out_channels}, kernel_size={module.kernel_size}, stride={module.stride}"
    )
    for name, default in defaults.items():
        value = getattr(module, name)
        if value != default:
            s += f", {name}={value!r}"
    if getattr(module, "bias", None) is None:
        s += ", bias=False"
    return s
