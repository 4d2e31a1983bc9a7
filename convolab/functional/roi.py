"""Region-of-interest pooling: ``roi_pool`` (Fast R-CNN) and ``roi_align`` (Mask R-CNN).

Both crop every box of a batch of feature maps into a fixed ``output_size``
grid of bins, vectorised over boxes (there is no Python loop per box: boxes
are only grouped by how many pixels or samples a bin needs, and chunked so
memory is bounded). They work on the channels-last rows of the feature map, so
that every gather moves a whole run of C contiguous values:

- ``roi_align`` is a sparse linear map: each output bin is a weighted sum of at
  most ``4 * grid_h * grid_w`` input pixels (the bilinear corners of its
  samples, divided by the sample count). The forward is one
  ``embedding_bag`` (weighted sum of gathered rows); the backward is the same
  kernel on the transposed map (entries sorted by input pixel), so neither pass
  scatters with atomics or Python loops.
- ``roi_pool`` runs a compiled CPU kernel when one can be built
  (:mod:`convolab.functional._native`): each bin's window is scanned row by row, a max
  over C contiguous values at a time, box by box, and the backward adds every gradient
  at its argmax, the channels split between threads. Its pure-PyTorch path (no
  compiler, other devices) answers every bin as a sparse-table query instead: the max
  of four power-of-two windows at its corners, read from torch's channels-last max
  pooling of the whole map (one pooling per window size, not per box). Both give the
  same values and argmaxes; the gradient goes to the first row-major argmax.

The conventions are those of the widely used CPU/GPU kernels (torchvision's
``ops.roi_align`` / ``ops.roi_pool``), so trained detectors port unchanged.

Both kernels are torch custom ops, opaque to ``torch.compile``, ``torch.export`` and
``jit.trace`` (one node each, shapes from their fake kernels), with vmap rules, an
autocast rule (float32: bf16 boxes and sums are far too coarse) and ONNX mappings to
``RoiAlign`` and ``MaxRoiPool`` (:mod:`convolab.onnx`)::

    convolab::roi_align(Tensor input, Tensor rois, int[] output_size, float spatial_scale,
        int sampling_ratio, bool aligned) -> Tensor
    convolab::roi_align_backward(Tensor grad, Tensor rois, SymInt[] input_shape, float spatial_scale,
        int sampling_ratio, bool aligned) -> Tensor
    convolab::roi_pool(Tensor input, Tensor rois, int[] output_size, float spatial_scale)
        -> (Tensor output, Tensor argmax)
    convolab::roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, SymInt[] input_shape) -> Tensor

``rois`` is ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)``; ``argmax`` is int32, the
flat ``h*W + w`` of each bin's maximum in its image, -1 for an empty bin. Both ops are
linear in the input for fixed boxes, so every derivative order is exact: the backward of
``roi_align_backward`` is ``roi_align``, that of ``roi_pool_backward`` a gather at the argmax.
The box checks of the public functions read values, so they run in eager mode only (not
under compile, export, tracing, or on fake/meta tensors): a traced graph does not check boxes.
"""

from __future__ import annotations

import math

from collections.abc import Iterator, Sequence
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._args import check_choice, positive_tuple
from . import _native
from ._custom_ops import (
    compute_dtype,
    needs_plain_autograd,
    refuse_forward_ad,
    register_autocast,
    static_shape,
    values_unavailable,
    vmap_by_loop,
)

__all__ = ["ROI_BUDGET", "ROI_SPP_MODES", "roi_align", "roi_pool", "roi_spatial_pyramid_pool"]

BoxesArg = Union[Tensor, Sequence[Tensor]]

#: Largest gathered buffer (elements) one chunk of roi_pool materialises, and the largest
#: number of (bag, pixel) entries one chunk of roi_align builds: 2**24 (64 MiB in float32).
ROI_BUDGET = 1 << 24


# ----------------------------------------------------------------------------------------------
# argument checks shared by both ops


def _check(op: str, input: Tensor, boxes: BoxesArg, output_size: Any, spatial_scale: float) -> tuple[Tensor, tuple[int, int]]:
    """Validate the arguments; return the boxes as Tensor[K, 5] and (oh, ow).

    The boxes keep float64 for a float64 input and are float32 otherwise (bf16 coordinates
    would move boxes by whole pixels). The checks that read box values run only when values
    are available (:func:`~convolab.functional._custom_ops.values_unavailable`).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() != 4:
        raise ValueError(f"{op}: expected input of rank 4 ([N, C, H, W]), got shape {list(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    size = positive_tuple(output_size, 2, "output_size", op)
    check_spatial_scale(op, spatial_scale)
    rois = _as_rois(op, boxes, input)
    if values_unavailable(input, rois):
        return rois, size
    if rois.shape[0]:
        bad = ~torch.isfinite(rois).all(1)
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(f"{op}: box {k} has non-finite coordinates {rois[k].tolist()}")
        batch = rois[:, 0]
        bad = (batch != batch.long().to(batch.dtype)) | (batch < 0) | (batch >= input.shape[0])
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(
                f"{op}: box {k} has batch index {batch[k].item():g}; it must be an integer in "
                f"[0, {input.shape[0]}) (the input's batch size)"
            )
        for lo, hi, name in ((1, 3, "x"), (2, 4, "y")):
            bad = rois[:, hi] < rois[:, lo]
            if bad.any():
                k = int(bad.nonzero()[0])
                raise ValueError(
                    f"{op}: box {k} has {name}2 ({rois[k, hi].item():g}) < {name}1 ({rois[k, lo].item():g}); "
                    f"boxes are (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2"
                )
    return rois, size


def check_spatial_scale(op: str, spatial_scale: float) -> float:
    """spatial_scale must be a finite number > 0 (shared with the modules): an infinite scale
    maps every box onto the map's far corner, silently."""
    if (isinstance(spatial_scale, bool) or not isinstance(spatial_scale, (int, float)) or not spatial_scale > 0
            or not math.isfinite(spatial_scale)):
        raise ValueError(f"{op}: spatial_scale must be a finite number > 0, got {spatial_scale!r}")
    return float(spatial_scale)


def check_sampling_ratio(op: str, sampling_ratio: int) -> int:
    """sampling_ratio must be an int; <= 0 selects adaptive sampling (shared with the modules)."""
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"{op}: sampling_ratio must be an int (<= 0 for adaptive), got {sampling_ratio!r}")
    return sampling_ratio


def _as_rois(op: str, boxes: BoxesArg, input: Tensor) -> Tensor:
    rule = "boxes must be a Tensor[K, 5] (batch_index, x1, y1, x2, y2) or a list of Tensor[L, 4] (one per image)"
    dtype = compute_dtype(input)
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or static_shape(boxes)[1] != 5:
            raise ValueError(f"{op}: {rule}, got a tensor of shape {list(static_shape(boxes))}")
        return boxes.detach().to(dtype)
    if not isinstance(boxes, (list, tuple)) or not all(isinstance(b, Tensor) for b in boxes):
        raise TypeError(f"{op}: {rule}, got {type(boxes).__name__}")
    batch = static_shape(input)[0]
    if not values_unavailable(input) and len(boxes) > batch:
        raise ValueError(f"{op}: got {len(boxes)} box tensors for a batch of {batch} images")
    parts = []
    for i, b in enumerate(boxes):
        if b.dim() != 2 or static_shape(b)[1] != 4:
            raise ValueError(f"{op}: {rule}, got boxes[{i}] of shape {list(static_shape(b))}")
        b = b.detach().to(dtype)
        parts.append(torch.cat([torch.full_like(b[:, :1], i), b], 1))
    return torch.cat(parts) if parts else input.new_zeros(0, 5, dtype=dtype)


def _native_rows(lib: Any, x: Tensor) -> Tensor:
    """x [N, C, H, W] (float32/64, CPU) as channels-last rows [N, H, W, C]: a view when x is
    channels-last already, else one transposing copy by the compiled kernel (whose workers
    do not wait on each other the way a torch copy's threads do on a loaded machine)."""
    rows = x.permute(0, 2, 3, 1)
    if rows.is_contiguous():
        return rows
    n, c, h, w = x.shape
    rows = torch.empty(n, h, w, c, dtype=x.dtype, device=x.device)
    strides = torch.tensor(x.stride(), dtype=torch.int64)
    fn = lib.to_rows_f64 if x.dtype == torch.float64 else lib.to_rows_f32
    fn(x.data_ptr(), strides.data_ptr(), n, c, h, w, rows.data_ptr(), _native.threads())
    return rows


def _rows(x: Tensor) -> Tensor:
    """[N, C, H, W] -> channels-last rows [N*H*W, C] (one copy unless already channels-last)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows: Tensor, k: int, size: tuple[int, int]) -> Tensor:
    """[K*oh*ow, C] rows -> [K, C, oh, ow] (a channels-last strided view)."""
    return rows.view(k, size[0], size[1], rows.shape[1]).permute(0, 3, 1, 2)


def _groups(keys: Tensor) -> list[Tensor]:
    """Indices of the boxes sharing each distinct key (sorted by key)."""
    order = torch.argsort(keys, stable=True)
    _, counts = torch.unique_consecutive(keys[order], return_counts=True)
    return list(torch.split(order, counts.tolist()))


def _split(sel: Tensor, per_box: int) -> list[Tensor]:
    step = max(ROI_BUDGET // max(per_box, 1), 1)
    return list(torch.split(sel, step))


def _roi_output(input: Tensor, k: int, size: Sequence[int], dtype: Any = None) -> Tensor:
    """Zeros [K, C, oh, ow] strided channels-last, as the kernels make it (the fake kernel's answer too)."""
    rows = input.new_zeros(k, size[0], size[1], input.shape[1], dtype=dtype)
    return rows.permute(0, 3, 1, 2)


def _input_grad(like: Tensor, input_shape: Sequence[int], dtype: Any = None) -> Tensor:
    """Zeros shaped like the input [N, C, H, W], strided channels-last (rows of C)."""
    n, c, h, w = input_shape
    return like.new_zeros(n, h, w, c, dtype=dtype).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------
# roi_align


def roi_align(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Sequence[int]],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoI Align (Mask R-CNN): average of bilinear samples on a regular grid inside each bin.

    A box ``(x1, y1, x2, y2)`` in input-image coordinates is scaled by
    ``spatial_scale`` (and shifted by -0.5 pixel when ``aligned``, so that the
    pixel centres line up), split into ``oh x ow`` bins, and each bin is the mean
    of ``grid_h x grid_w`` bilinear samples at the centres of a regular
    sub-grid: ``grid = sampling_ratio`` if it is > 0, else adaptive
    ``ceil(roi_size / bins)`` per box. A sample more than one pixel outside the
    map reads 0; one within a pixel of the border is clamped to it. Without
    ``aligned`` the box is at least 1x1 pixel (the legacy Detectron rule).

    Memory: the map from input pixels to bins is built in chunks of at most
    ``ROI_BUDGET`` entries, ``4*grid_h*grid_w`` entries (an int32 index and a weight) per
    output bin, independent of C; the backward rebuilds it from the boxes, so the op keeps
    only the boxes. No gradient flows to the boxes (as in the usual kernels). Low-precision
    inputs (bf16, fp16) are sampled and summed in float32; under autocast the op returns
    float32. Derivatives of every order are exact (the op is linear in ``input``); forward-mode
    AD and functorch's ``grad``/``jacrev`` run a plain torch path that holds ``C`` values per
    map entry.

    Args:
        input (Tensor[N, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch_index, x1, y1, x2, y2)``
            rows, or one ``(x1, y1, x2, y2)`` tensor per image of the batch.
        output_size (int or (int, int)): ``(oh, ow)`` bins.
        spatial_scale (float): input-image to feature-map scale, e.g. 1/16. Default: 1.0.
        sampling_ratio (int): samples per bin side; <= 0 means adaptive. Default: -1.
        aligned (bool): half-pixel offset (Detectron2's ROIAlignV2). Default: False.

    Returns:
        Tensor[K, C, oh, ow] (channels-last strided), differentiable w.r.t. ``input``.

    Shape:
        ``bin = roi_size / output_size``; sample ``i`` of bin ``p`` sits at
        ``start + p*bin + (i + 0.5)*bin/grid``.

    Raises:
        ValueError: boxes of the wrong shape, a batch index out of range or not an integer,
            ``x2 < x1`` or ``y2 < y1``, non-finite boxes, bad output_size/spatial_scale.
        TypeError: non-tensor input or boxes.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_align(x, torch.tensor([[0, 0., 0., 4., 4.]]), 2, aligned=True).flatten().tolist()
        [2.5, 4.5, 10.5, 12.5]
        >>> roi_align(torch.randn(2, 8, 32, 32), [torch.tensor([[1., 2., 20., 30.]])] * 2, 7).shape
        torch.Size([2, 8, 7, 7])
    """
    op = "roi_align"
    if isinstance(boxes, (list, tuple)):
        boxes = [b if isinstance(b, Tensor) else torch.as_tensor(b) for b in boxes]
    rois, size = _check(op, input, boxes, output_size, spatial_scale)
    check_sampling_ratio(op, sampling_ratio)
    args = (list(size), float(spatial_scale), sampling_ratio, bool(aligned))
    if needs_plain_autograd(input):
        return _roi_align_plain(input, rois, *args)
    return torch.ops.convolab.roi_align(input, rois, *args)


def _axis(coord: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """ROI align's 1-D bilinear rule: (corner indices [..., 2], corner weights [..., 2])."""
    inside = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(coord), coord - low.to(coord.dtype))
    weight = torch.stack((1 - frac, frac), -1) * inside.unsqueeze(-1)
    return torch.stack((low, high), -1), weight


def _align_chunks(
    rois: Tensor, shape: Sequence[int], size: Sequence[int], scale: float, sampling_ratio: int, aligned: bool
) -> Iterator[tuple[Tensor, Tensor, Tensor, int]]:
    """The sparse map of roi_align, in chunks of boxes that share one sample grid.

    Yields ``(sel, index, weight, per_bag)``: the chunk's boxes ``sel`` [k], and for its
    ``k*oh*ow`` bins in (box, bin row, bin column) order, ``per_bag = 4*grid_h*grid_w``
    consecutive entries each: the input row ``index`` (flat ``(n*H + y)*W + x``) and the
    weight (bilinear corner weight over the sample count). Boxes without samples (an
    adaptive grid of 0, only for degenerate aligned boxes) are in no chunk: their bins are 0.
    """
    n, _, height, width = shape
    oh, ow = size
    shift = 0.5 if aligned else 0.0
    start = rois[:, 1:3] * scale - shift  # (x, y)
    extent = rois[:, 3:5] * scale - shift - start
    if not aligned:
        extent = extent.clamp(min=1.0)
    bins = extent / extent.new_tensor([ow, oh])
    batch = rois[:, 0].long()
    itype = torch.int32 if n * height * width < 2**31 else torch.int64
    if sampling_ratio > 0:
        grids = [(torch.arange(rois.shape[0], device=rois.device), sampling_ratio, sampling_ratio)]
    else:
        grid = torch.ceil(bins).long()
        keys = grid[:, 1] * (grid[:, 0].max() + 1) + grid[:, 0]
        grids = [(sel, *(int(v) for v in grid[sel[0]])) for sel in _groups(keys)]
    for sel_all, gw, gh in grids:
        if gw * gh == 0:
            continue
        for sel in _split(sel_all, oh * ow * gh * gw * 4):
            k = sel.shape[0]
            pos = []
            for dim, (n_bins, n_grid) in enumerate(((ow, gw), (oh, gh))):
                b = bins[sel, dim].view(k, 1, 1)
                p = torch.arange(n_bins, dtype=rois.dtype, device=rois.device).view(1, n_bins, 1)
                i = torch.arange(n_grid, dtype=rois.dtype, device=rois.device).view(1, 1, n_grid) + 0.5
                pos.append(start[sel, dim].view(k, 1, 1) + p * b + i * b / n_grid)  # [k, bins, grid]
            (ix, wx), (iy, wy) = _axis(pos[0], width), _axis(pos[1], height)
            # the small factors first, so that each full-size map is made by one broadcast op
            row = ((batch[sel].view(k, 1, 1, 1) * height + iy) * width).to(itype)  # [k, oh, gh, 2]
            wy = wy / (gh * gw)
            # [k, oh, ow, gh, gw, corner_y, corner_x]
            index = row.view(k, oh, 1, gh, 1, 2, 1) + ix.to(itype).view(k, 1, ow, 1, gw, 1, 2)
            weight = wy.view(k, oh, 1, gh, 1, 2, 1) * wx.view(k, 1, ow, 1, gw, 1, 2)
            yield sel, index.reshape(-1), weight.reshape(-1), gh * gw * 4


def _align_kernel(input: Tensor, rois: Tensor, output_size: Sequence[int], spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
    refuse_forward_ad("convolab::roi_align", "convolab.functional.roi_align", input)
    k, c = rois.shape[0], input.shape[1]
    oh, ow = output_size
    if k == 0 or c == 0 or input.numel() == 0:
        return _roi_output(input, k, output_size)
    dtype = compute_dtype(input)
    lib = _native.usable(input.to(dtype))
    if lib is not None:
        # the compiled kernel: per box, each bin's samples and corners computed in place (the
        # same arithmetic as _align_chunks), their rows summed with the channels vectorised
        rows, boxes = _native_rows(lib, input.to(dtype)), rois.to(dtype).contiguous()
        out = torch.empty(k, oh, ow, c, dtype=dtype, device=input.device)
        fn = lib.roi_align_forward_f64 if dtype == torch.float64 else lib.roi_align_forward_f32
        fn(rows.data_ptr(), input.shape[2], input.shape[3], c, boxes.data_ptr(), spatial_scale, k, oh, ow, sampling_ratio,
           int(aligned), out.data_ptr(), _native.threads())
        return out.permute(0, 3, 1, 2).to(input.dtype)
    rows = _rows(input.to(dtype))
    chunks = list(_align_chunks(rois.to(dtype), input.shape, output_size, spatial_scale, sampling_ratio, aligned))
    if len(chunks) == 1 and chunks[0][0].shape[0] == k:
        out = _bags(rows, *chunks[0][1:])  # one chunk of every box in order: the output itself
    else:
        out = rows.new_zeros(k, oh * ow * c)
        for sel, index, weight, per_bag in chunks:
            out.index_copy_(0, sel, _bags(rows, index, weight, per_bag).view(-1, oh * ow * c))
    return _from_rows(out.view(-1, c), k, output_size).to(input.dtype)


def _bags(rows: Tensor, index: Tensor, weight: Tensor, per_bag: int) -> Tensor:
    """out[b] = sum of weight * rows[index] over the ``per_bag`` consecutive entries of bag b."""
    offsets = torch.arange(0, index.shape[0], per_bag, dtype=index.dtype, device=index.device)
    return F.embedding_bag(index, rows, offsets, mode="sum", per_sample_weights=weight.to(rows.dtype))


def _align_backward_kernel(grad: Tensor, rois: Tensor, input_shape: Sequence[int], spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
    refuse_forward_ad("convolab::roi_align_backward", "convolab.functional.roi_align", grad)
    n, c, h, w = input_shape
    k, _, oh, ow = grad.shape
    if k == 0 or grad.numel() == 0 or n * h * w == 0:
        return _input_grad(grad, input_shape)
    dtype = compute_dtype(grad)
    # no compiled kernel here: measured, the radix-sorted index_add below beats a channel-split
    # accumulation kernel (29 ms against 34 ms forward+backward at 512 boxes on [2, 256, 50, 68])
    grad_rows = grad.to(dtype).permute(0, 2, 3, 1).reshape(-1, c)
    chunks = list(_align_chunks(rois.to(dtype), input_shape, (oh, ow), spatial_scale, sampling_ratio, aligned))
    if not chunks:
        return _input_grad(grad, input_shape)
    # the transposed map: every input row gathers the output bins that read it (entries sorted
    # by input row; the order among equal rows does not matter)
    if len(chunks) == 1 and chunks[0][0].shape[0] == k:
        _, index, weight, per_bag = chunks[0]
        order = _order_by_row(index, n * h * w)
        bag = order // per_bag  # entries are in bag order, per_bag per bag
    else:
        index = torch.cat([ch[1] for ch in chunks])
        weight = torch.cat([ch[2] for ch in chunks])
        bin_ids = torch.arange(oh * ow, device=grad.device)
        bag = torch.cat([(sel.view(-1, 1) * (oh * ow) + bin_ids).view(-1).repeat_interleave(per_bag) for sel, _, _, per_bag in chunks])
        order = _order_by_row(index, n * h * w)
        bag = bag[order]
    counts = torch.bincount(index, minlength=n * h * w)
    offsets = torch.zeros_like(counts)
    torch.cumsum(counts[:-1], 0, out=offsets[1:])
    grad_in = F.embedding_bag(bag, grad_rows, offsets, mode="sum", per_sample_weights=weight[order].to(dtype))
    return grad_in.view(n, h, w, c).permute(0, 3, 1, 2).to(grad.dtype)


def _order_by_row(index: Tensor, rows: int) -> Tensor:
    """A permutation that sorts the map's entries by input row (the order among equal rows is free).

    Feature maps of up to 2**16 rows (N*H*W) sort with NumPy's radix sort of 16-bit keys,
    about twice as fast as torch's sort of int32 keys here.
    """
    if index.device.type == "cpu" and rows <= 1 << 16:
        return torch.from_numpy(np.argsort(index.numpy().astype(np.uint16), kind="stable"))
    return torch.argsort(index)


def _roi_align_plain(input: Tensor, rois: Tensor, output_size: Sequence[int], spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
    """roi_align in plain differentiable torch ops (forward-mode AD, functorch's grad transforms).

    The same map as the kernel, applied as gather-multiply-scatter: it holds ``C`` values
    per map entry, so it is for the transforms that need it, not for speed.
    """
    k, c = rois.shape[0], input.shape[1]
    oh, ow = output_size
    rows = _rows(input)
    out = input.new_zeros(k * oh * ow, c)
    bin_ids = torch.arange(oh * ow, device=input.device)
    for sel, index, weight, per_bag in _align_chunks(rois, input.shape, output_size, spatial_scale, sampling_ratio, aligned):
        bag = (sel.view(-1, 1) * (oh * ow) + bin_ids).view(-1).repeat_interleave(per_bag)
        out = out.index_add(0, bag, rows[index.long()] * weight.to(input.dtype).unsqueeze(1))
    return _from_rows(out, k, output_size)


_roi_align_op = torch.library.custom_op(
    "convolab::roi_align",
    _align_kernel,
    mutates_args=(),
    schema="(Tensor input, Tensor rois, int[] output_size, float spatial_scale, int sampling_ratio, bool aligned) -> Tensor",
)
_roi_align_backward_op = torch.library.custom_op(
    "convolab::roi_align_backward",
    _align_backward_kernel,
    mutates_args=(),
    schema="(Tensor grad, Tensor rois, SymInt[] input_shape, float spatial_scale, int sampling_ratio, bool aligned) -> Tensor",
)


@_roi_align_op.register_fake
def _(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    return _roi_output(input, rois.shape[0], output_size)


@_roi_align_backward_op.register_fake
def _(grad, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    return _input_grad(grad, input_shape)


def _align_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    input, rois, _, *params = inputs
    ctx.save_for_backward(rois)
    ctx.input_shape, ctx.params = list(input.shape), params


def _align_vjp(ctx: Any, grad: Tensor) -> tuple:
    (rois,) = ctx.saved_tensors
    return torch.ops.convolab.roi_align_backward(grad, rois, ctx.input_shape, *ctx.params), None, None, None, None, None


def _align_backward_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    grad, rois, _, *params = inputs
    ctx.save_for_backward(rois)
    ctx.output_size, ctx.params = list(grad.shape[2:]), params


def _align_backward_vjp(ctx: Any, grad_grad_input: Tensor) -> tuple:
    # roi_align is linear in its input: the backward's own backward is roi_align again
    (rois,) = ctx.saved_tensors
    return torch.ops.convolab.roi_align(grad_grad_input, rois, ctx.output_size, *ctx.params), None, None, None, None, None


_roi_align_op.register_autograd(_align_vjp, setup_context=_align_setup)
_roi_align_backward_op.register_autograd(_align_backward_vjp, setup_context=_align_backward_setup)


def _fold_channels(t: Tensor, dim: int) -> Tensor:
    """A vmapped dim joins the channels: [.., B at dim, ..] -> [N, B*C, H, W] (each channel is independent)."""
    t = t.movedim(dim, 1)
    return t.reshape(t.shape[0], -1, *t.shape[3:])


@_roi_align_op.register_vmap
def _(info, in_dims, input, rois, *params):
    if in_dims[1] is not None:
        return vmap_by_loop(torch.ops.convolab.roi_align, info, in_dims, input, rois, *params)
    out = torch.ops.convolab.roi_align(_fold_channels(input, in_dims[0]), rois, *params)
    return out.unflatten(1, (info.batch_size, -1)), 1


@_roi_align_backward_op.register_vmap
def _(info, in_dims, grad, rois, input_shape, *params):
    if in_dims[1] is not None:
        return vmap_by_loop(torch.ops.convolab.roi_align_backward, info, in_dims, grad, rois, input_shape, *params)
    n, c, h, w = input_shape
    out = torch.ops.convolab.roi_align_backward(_fold_channels(grad, in_dims[0]), rois, [n, c * info.batch_size, h, w], *params)
    return out.unflatten(1, (info.batch_size, -1)), 1


register_autocast(_roi_align_op)
register_autocast(_roi_align_backward_op)


# ----------------------------------------------------------------------------------------------
# roi_pool


def roi_pool(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Sequence[int]],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling (Fast R-CNN): the max over each bin of a box quantised to the pixel grid.

    The box corners are scaled by ``spatial_scale`` and rounded (half away from
    zero, like C's ``round``); the box spans ``roi = end - start + 1`` pixels
    (at least 1) and bin ``p`` covers pixels
    ``[start + floor(p*roi/bins), start + ceil((p+1)*roi/bins))`` clipped to the
    map. An empty bin (entirely outside the map) gives 0. The gradient goes to
    the first (row-major) maximum of each bin.

    A NaN in a bin wins the max (the output is NaN, as with ``max_pool2d``) and takes the
    bin's gradient; a bin of ``-inf`` gives ``-inf`` with its gradient at its first pixel.

    Memory: the argmax of every output value (int32, kept for the backward), and a
    channels-last copy of a contiguous input while the kernel runs; without the compiled
    kernel, a few pooled copies of the map (one per power-of-two window size in use,
    built one at a time). The output and the argmax are contiguous ``[K, C, oh, ow]``.
    Low-precision inputs are compared and returned exactly (a max needs no float32
    sums); under autocast the op returns float32. Derivatives of every order are exact:
    the backward scatters to the argmax, its own backward gathers there.

    Args:
        input (Tensor[N, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): as in :func:`roi_align`.
        output_size (int or (int, int)): ``(oh, ow)`` bins.
        spatial_scale (float): input-image to feature-map scale. Default: 1.0.

    Returns:
        Tensor[K, C, oh, ow] (contiguous), differentiable w.r.t. ``input``.

    Shape:
        ``bin = (round(x2*scale) - round(x1*scale) + 1) / output_size`` per dim.

    Raises:
        ValueError, TypeError: as :func:`roi_align`.

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> roi_pool(x, torch.tensor([[0, 0., 0., 3., 3.]]), 2).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    op = "roi_pool"
    if isinstance(boxes, (list, tuple)):
        boxes = [b if isinstance(b, Tensor) else torch.as_tensor(b) for b in boxes]
    rois, size = _check(op, input, boxes, output_size, spatial_scale)
    if needs_plain_autograd(input):
        # the argmax does not depend on the tangent: find it with the kernel, gather there
        _, argmax = torch.ops.convolab.roi_pool(input.detach(), rois, list(size), float(spatial_scale))
        return _gather_at_argmax(input, rois, argmax)
    return torch.ops.convolab.roi_pool(input, rois, list(size), float(spatial_scale))[0]


def _round_half_away(v: Tensor) -> Tensor:
    # sign * floor(|v| + 0.5): C's round(), in ops every exporter knows (ONNX has no copysign)
    return ((v.abs() + 0.5).floor() * v.sign()).long()


def _pool_bins(rois: Tensor, shape: List[int], size: List[int], scale: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Clipped pixel ranges [k, bins] of every bin: (h_start, h_end, w_start, w_end).

    The compiled roi_pool kernel computes the same numbers in the same arithmetic.
    """
    height, width = shape[2], shape[3]
    corners = _round_half_away(rois[:, 1:] * scale)  # x1, y1, x2, y2
    hs, he = _bin_range(corners[:, 1], corners[:, 3], size[0], height, rois.dtype)
    ws, we = _bin_range(corners[:, 0], corners[:, 2], size[1], width, rois.dtype)
    return hs, he, ws, we


def _bin_range(start: Tensor, end: Tensor, n_bins: int, limit: int, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """Bin p of a box spanning pixels [start, end] covers [floor(p*roi/n), ceil((p+1)*roi/n)) + start, clipped."""
    extent = (end - start + 1).clamp(min=1).to(dtype)
    bin_size = (extent / n_bins).unsqueeze(1)
    p = torch.arange(n_bins, dtype=dtype, device=start.device).unsqueeze(0)
    a = ((p * bin_size).floor().long() + start.unsqueeze(1)).clamp(0, limit)
    b = (((p + 1) * bin_size).ceil().long() + start.unsqueeze(1)).clamp(0, limit)
    return a, b


def _floor_log2(v: Tensor) -> Tensor:
    """Exact floor(log2(v)) of positive integers (no float rounding at powers of two)."""
    out = torch.zeros_like(v)
    for s in range(1, int(v.max()).bit_length()):
        out += v >= (1 << s)
    return out


def _window_max(input: Tensor, bins: Tensor, batch: Tensor, top: Tensor, left: Tensor, bin_h: Tensor, bin_w: Tensor):
    """Max and first row-major argmax (flat input pixel) of the a x b windows of the given bins.

    A window is the union of four (possibly overlapping) power-of-two windows at
    its corners (a sparse-table query), and the max of every power-of-two window
    of the map comes from torch's channels-last max pooling (vectorised over C),
    rows first and then columns. Among equal maxima the smallest flat pixel wins,
    which is the first one in row-major order, as in the loop definition.
    Returns (bins in the order processed, values [B, C], pixels [B, C] as ``h*W + w`` in the bin's image).
    """
    n, c, height, width = input.shape
    x_cl = input.contiguous(memory_format=torch.channels_last)
    channel = torch.arange(c)
    log_h, log_w = _floor_log2(bin_h[bins]), _floor_log2(bin_w[bins])
    # bins whose side is a power of two need one window along that side, not two
    exact_h, exact_w = (1 << log_h) == bin_h[bins], (1 << log_w) == bin_w[bins]
    keys = ((log_w * 64 + log_h) * 2 + exact_h) * 2 + exact_w  # sorted by width level: reuse row pools
    picked, values_all, pixels_all = [], [], []
    row_pool = col_pool = None
    for sel in _groups(keys):
        j, i = int(log_h[sel[0]]), int(log_w[sel[0]])
        shifts_y = (0,) if exact_h[sel[0]] else (0, 1)
        shifts_x = (0,) if exact_w[sel[0]] else (0, 1)
        sel = bins[sel]
        a, b = 1 << j, 1 << i
        if row_pool is None or row_pool[0] != b:
            v_row, i_row = F.max_pool2d(x_cl, (1, b), 1, return_indices=True)
            # int32 pixel indices halve the memory traffic of the candidate comparisons
            row_pool = (b, v_row, i_row.int() if height * width < 2**31 else i_row)
        if col_pool is None or col_pool[0] != (a, b):
            col_pool = ((a, b), *F.max_pool2d(row_pool[1], (a, 1), 1, return_indices=True))
        values, where = col_pool[1:]
        h_out, w_out = values.shape[2:]
        plane = row_pool[2].shape[2] * row_pool[2].shape[3]
        best = first = None
        for dy in shifts_y:
            for dx in shifts_x:
                y = top[sel] + dy * (bin_h[sel] - a)
                x = left[sel] + dx * (bin_w[sel] - b)
                pos = (batch[sel] * h_out + y) * w_out + x
                v = _rows(values).index_select(0, pos)
                # where indexes the row pool's [h, w] plane; the row pool's indices map that to the input
                inner = _rows(where).index_select(0, pos) + (batch[sel] * plane).unsqueeze(1)
                p = _rows(row_pool[2]).reshape(-1).take(inner * c + channel)
                if best is None:
                    best, first = v, p
                else:
                    # a NaN wins (max_pool2d's rule) and keeps winning over later numbers
                    nan_v, nan_best = v.isnan(), best.isnan()
                    take = ((v > best) | (v == best) & (p < first) | nan_v & ~nan_best | nan_v & nan_best & (p < first))
                    first = torch.where(take, p, first)
                    best = torch.maximum(best, v)  # = where(take, v, best): maximum propagates NaN
        values_all.append(best)
        pixels_all.append(first)
        picked.append(sel)
    return torch.cat(picked), torch.cat(values_all), torch.cat(pixels_all)


def _pool_kernel(input: Tensor, rois: Tensor, output_size: Sequence[int], spatial_scale: float) -> tuple[Tensor, Tensor]:
    refuse_forward_ad("convolab::roi_pool", "convolab.functional.roi_pool", input)
    n, c, height, width = input.shape
    k, (oh, ow) = rois.shape[0], output_size
    if k == 0 or input.numel() == 0:
        return _pool_output(input, k, output_size).zero_(), _pool_output(input, k, output_size, torch.int32).fill_(-1)
    if height * width >= 2**31:
        raise ValueError(f"roi_pool: expected feature maps of fewer than 2**31 pixels (int32 argmax), got H*W = {height * width}")
    dtype = compute_dtype(input)
    lib = _native.usable(input.to(dtype))
    if lib is not None:
        return _pool_native(lib, input, rois.to(dtype), output_size, spatial_scale)
    hs, he, ws, we = _pool_bins(rois.to(dtype), input.shape, output_size, spatial_scale)
    out = _roi_output(input, k, output_size)
    argmax = _roi_output(input, k, output_size, dtype=torch.int32).fill_(-1)
    # every bin as (batch, top, left, bin height, bin width), flattened over [K, oh, ow]
    bin_h = (he - hs).view(k, oh, 1).expand(k, oh, ow).reshape(-1)
    bin_w = (we - ws).view(k, 1, ow).expand(k, oh, ow).reshape(-1)
    top = hs.view(k, oh, 1).expand(k, oh, ow).reshape(-1)
    left = ws.view(k, 1, ow).expand(k, oh, ow).reshape(-1)
    batch = rois[:, 0].long().view(k, 1).expand(k, oh * ow).reshape(-1)
    full = ((bin_h > 0) & (bin_w > 0)).nonzero().squeeze(1)  # empty bins (outside the map) give 0
    if full.numel():
        picked, best, pixel = _window_max(input, full, batch, top, left, bin_h, bin_w)
        out.permute(0, 2, 3, 1).view(-1, c).index_copy_(0, picked, best)
        argmax.permute(0, 2, 3, 1).view(-1, c).index_copy_(0, picked, pixel.to(torch.int32))
    return out.contiguous(), argmax.contiguous()


def _pool_native(lib: Any, input: Tensor, rois: Tensor, size: Sequence[int], spatial_scale: float) -> tuple[Tensor, Tensor]:
    """The compiled kernel (:mod:`convolab.functional._native`): each bin's window scanned row
    by row over channels-last rows, the channels vectorised; the bins are computed in the
    kernel by :func:`_pool_bins`' arithmetic. Same results as the torch path."""
    n, c, height, width = input.shape
    k, (oh, ow) = rois.shape[0], size
    dtype = rois.dtype
    rows = _native_rows(lib, input.to(dtype))
    values = _pool_output(input, k, size, dtype)
    argmax = _pool_output(input, k, size, torch.int32)
    rois = rois.contiguous()
    fn = lib.roi_pool_forward_f64 if dtype == torch.float64 else lib.roi_pool_forward_f32
    fn(rows.data_ptr(), height, width, c, rois.data_ptr(), spatial_scale, k, oh, ow, values.data_ptr(), argmax.data_ptr(),
       _native.threads())
    return values.to(input.dtype), argmax


def _pool_output(input: Tensor, k: Any, size: Sequence[int], dtype: Any = None) -> Tensor:
    """roi_pool's uninitialised output [K, C, oh, ow], contiguous (so that ``flatten(1)``, the
    usual next step of a detection head, is a view, and its gradient comes back contiguous)."""
    return input.new_empty(k, input.shape[1], size[0], size[1], dtype=dtype)


def _pool_input_grad(grad: Tensor, input_shape: Sequence[int], dtype: Any = None, zeros: bool = True) -> Tensor:
    """Zeros (or, ``zeros=False``, an uninitialised buffer) for roi_pool's input gradient, laid
    out like ``grad``: channels-last when grad's channels are contiguous, else contiguous
    (each channel's gradient then gathers in one plane, which keeps the scatter in cache).
    The fake kernel's answer too."""
    n, c, h, w = input_shape
    if grad.dim() == 4 and grad.stride(1) != 1:
        return grad.new_empty(n, c, h, w, dtype=dtype) if not zeros else grad.new_zeros(n, c, h, w, dtype=dtype)
    if not zeros:
        return grad.new_empty(n, h, w, c, dtype=dtype).permute(0, 3, 1, 2)
    return _input_grad(grad, input_shape, dtype)


def _pool_backward_kernel(grad: Tensor, rois: Tensor, argmax: Tensor, input_shape: Sequence[int]) -> Tensor:
    refuse_forward_ad("convolab::roi_pool_backward", "convolab.functional.roi_pool", grad)
    n, c, h, w = input_shape
    k = grad.shape[0]
    if k == 0 or grad.numel() == 0:
        return _pool_input_grad(grad, input_shape)
    dtype = compute_dtype(grad)  # sums of bf16 gradients at a shared argmax lose less in float32
    lib = _native.usable(grad.to(dtype))
    if lib is not None:
        g, boxes = grad.to(dtype), rois.to(dtype).contiguous()
        result = _pool_input_grad(grad, input_shape, zeros=False)  # the kernel zeroes it
        target = result if result.dtype == dtype else _pool_input_grad(grad, input_shape, dtype, zeros=False)
        strides = torch.tensor([g.stride(), argmax.stride()], dtype=torch.int64)
        fn = lib.roi_pool_backward_f64 if dtype == torch.float64 else lib.roi_pool_backward_f32
        fn(g.data_ptr(), strides[0].data_ptr(), argmax.data_ptr(), strides[1].data_ptr(), boxes.data_ptr(),
           k, c, grad.shape[2], grad.shape[3], n, h, w, target.data_ptr(), target.stride(1), _native.threads())
        return result if target is result else result.copy_(target)
    result = _pool_input_grad(grad, input_shape)
    # scatter-add every (bin, channel) to its argmax pixel, in grad's own memory order (no
    # copy of grad): rows of C per pixel, and one spare pixel in front of each image where
    # the empty bins (argmax -1) send their gradient, so no bin needs masking
    if grad.is_contiguous():
        g, arg, channel = grad.reshape(-1), argmax, torch.arange(c, device=grad.device).view(1, c, 1, 1)
    else:
        g, arg = grad.permute(0, 2, 3, 1).reshape(-1), argmax.permute(0, 2, 3, 1)
        channel = torch.arange(c, device=grad.device).view(1, 1, 1, c)
    itype = torch.int32 if n * (h * w + 1) * c < 2**31 else torch.int64
    start = ((rois[:, 0].long() * (h * w + 1) + 1) * c).to(itype).view(k, 1, 1, 1) + channel.to(itype)
    target = torch.add(start, arg, alpha=c, out=torch.empty(arg.shape, dtype=itype, device=grad.device))
    rows = torch.zeros(n * (h * w + 1) * c, dtype=dtype, device=grad.device)
    rows.index_add_(0, target.view(-1), g.to(dtype))
    result.permute(0, 2, 3, 1).copy_(rows.view(n, h * w + 1, c)[:, 1:].unflatten(1, (h, w)))
    return result


def _gather_at_argmax(input: Tensor, rois: Tensor, argmax: Tensor) -> Tensor:
    """out[k, c, i, j] = input[batch[k], c, argmax[k, c, i, j]] (0 where argmax is -1), in plain torch ops.

    roi_pool's value for fixed argmaxes, and the backward of roi_pool_backward: both are
    this gather, and as plain ops it is differentiable again in any mode.
    """
    n, c, h, w = input.shape
    flat = input.permute(0, 2, 3, 1).reshape(-1)
    base = (rois[:, 0].long() * (h * w)).view(-1, 1, 1, 1)
    channel = torch.arange(c, device=input.device).view(1, -1, 1, 1)
    index = (base + argmax.long().clamp(min=0)) * c + channel
    return torch.where(argmax >= 0, flat[index], flat.new_zeros(()))


_roi_pool_op = torch.library.custom_op(
    "convolab::roi_pool",
    _pool_kernel,
    mutates_args=(),
    schema="(Tensor input, Tensor rois, int[] output_size, float spatial_scale) -> (Tensor, Tensor)",
)
_roi_pool_backward_op = torch.library.custom_op(
    "convolab::roi_pool_backward",
    _pool_backward_kernel,
    mutates_args=(),
    schema="(Tensor grad, Tensor rois, Tensor argmax, SymInt[] input_shape) -> Tensor",
)


@_roi_pool_op.register_fake
def _(input, rois, output_size, spatial_scale):
    k = rois.shape[0]
    return _pool_output(input, k, output_size), _pool_output(input, k, output_size, torch.int32)


@_roi_pool_backward_op.register_fake
def _(grad, rois, argmax, input_shape):
    return _pool_input_grad(grad, input_shape)


def _pool_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    input, rois, _, _ = inputs
    ctx.save_for_backward(rois, output[1])
    ctx.mark_non_differentiable(output[1])
    # the argmax output has no gradient: without this, autograd fills a zero tensor of its size
    ctx.set_materialize_grads(False)
    ctx.input_shape = list(input.shape)


def _pool_vjp(ctx: Any, grad: Optional[Tensor], _grad_argmax: Any) -> tuple:
    if grad is None:
        return None, None, None, None
    rois, argmax = ctx.saved_tensors
    return torch.ops.convolab.roi_pool_backward(grad, rois, argmax, ctx.input_shape), None, None, None


def _pool_backward_setup(ctx: Any, inputs: tuple, output: Tensor) -> None:
    _, rois, argmax, _ = inputs
    ctx.save_for_backward(rois, argmax)


def _pool_backward_vjp(ctx: Any, grad_grad_input: Tensor) -> tuple:
    rois, argmax = ctx.saved_tensors
    return _gather_at_argmax(grad_grad_input, rois, argmax), None, None, None


_roi_pool_op.register_autograd(_pool_vjp, setup_context=_pool_setup)
_roi_pool_backward_op.register_autograd(_pool_backward_vjp, setup_context=_pool_backward_setup)


@_roi_pool_op.register_vmap
def _(info, in_dims, input, rois, *params):
    if in_dims[1] is not None:
        return vmap_by_loop(torch.ops.convolab.roi_pool, info, in_dims, input, rois, *params)
    out, argmax = torch.ops.convolab.roi_pool(_fold_channels(input, in_dims[0]), rois, *params)
    return (out.unflatten(1, (info.batch_size, -1)), argmax.unflatten(1, (info.batch_size, -1))), (1, 1)


@_roi_pool_backward_op.register_vmap
def _(info, in_dims, grad, rois, argmax, input_shape):
    if in_dims[1] is not None:
        return vmap_by_loop(torch.ops.convolab.roi_pool_backward, info, in_dims, grad, rois, argmax, input_shape)
    b = info.batch_size
    grad, argmax = (t.movedim(d, 0) if d is not None else t.expand(b, *t.shape) for t, d in zip((grad, argmax), in_dims[::2]))
    n, c, h, w = input_shape
    out = torch.ops.convolab.roi_pool_backward(_fold_channels(grad, 0), rois, _fold_channels(argmax, 0), [n, c * b, h, w])
    return out.unflatten(1, (b, -1)), 1


register_autocast(_roi_pool_op)
register_autocast(_roi_pool_backward_op)


# ----------------------------------------------------------------------------------------------
# spatial pyramid pooling on regions (SPP-net's detector)

ROI_SPP_MODES = ("max", "avg")


def roi_spatial_pyramid_pool(
    input: Tensor,
    boxes: BoxesArg,
    levels: Sequence[Union[int, Sequence[int]]] = (1, 2, 4),
    spatial_scale: float = 1.0,
    mode: str = "max",
) -> Tensor:
    """Spatial pyramid pooling of regions (SPP-net's detector): one fixed-length vector per box.

    SPP-net runs the convolutional layers once on the whole image and pools each candidate
    window of the last feature map with a pyramid of ``levels`` (``n x n`` bins each, or
    ``(n_h, n_w)``), so windows of any size and shape give vectors of one length for the
    fully connected layers. Each level is a :func:`roi_pool` of the box (``mode="max"``) or
    the same bins averaged (``mode="avg"``): the box corners are scaled by ``spatial_scale``
    and rounded to pixels (half away from zero), the box spans ``roi = end - start + 1``
    pixels, bin ``p`` of ``n`` covers ``[start + floor(p*roi/n), start + ceil((p+1)*roi/n))``
    clipped to the map (the adaptive rule of :func:`spatial_pyramid_pool`), and a bin wholly
    outside the map gives 0. The flattened levels are concatenated, channel-major within a
    level, as in :func:`spatial_pyramid_pool`: a single level ``(7,)`` is ``roi_pool(...,
    7).flatten(1)``. (SPP-net's own corner rule, ``floor(x/S) + 1`` and ``ceil(x/S) - 1``
    for a network stride ``S``, is a change of the boxes before the call.)

    Vectorised over boxes: one :func:`roi_pool` call per level in max mode (the gradient goes
    to each bin's first maximum); in avg mode four lookups per bin in a float64 integral
    image of the map (plain torch ops, exact gradients by autograd, any bin size at the same
    cost).

    Args:
        input (Tensor[N, C, H, W]): feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): as in :func:`roi_align`.
        levels (sequence of int or (int, int)): bins per side of each level. Default: (1, 2, 4).
        spatial_scale (float): input-image to feature-map scale, e.g. 1/16. Default: 1.0.
        mode (str): "max" or "avg". Default: "max".

    Returns:
        Tensor[K, C * sum(n_h * n_w)], differentiable w.r.t. ``input``.

    Shape:
        ``out[k] = concat over levels of pooled[k, C, n_h, n_w].flatten()``; its length is
        :func:`convolab.arithmetic.spp_features` ``(C, levels)``.

    Raises:
        ValueError: empty or non-positive levels, unknown mode, and everything :func:`roi_pool`
            refuses (bad boxes, spatial_scale, input rank).
        TypeError: non-tensor input or boxes.

    Example:
        >>> x = torch.randn(2, 256, 13, 13)
        >>> boxes = torch.tensor([[0, 0., 0., 200., 200.], [1, 16., 32., 120., 64.]])
        >>> roi_spatial_pyramid_pool(x, boxes, (1, 2, 4), 1 / 16).shape   # 256 * (1 + 4 + 16)
        torch.Size([2, 5376])
        >>> roi_spatial_pyramid_pool(x, boxes, [(1, 3)], 1 / 16, "avg").shape
        torch.Size([2, 768])
    """
    op = "roi_spatial_pyramid_pool"
    if isinstance(boxes, (list, tuple)):
        boxes = [b if isinstance(b, Tensor) else torch.as_tensor(b) for b in boxes]
    sizes = check_levels(op, levels)
    check_mode(op, mode)
    rois, _ = _check(op, input, boxes, 1, spatial_scale)
    if mode == "max" and needs_plain_autograd(input):
        # forward-mode AD and functorch's transforms: roi_pool's plain-ops path, level by level
        return torch.cat([roi_pool(input, rois, size, spatial_scale).flatten(1) for size in sizes], 1)
    return _roi_spp(input, rois, sizes, float(spatial_scale), mode)


def check_levels(op: str, levels: Any) -> List[List[int]]:
    """levels: a non-empty sequence of bin counts (int or (n_h, n_w)); returns [[n_h, n_w], ...]."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise ValueError(f"{op}: levels must be a non-empty sequence of bin counts (int or (n_h, n_w)), got {levels!r}")
    return [list(positive_tuple(level, 2, "levels", op)) for level in levels]


def check_mode(op: str, mode: Any) -> str:
    """mode: "max" or "avg" (the error lists them and the closest match)."""
    if not isinstance(mode, str):
        raise TypeError(f"{op}: mode must be a str, one of {', '.join(map(repr, ROI_SPP_MODES))}, got {mode!r}")
    return check_choice(mode, ROI_SPP_MODES, "mode", op)


def _roi_spp(input: Tensor, rois: Tensor, sizes: List[List[int]], spatial_scale: float, mode: str) -> Tensor:
    """The pyramid of checked boxes [K, 5] (TorchScript compiles this, for the module)."""
    pieces: List[Tensor] = []
    for size in sizes:
        if mode == "max":
            pooled = torch.ops.convolab.roi_pool(input, rois, size, spatial_scale)[0]
        else:
            pooled = _roi_avg_pool(input, rois, size, spatial_scale)
        pieces.append(pooled.flatten(1))
    return torch.cat(pieces, 1)


def _roi_avg_pool(input: Tensor, rois: Tensor, size: List[int], spatial_scale: float) -> Tensor:
    """Mean of each roi_pool bin (0 for an empty one) from an integral image: [K, C, oh, ow].

    The integral image is float64 (the four-corner difference cancels most of the sum) and
    channels-last, so each corner lookup gathers C contiguous values.
    """
    n, c, h, w = input.shape
    k = rois.shape[0]
    oh, ow = size[0], size[1]
    hs, he, ws, we = _pool_bins(rois.to(compute_dtype(input)), [n, c, h, w], size, spatial_scale)
    # s[n, y, x] = sum of input[n, :, :y, :x], a zero row and column in front
    s = F.pad(input.to(torch.float64).permute(0, 2, 3, 1).cumsum(1).cumsum(2), [0, 0, 1, 0, 1, 0])
    s = s.reshape(n * (h + 1) * (w + 1), c)
    row0 = rois[:, 0].long().view(k, 1, 1) * (h + 1)
    total = (_corner(s, row0, he, we, w) - _corner(s, row0, hs, we, w)
             - _corner(s, row0, he, ws, w) + _corner(s, row0, hs, ws, w))
    count = ((he - hs).view(k, oh, 1) * (we - ws).view(k, 1, ow)).clamp(min=1).to(torch.float64)
    mean = total / count.reshape(-1, 1)
    return mean.view(k, oh, ow, c).permute(0, 3, 1, 2).to(input.dtype)


def _corner(s: Tensor, row0: Tensor, y: Tensor, x: Tensor, width: int) -> Tensor:
    """Rows of the integral image ``s`` at (row0 + y[k, i], x[k, j]) for every bin (i, j) of box k."""
    index = (row0 + y.unsqueeze(2)) * (width + 1) + x.unsqueeze(1)
    return s.index_select(0, index.reshape(-1))
