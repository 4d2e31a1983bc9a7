"""ROI pooling modules; the definitions are on :func:`convolab.functional.roi_align`,
:func:`convolab.functional.roi_pool` (custom ops ``convolab::roi_align``/``roi_pool``) and
:func:`convolab.functional.roi_spatial_pyramid_pool`.

For ``torch.fx.symbolic_trace`` the functional ops are leaves (``torch.fx.wrap``): the
graph shows one ``roi_align``/``roi_pool`` call per module, boxes as an input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List, Union

import torch
from torch import Tensor, nn

from .. import arithmetic
from .._args import positive_tuple
from ..functional.roi import (
    _roi_spp,
    check_levels,
    check_mode,
    check_sampling_ratio,
    check_spatial_scale,
    roi_align,
    roi_pool,
    roi_spatial_pyramid_pool,
)

# fx leaves: symbolic tracing records one call instead of tracing the box checks
torch.fx.wrap("roi_align")
torch.fx.wrap("roi_pool")
torch.fx.wrap("roi_spatial_pyramid_pool")

__all__ = ["RoIAlign", "RoIPool", "RoISpatialPyramidPool"]


def _scripted_rois(input: Tensor, boxes: Union[Tensor, List[Tensor]]) -> Tensor:
    """``Tensor[K, 5]`` rows (batch index first) from either box form, in the input's dtype
    (what :func:`convolab.functional.roi_align` makes of them, without its eager checks)."""
    if isinstance(boxes, Tensor):
        return boxes.detach().to(input.dtype)
    parts: List[Tensor] = []
    for i, b in enumerate(boxes):
        b = b.detach().to(input.dtype)
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], 1))
    return torch.cat(parts) if len(parts) > 0 else input.new_zeros(0, 5)


class RoIAlign(nn.Module):
    """RoI Align (Mask R-CNN) as a module: ``forward(input, boxes)``.

    Shape:
        input ``[N, C, H, W]``, boxes ``Tensor[K, 5]`` or a list of ``Tensor[L, 4]`` ->
        output ``[K, C, oh, ow]``.

    Example:
        >>> RoIAlign(7, spatial_scale=1 / 16, sampling_ratio=2)(torch.randn(2, 8, 50, 68),
        ...     torch.tensor([[0, 10., 20., 300., 400.], [1, 0., 0., 100., 90.]])).shape
        torch.Size([2, 8, 7, 7])
    """

    def __init__(
        self,
        output_size: Union[int, Sequence[int]],
        spatial_scale: float = 1.0,
        sampling_ratio: int = -1,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = positive_tuple(output_size, 2, "output_size", "RoIAlign")
        self.spatial_scale = check_spatial_scale("RoIAlign", spatial_scale)
        self.sampling_ratio = check_sampling_ratio("RoIAlign", sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, input: Tensor, boxes: Union[Tensor, List[Tensor]]) -> Tensor:
        if torch.jit.is_scripting():  # the custom op itself (checked boxes are the caller's job here)
            return torch.ops.convolab.roi_align(input, _scripted_rois(input, boxes), [s for s in self.output_size],
                                                self.spatial_scale, self.sampling_ratio, self.aligned)
        return roi_align(input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )


class RoIPool(nn.Module):
    """RoI max pooling (Fast R-CNN) as a module: ``forward(input, boxes)``.

    Shape:
        input ``[N, C, H, W]``, boxes ``Tensor[K, 5]`` or a list of ``Tensor[L, 4]`` ->
        output ``[K, C, oh, ow]``.

    Example:
        >>> RoIPool((2, 3), 0.5)(torch.randn(1, 4, 16, 16), [torch.tensor([[0., 0., 20., 12.]])]).shape
        torch.Size([1, 4, 2, 3])
    """

    def __init__(self, output_size: Union[int, Sequence[int]], spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size = positive_tuple(output_size, 2, "output_size", "RoIPool")
        self.spatial_scale = check_spatial_scale("RoIPool", spatial_scale)

    def forward(self, input: Tensor, boxes: Union[Tensor, List[Tensor]]) -> Tensor:
        if torch.jit.is_scripting():
            return torch.ops.convolab.roi_pool(input, _scripted_rois(input, boxes), [s for s in self.output_size],
                                               self.spatial_scale)[0]
        return roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class RoISpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling of regions (SPP-net's detector) as a module: ``forward(input, boxes)``.

    Every box of the last feature map becomes one vector of ``output_features(C)`` numbers,
    whatever its size; see :func:`convolab.functional.roi_spatial_pyramid_pool`.

    Shape:
        input ``[N, C, H, W]``, boxes ``Tensor[K, 5]`` or a list of ``Tensor[L, 4]`` ->
        output ``[K, C * sum(n_h * n_w)]``.

    Example:
        >>> spp = RoISpatialPyramidPool((1, 2, 4), spatial_scale=1 / 16)
        >>> spp(torch.randn(2, 256, 13, 13), [torch.tensor([[0., 0., 200., 120.]]), torch.tensor([[8., 8., 90., 180.]])]).shape
        torch.Size([2, 5376])
        >>> spp.output_features(256)
        5376
    """

    def __init__(self, levels: Sequence[Union[int, Sequence[int]]] = (1, 2, 4), spatial_scale: float = 1.0,
                 mode: str = "max") -> None:
        super().__init__()
        op = "RoISpatialPyramidPool"
        self._sizes: List[List[int]] = check_levels(op, levels)
        self.levels = tuple(levels)
        self.spatial_scale = check_spatial_scale(op, spatial_scale)
        self.mode = check_mode(op, mode)

    def output_features(self, channels: int) -> int:
        """Length of each box's vector for ``channels`` feature maps (:func:`convolab.arithmetic.spp_features`)."""
        return arithmetic.spp_features(channels, [tuple(s) for s in self._sizes], 2)

    def forward(self, input: Tensor, boxes: Union[Tensor, List[Tensor]]) -> Tensor:
        if torch.jit.is_scripting():  # the pyramid itself (checked boxes are the caller's job here)
            return _roi_spp(input, _scripted_rois(input, boxes), self._sizes, self.spatial_scale, self.mode)
        return roi_spatial_pyramid_pool(input, boxes, self.levels, self.spatial_scale, self.mode)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, spatial_scale={self.spatial_scale}, mode={self.mode!r}"
