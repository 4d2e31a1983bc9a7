"""Pooling modules: drop-in for ``torch.nn``'s (same arguments, attributes and repr), plus every
padding form ("same" with any stride, per-side pairs), generic pooling, global pooling and SPP.

The maths lives on the functional ops in :mod:`convolab.functional.pool`; these modules check
what is known at construction and hold the arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

import torch  # noqa: F401  (the doctests use it)
from torch import Tensor, nn

from .. import arithmetic
from .._args import _is_int, check_choice, normalize_padding, ntuple, positive_tuple

# the function convolab.functional.pool shadows its module's name in the package namespace
P = importlib.import_module("convolab.functional.pool")

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "Pool",
    "SpatialPyramidPool",
]

IntOrTuple = Union[int, Sequence[int]]


def _check_window(
    op: str, n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1
) -> None:
    """Validate window arguments at construction (the input size is only needed for 'same')."""
    k = positive_tuple(kernel_size, n, "kernel_size", op)
    if stride is not None and not (isinstance(stride, Sequence) and len(stride) == 0):
        positive_tuple(stride, n, "stride", op)
    d = positive_tuple(dilation, n, "dilation", op)
    pads = normalize_padding(padding, n, op)
    if pads != "same":
        P.check_pool_padding(pads, k, d, op)


class _MaxPoolNd(nn.Module):
    ndim = 2
    __constants__ = ["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"]

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: Optional[IntOrTuple] = None,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        _check_window(type(self).__name__, self.ndim, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated window per dim: ``dilation*(kernel_size - 1) + 1``."""
        k = ntuple(self.kernel_size, self.ndim, "kernel_size", type(self).__name__)
        d = ntuple(self.dilation, self.ndim, "dilation", type(self).__name__)
        return tuple(arithmetic.effective_kernel_size(kk, dd) for kk, dd in zip(k, d))

    def forward(self, input: Tensor) -> Union[Tensor, tuple[Tensor, Tensor]]:
        return P.max_pool(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            self.return_indices, _op=type(self).__name__, _nd=self.ndim,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, drop-in for ``torch.nn.MaxPool1d``; see :func:`convolab.functional.max_pool`.

    Shape:
        ``[N, C, L] -> [N, C, L_out]``, ``L_out = floor((L + before + after - dilation*(k - 1) - 1)/stride) + 1``.
    """

    ndim = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, drop-in for ``torch.nn.MaxPool2d``, plus "same" and per-side padding.

    See :func:`convolab.functional.max_pool` for the contract.

    Example:
        >>> MaxPool2d(3, stride=2, padding="same")(torch.randn(1, 8, 10, 11)).shape
        torch.Size([1, 8, 5, 6])
    """

    ndim = 2


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, drop-in for ``torch.nn.MaxPool3d``; see :func:`convolab.functional.max_pool`."""

    ndim = 3


class _AvgPoolNd(nn.Module):
    ndim = 2
    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: Optional[IntOrTuple] = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        _check_window(op, self.ndim, kernel_size, stride, padding)
        if divisor_override is not None and (not _is_int(divisor_override) or divisor_override < 1):
            raise ValueError(f"{op}: divisor_override must be None or an int >= 1, got {divisor_override!r}")
        if self.ndim == 1:  # torch.nn.AvgPool1d keeps 1-tuples
            kernel_size = ntuple(kernel_size, 1, "kernel_size", op)
            stride = None if stride is None else ntuple(stride, 1, "stride", op)
            padding = padding if isinstance(padding, str) or not _is_int(padding) else (padding,)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return P.avg_pool(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
            self.divisor_override, _op=type(self).__name__, _nd=self.ndim,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, drop-in for ``torch.nn.AvgPool1d`` (plus ``divisor_override``).

    See :func:`convolab.functional.avg_pool`.
    """

    ndim = 1


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, drop-in for ``torch.nn.AvgPool2d``; see :func:`convolab.functional.avg_pool`.

    Example:
        >>> AvgPool2d(3, 2, padding=((0, 1), (1, 1)))(torch.randn(1, 8, 10, 11)).shape
        torch.Size([1, 8, 5, 6])
    """

    ndim = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, drop-in for ``torch.nn.AvgPool3d``; see :func:`convolab.functional.avg_pool`."""

    ndim = 3


class _LPPoolNd(nn.Module):
    ndim = 2
    __constants__ = ["norm_type", "kernel_size", "stride", "ceil_mode"]

    def __init__(
        self, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, ceil_mode: bool = False
    ) -> None:
        super().__init__()
        op = type(self).__name__
        _check_window(op, self.ndim, kernel_size, stride, 0)
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or norm_type == 0:
            raise ValueError(f"{op}: norm_type must be a non-zero number (the power p), got {norm_type!r}")
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return P.lp_pool(
            input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode,
            _op=type(self).__name__, _nd=self.ndim,
        )

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling, drop-in for ``torch.nn.LPPool1d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 1


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling, drop-in for ``torch.nn.LPPool2d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 2


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling, drop-in for ``torch.nn.LPPool3d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 3


class _AdaptivePoolNd(nn.Module):
    ndim = 2
    mode = "max"
    __constants__ = ["output_size", "return_indices"]

    def __init__(self, output_size: Union[int, None, Sequence[Optional[int]]], return_indices: bool = False) -> None:
        super().__init__()
        P._adaptive_size(type(self).__name__, output_size, self.ndim)
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Union[Tensor, tuple[Tensor, Tensor]]:
        op, nd = type(self).__name__, self.ndim
        if self.mode == "max":
            return P.adaptive_max_pool(input, self.output_size, self.return_indices, _op=op, _nd=nd)
        return P.adaptive_avg_pool(input, self.output_size, _op=op, _nd=nd)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    mode = "avg"

    def __init__(self, output_size: Union[int, None, Sequence[Optional[int]]]) -> None:
        super().__init__(output_size)


class AdaptiveMaxPool1d(_AdaptivePoolNd):
    """Drop-in for ``torch.nn.AdaptiveMaxPool1d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 1


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """Drop-in for ``torch.nn.AdaptiveMaxPool2d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 2


class AdaptiveMaxPool3d(_AdaptivePoolNd):
    """Drop-in for ``torch.nn.AdaptiveMaxPool3d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Drop-in for ``torch.nn.AdaptiveAvgPool1d``; see :func:`convolab.functional.adaptive_avg_pool`."""

    ndim = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Drop-in for ``torch.nn.AdaptiveAvgPool2d``; see :func:`convolab.functional.adaptive_avg_pool`."""

    ndim = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Drop-in for ``torch.nn.AdaptiveAvgPool3d``; see :func:`convolab.functional.adaptive_avg_pool`."""

    ndim = 3


class GlobalMaxPool(nn.Module):
    """Global max pooling over every spatial dim; see :func:`convolab.functional.global_max_pool`.

    Shape:
        ``[N, C, *spatial] -> [N, C]`` (``[N, C, 1, ...]`` with ``keepdim=True``).
    """

    def __init__(self, keepdim: bool = False) -> None:
        super().__init__()
        self.keepdim = bool(keepdim)

    def forward(self, input: Tensor) -> Tensor:
        return P.global_max_pool(input, self.keepdim)

    def extra_repr(self) -> str:
        return "keepdim=True" if self.keepdim else ""


class GlobalAvgPool(GlobalMaxPool):
    """Global average pooling (GAP) over every spatial dim; see :func:`convolab.functional.global_avg_pool`.

    Example:
        >>> GlobalAvgPool()(torch.randn(2, 512, 7, 7)).shape
        torch.Size([2, 512])
    """

    def forward(self, input: Tensor) -> Tensor:
        return P.global_avg_pool(input, self.keepdim)


class Pool(nn.Module):
    """Pooling with any reduction of the window; see :func:`convolab.functional.pool`.

    Example:
        >>> Pool(2, reduce=torch.logsumexp)(torch.randn(1, 3, 6, 6)).shape
        torch.Size([1, 3, 3, 3])
    """

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: Optional[IntOrTuple] = None,
        padding: Any = 0,
        *,
        reduce: Union[str, Callable[..., Tensor]],
        dilation: IntOrTuple = 1,
        pad_value: Optional[float] = None,
    ) -> None:
        super().__init__()
        if isinstance(kernel_size, Sequence):
            _check_window("Pool", len(kernel_size), kernel_size, stride, padding, dilation)
        else:  # the number of spatial dims is only known from the input; check the rest at call time
            positive_tuple(kernel_size, 1, "kernel_size", "Pool")
        if isinstance(reduce, str):
            check_choice(reduce, tuple(P._NAMED_REDUCTIONS), "reduce", "Pool")
        elif not callable(reduce):
            raise TypeError(f"Pool: reduce must be a reduction name or a callable, got {type(reduce).__name__}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.reduce, self.dilation, self.pad_value = reduce, dilation, pad_value

    def forward(self, input: Tensor) -> Tensor:
        return P.pool(
            input, self.kernel_size, self.stride, self.padding,
            reduce=self.reduce, dilation=self.dilation, pad_value=self.pad_value,
        )

    def extra_repr(self) -> str:
        name = self.reduce if isinstance(self.reduce, str) else getattr(self.reduce, "__name__", repr(self.reduce))
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, reduce={name}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.pad_value is not None:
            s += f", pad_value={self.pad_value}"
        return s


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling (He et al., 2014); see :func:`convolab.functional.spatial_pyramid_pool`.

    Put it between the last conv and the first fully connected layer: its output length,
    ``output_features(C) = C * sum(prod(level))``, does not depend on the input size.

    Example:
        >>> spp = SpatialPyramidPool((1, 2, 4))
        >>> spp(torch.randn(2, 256, 13, 13)).shape, spp(torch.randn(2, 256, 9, 20)).shape
        (torch.Size([2, 5376]), torch.Size([2, 5376]))
    """

    def __init__(
        self, levels: Sequence[IntOrTuple] = (1, 2, 4), mode: str = "max", *, bins: str = "adaptive"
    ) -> None:
        super().__init__()
        op = "SpatialPyramidPool"
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or len(levels) == 0:
            raise ValueError(f"{op}: levels must be a non-empty sequence of bin counts, got {levels!r}")
        for level in levels:
            if _is_int(level):
                positive_tuple(level, 1, "levels", op)
            else:
                positive_tuple(level, len(level), "levels", op)
        self.levels = tuple(levels)
        self.mode = check_choice(mode, P.SPP_MODES, "mode", op)
        self.bins = check_choice(bins, P.SPP_BINS, "bins", op)

    def output_features(self, channels: int, ndim: int = 2) -> int:
        """Length of the output vector for ``channels`` input channels (:func:`convolab.arithmetic.spp_features`)."""
        return arithmetic.spp_features(channels, self.levels, ndim)

    def forward(self, input: Tensor) -> Tensor:
        return P.spatial_pyramid_pool(input, self.levels, self.mode, bins=self.bins)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}, bins={self.bins!r}"
