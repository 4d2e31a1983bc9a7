"""Pooling modules: drop-in for ``torch.nn``'s (same arguments, attributes and repr), plus every
padding form ("same" with any stride, per-side pairs), generic pooling, global pooling and SPP.

Each windowed and adaptive module subclasses the matching ``torch.nn`` class
(``isinstance(m, torch.nn.MaxPool2d)`` holds; the attributes hold the arguments as given, as
torch's do). The maths lives on the functional ops in :mod:`convolab.functional.pooling`; these
modules check what is known at construction and hold the arguments.

Under ``torch.jit.script`` the modules run torch's pooling kernels
(:mod:`convolab.functional._lowered`): every padding form with ``ceil_mode=False``, and
torch's own padding with ``ceil_mode``. What TorchScript cannot express (indices or
``ceil_mode`` with convolab's own padding, a callable reduction) is refused when scripting,
with a message that says what to use instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import arithmetic
from .._args import IntOrTuple, check_choice, is_int, ntuple, positive_tuple
from ..functional._lowered import avg_pool_nd, max_pool_nd, pad_pairs, padded_avg_pool, pool_padding, same_pairs
from ..functional.pooling import (
    _NAMED_REDUCTIONS,
    SPP_BINS,
    SPP_MODES,
    adaptive_avg_pool,
    adaptive_max_pool,
    _adaptive_size,
    avg_pool,
    _check_divisor,
    lp_pool,
    max_pool,
    check_pool_padding,
    global_avg_pool,
    global_max_pool,
    pool,
    spatial_pyramid_pool,
)

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



def _refuse_script(op: str, why: str) -> None:
    raise RuntimeError(
        f"{op}: torch.jit.script cannot compile this module: {why}; torch.jit.trace, torch.export "
        f"and torch.compile can"
    )


class _WindowPool:
    """The window arguments of a pooling module, checked at construction and kept as the typed
    lists the TorchScript forward needs (the public attributes hold the arguments as given)."""

    ndim = 2
    __jit_unused_properties__ = ["effective_kernel_size"]

    def _window(
        self, kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1
    ) -> None:
        op, n = type(self).__name__, self.ndim
        k = positive_tuple(kernel_size, n, "kernel_size", op)
        empty = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        s = k if empty else positive_tuple(stride, n, "stride", op)
        d = positive_tuple(dilation, n, "dilation", op)
        static = arithmetic.static_padding(padding, n, k, s, d, op=op)
        if static is not None:
            check_pool_padding(static, k, d, op)
        self._kernel: List[int] = list(k)
        self._stride: List[int] = list(s)
        self._dilation: List[int] = list(d)
        self._pairs: List[Tuple[int, int]] = list(static if static is not None else ((0, 0),) * n)
        self._size_dependent = static is None

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """Extent of the dilated window per dim: ``dilation*(kernel_size - 1) + 1``."""
        return tuple(arithmetic.effective_kernel_size(k, d) for k, d in zip(self._kernel, self._dilation))

    def _torch_padding(self) -> Optional[List[int]]:
        return None if self._size_dependent else pool_padding(self._pairs, self._kernel)

    def _scripted_pairs(self, input: Tensor) -> List[Tuple[int, int]]:
        if self._size_dependent:
            nd = len(self._kernel)
            return same_pairs(input.shape[input.dim() - nd:], self._kernel, self._stride, self._dilation)
        return self._pairs


class _MaxPoolNd(_WindowPool):
    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: Optional[IntOrTuple] = None,
        padding: Any = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self._window(kernel_size, stride, padding, dilation)
        self._name = type(self).__name__

    def forward(self, input: Tensor):  # type: ignore[override]
        if torch.jit.is_scripting():
            return self._scripted(input)
        return max_pool(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            self.return_indices, _op=self._name, _nd=self.ndim,
        )

    def _scripted(self, input: Tensor) -> Tensor:
        pairs = self._scripted_pairs(input)
        torch_padding = pool_padding(pairs, self._kernel)
        if torch_padding is not None:
            return max_pool_nd(input, self._kernel, self._stride, torch_padding, self._dilation, self.ceil_mode)
        x = pad_pairs(input, pairs, float("-inf"))
        return max_pool_nd(x, self._kernel, self._stride, [0] * len(self._kernel), self._dilation, False)

    def __prepare_scriptable__(self) -> nn.Module:
        if self.return_indices:
            _refuse_script(self._name, "return_indices=True returns a pair (use torch.nn.MaxPool with indices)")
        if self.ceil_mode and self._torch_padding() is None:
            _refuse_script(self._name, "ceil_mode=True with padding beyond torch's own forms")
        return self


class MaxPool1d(_MaxPoolNd, nn.MaxPool1d):
    """1-D max pooling, drop-in for ``torch.nn.MaxPool1d``; see :func:`convolab.functional.max_pool`.

    Shape:
        ``[N, C, L] -> [N, C, L_out]``, ``L_out = floor((L + before + after - dilation*(k - 1) - 1)/stride) + 1``.
    """

    ndim = 1


class MaxPool2d(_MaxPoolNd, nn.MaxPool2d):
    """2-D max pooling, drop-in for ``torch.nn.MaxPool2d``, plus "same" and per-side padding.

    See :func:`convolab.functional.max_pool` for the contract.

    Example:
        >>> MaxPool2d(3, stride=2, padding="same")(torch.randn(1, 8, 10, 11)).shape
        torch.Size([1, 8, 5, 6])
    """

    ndim = 2


class MaxPool3d(_MaxPoolNd, nn.MaxPool3d):
    """3-D max pooling, drop-in for ``torch.nn.MaxPool3d``; see :func:`convolab.functional.max_pool`."""

    ndim = 3


class _AvgPoolNd(_WindowPool):
    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: Optional[IntOrTuple] = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
    ) -> None:
        op = type(self).__name__
        _check_divisor(op, divisor_override)
        if self.ndim == 1:  # torch.nn.AvgPool1d keeps 1-tuples and has no divisor_override
            super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
            self.kernel_size = ntuple(kernel_size, 1, "kernel_size", op)
            self.stride = self.kernel_size if stride is None else ntuple(stride, 1, "stride", op)
            self.padding = padding if isinstance(padding, str) or not is_int(padding) else (padding,)
            self.divisor_override = divisor_override
        else:
            super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self._window(kernel_size, stride, padding)
        self._name = op

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input)
        return avg_pool(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
            self.divisor_override, _op=self._name, _nd=self.ndim,
        )

    def _scripted(self, input: Tensor) -> Tensor:
        pairs = self._scripted_pairs(input)
        torch_padding = pool_padding(pairs, self._kernel)
        if torch_padding is not None:
            return avg_pool_nd(input, self._kernel, self._stride, torch_padding, self.ceil_mode,
                               self.count_include_pad, self.divisor_override)
        return padded_avg_pool(input, self._kernel, self._stride, pairs, self.count_include_pad, self.divisor_override)

    def __prepare_scriptable__(self) -> nn.Module:
        if self.ceil_mode and self._torch_padding() is None:
            _refuse_script(self._name, "ceil_mode=True with padding beyond torch's own forms")
        return self

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd, nn.AvgPool1d):
    """1-D average pooling, drop-in for ``torch.nn.AvgPool1d`` (plus ``divisor_override``).

    See :func:`convolab.functional.avg_pool`.
    """

    ndim = 1


class AvgPool2d(_AvgPoolNd, nn.AvgPool2d):
    """2-D average pooling, drop-in for ``torch.nn.AvgPool2d``; see :func:`convolab.functional.avg_pool`.

    Example:
        >>> AvgPool2d(3, 2, padding=((0, 1), (1, 1)))(torch.randn(1, 8, 10, 11)).shape
        torch.Size([1, 8, 5, 6])
    """

    ndim = 2


class AvgPool3d(_AvgPoolNd, nn.AvgPool3d):
    """3-D average pooling, drop-in for ``torch.nn.AvgPool3d``; see :func:`convolab.functional.avg_pool`."""

    ndim = 3


class _LPPoolNd(_WindowPool):
    def __init__(
        self, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, ceil_mode: bool = False
    ) -> None:
        op = type(self).__name__
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or norm_type == 0:
            raise ValueError(f"{op}: norm_type must be a non-zero number (the power p), got {norm_type!r}")
        super().__init__(norm_type, kernel_size, stride, ceil_mode)
        self._window(kernel_size, stride, 0)
        self._name = op

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input)
        return lp_pool(
            input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode, _op=self._name, _nd=self.ndim,
        )

    def _scripted(self, input: Tensor) -> Tensor:
        # convolab's Lp pooling (see functional.lp_pool): sums of x**p, the sign kept
        p = float(self.norm_type)
        zeros = [0] * len(self._kernel)
        if p == float("inf") or p == float("-inf"):
            y = max_pool_nd(input.abs() if p > 0 else -input.abs(), self._kernel, self._stride, zeros,
                            self._dilation, self.ceil_mode)
            return y if p > 0 else -y
        sums = avg_pool_nd(input.pow(p), self._kernel, self._stride, zeros, self.ceil_mode, True, 1)
        return (torch.sign(sums) * F.relu(sums.abs())).pow(1.0 / p)

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool1d(_LPPoolNd, nn.LPPool1d):
    """1-D power-average pooling, drop-in for ``torch.nn.LPPool1d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 1


class LPPool2d(_LPPoolNd, nn.LPPool2d):
    """2-D power-average pooling, drop-in for ``torch.nn.LPPool2d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 2


class LPPool3d(_LPPoolNd, nn.LPPool3d):
    """3-D power-average pooling, drop-in for ``torch.nn.LPPool3d``; see :func:`convolab.functional.lp_pool`."""

    ndim = 3


class _AdaptivePoolNd:
    ndim = 2
    mode = "max"

    def _sizes(self, output_size: Any) -> None:
        sizes = _adaptive_size(type(self).__name__, output_size, self.ndim)
        # None (keep the input's size) as -1: TorchScript lists hold one type
        self._output: List[int] = [-1 if v is None else v for v in sizes]
        self._name = type(self).__name__
        self._mode = self.mode  # class attributes do not exist in TorchScript

    def forward(self, input: Tensor):  # type: ignore[override]
        if torch.jit.is_scripting():
            return self._scripted(input)
        if self.mode == "max":
            return adaptive_max_pool(input, self.output_size, self.return_indices, _op=self._name, _nd=self.ndim)
        return adaptive_avg_pool(input, self.output_size, _op=self._name, _nd=self.ndim)

    def _scripted(self, input: Tensor) -> Tensor:
        nd = len(self._output)
        size: List[int] = []
        for j in range(nd):
            v = self._output[j]
            size.append(input.shape[input.dim() - nd + j] if v < 0 else v)
        if nd == 1:
            return F.adaptive_max_pool1d(input, size) if self._mode == "max" else F.adaptive_avg_pool1d(input, size)
        if nd == 2:
            return F.adaptive_max_pool2d(input, size) if self._mode == "max" else F.adaptive_avg_pool2d(input, size)
        return F.adaptive_max_pool3d(input, size) if self._mode == "max" else F.adaptive_avg_pool3d(input, size)

    def __prepare_scriptable__(self) -> nn.Module:
        if self.mode == "max" and self.return_indices:
            _refuse_script(self._name, "return_indices=True returns a pair (use torch.nn.AdaptiveMaxPool with indices)")
        return self


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size: Union[int, None, Sequence[Optional[int]]], return_indices: bool = False) -> None:
        super().__init__(output_size, return_indices)
        self._sizes(output_size)


class _AdaptiveAvgPoolNd(_AdaptivePoolNd):
    mode = "avg"

    def __init__(self, output_size: Union[int, None, Sequence[Optional[int]]]) -> None:
        super().__init__(output_size)
        self._sizes(output_size)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool1d):
    """Drop-in for ``torch.nn.AdaptiveMaxPool1d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool2d):
    """Drop-in for ``torch.nn.AdaptiveMaxPool2d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool3d):
    """Drop-in for ``torch.nn.AdaptiveMaxPool3d``; see :func:`convolab.functional.adaptive_max_pool`."""

    ndim = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool1d):
    """Drop-in for ``torch.nn.AdaptiveAvgPool1d``; see :func:`convolab.functional.adaptive_avg_pool`."""

    ndim = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool2d):
    """Drop-in for ``torch.nn.AdaptiveAvgPool2d``; see :func:`convolab.functional.adaptive_avg_pool`."""

    ndim = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool3d):
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
        if torch.jit.is_scripting():
            return torch.amax(input, _spatial_dims(input), self.keepdim)
        return global_max_pool(input, self.keepdim)

    def extra_repr(self) -> str:
        return "keepdim=True" if self.keepdim else ""


class GlobalAvgPool(GlobalMaxPool):
    """Global average pooling (GAP) over every spatial dim; see :func:`convolab.functional.global_avg_pool`.

    Example:
        >>> GlobalAvgPool()(torch.randn(2, 512, 7, 7)).shape
        torch.Size([2, 512])
    """

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return torch.mean(input, _spatial_dims(input), self.keepdim)
        return global_avg_pool(input, self.keepdim)


def _spatial_dims(input: Tensor) -> List[int]:
    dims: List[int] = []
    for d in range(2, input.dim()):
        dims.append(d)
    return dims


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
            n = len(kernel_size)
            k = positive_tuple(kernel_size, n, "kernel_size", "Pool")
            if stride is not None and not (isinstance(stride, Sequence) and len(stride) == 0):
                positive_tuple(stride, n, "stride", "Pool")
            d = positive_tuple(dilation, n, "dilation", "Pool")
            static = arithmetic.static_padding(padding, n, k, k if stride is None else stride, d, op="Pool")
            if static is not None:
                check_pool_padding(static, k, d, "Pool")
        else:  # the number of spatial dims is only known from the input; check the rest at call time
            positive_tuple(kernel_size, 1, "kernel_size", "Pool")
        if isinstance(reduce, str):
            check_choice(reduce, tuple(_NAMED_REDUCTIONS), "reduce", "Pool")
        elif not callable(reduce):
            raise TypeError(f"Pool: reduce must be a reduction name or a callable, got {type(reduce).__name__}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.reduce, self.dilation, self.pad_value = reduce, dilation, pad_value

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(input, torch.fx.Proxy) and not isinstance(self.reduce, str):
            raise RuntimeError(
                "Pool: torch.fx.symbolic_trace cannot record a Python callable reduction "
                f"({getattr(self.reduce, '__name__', self.reduce)!r}) as a graph argument; use a named "
                "reduction, torch.export or torch.compile, or a Tracer that keeps Pool a leaf module"
            )
        return pool(
            input, self.kernel_size, self.stride, self.padding,
            reduce=self.reduce, dilation=self.dilation, pad_value=self.pad_value,
        )

    def __prepare_scriptable__(self) -> nn.Module:
        _refuse_script("Pool", "its reduction is Python (MaxPool, AvgPool and LPPool script)")
        return self

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
        checked = [
            positive_tuple(level, len(level) if isinstance(level, Sequence) else 1, "levels", op) for level in levels
        ]
        self.levels = tuple(levels)
        self.mode = check_choice(mode, SPP_MODES, "mode", op)
        self.bins = check_choice(bins, SPP_BINS, "bins", op)
        self._levels: List[List[int]] = [list(level) for level in checked]

    def output_features(self, channels: int, ndim: int = 2) -> int:
        """Length of the output vector for ``channels`` input channels (:func:`convolab.arithmetic.spp_features`)."""
        return arithmetic.spp_features(channels, self.levels, ndim)

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._scripted(input)
        return spatial_pyramid_pool(input, self.levels, self.mode, bins=self.bins)

    def _scripted(self, input: Tensor) -> Tensor:
        nd = input.dim() - 2
        pieces: List[Tensor] = []
        for level in self._levels:
            bins = level if len(level) == nd else [level[0]] * nd
            if self.bins == "adaptive":
                if nd == 1:
                    y = F.adaptive_max_pool1d(input, bins) if self.mode == "max" else F.adaptive_avg_pool1d(input, bins)
                elif nd == 2:
                    y = F.adaptive_max_pool2d(input, bins) if self.mode == "max" else F.adaptive_avg_pool2d(input, bins)
                else:
                    y = F.adaptive_max_pool3d(input, bins) if self.mode == "max" else F.adaptive_avg_pool3d(input, bins)
            else:
                window: List[int] = []
                step: List[int] = []
                for j in range(nd):
                    w, s = arithmetic.spp_window_unchecked(input.shape[2 + j], bins[j])
                    if s < 1 or (input.shape[2 + j] - w) // s + 1 != bins[j]:
                        raise RuntimeError("SpatialPyramidPool: the paper's bins do not fit this input size")
                    window.append(w)
                    step.append(s)
                zeros = [0] * nd
                if self.mode == "max":
                    y = max_pool_nd(input, window, step, zeros, [1] * nd, False)
                else:
                    y = avg_pool_nd(input, window, step, zeros, False, True, None)
            pieces.append(y.flatten(1))
        return torch.cat(pieces, dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}, bins={self.bins!r}"
