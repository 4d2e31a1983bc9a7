"""Locally connected layers: convolution's locality without its weight sharing.

A convolution applies one filter bank at every output position; a locally connected layer
(Taigman et al.'s DeepFace, Keras's former ``LocallyConnected2D``) gives every output position
its own. Each output unit still reads only its window (the same windows, so the same output
size and receptive field as the conv), but nothing is shared: ``(K*C_in + 1)*C_out`` parameters
per output position instead of per layer.

The computation is one batched matrix product over the unfolded windows: with ``L`` output
positions, the windows form ``[L, N, C_in*K]`` and the weight ``[L, C_out, C_in*K]``, and
``bmm`` multiplies them position by position. In eager mode the windows are unfolded a block
of output rows at a time, so the unfolded copy never exceeds :data:`CHUNK_BYTES`; under a
tracer or compiler the op is one block of plain torch operators that every tool understands.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import arithmetic
from .._args import IntOrTuple, PaddingArg, check_choice, positive_tuple
from ._dispatch import overridable
from ._lowered import flat_padding
from ._tracing import as_ints, concrete, free_choice
from ._common import PADDING_MODES, autocast_operands, rank_pinned

__all__ = [
    "CHUNK_BYTES",
    "local_nd",
    "local_products",
    "locally_connected",
    "locally_connected1d",
    "locally_connected2d",
    "locally_connected3d",
]


# Largest unfolded-window block of one eager call, in bytes: the windows are copied (as im2col
# copies them) a block of output rows at a time; 32 MiB stays in the last-level cache's
# neighbourhood and keeps the copy far below the output for any realistic layer.
CHUNK_BYTES = 32 << 20


def _layout(nd: int) -> str:
    out = {1: "L_out", 2: "H_out, W_out", 3: "D_out, H_out, W_out"}[nd]
    k = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}[nd]
    return f"[{out}, C_out, C_in, {k}]"


@overridable
def locally_connected(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    padding_mode: str = "zeros",
    _op: Optional[str] = None,
    _input_size: Optional[tuple[int, ...]] = None,
) -> Tensor:
    """Locally connected layer: a convolution whose filters differ at every output position.

    ``out[n, o, p] = bias[o, p] + sum_{c, t} weight[p, o, c, t] * x_pad[n, c, p*stride + t*dilation]``

    ``weight[p]`` is an ordinary conv weight ``[C_out, C_in, *kernel]`` for output position
    ``p``; when every ``weight[p]`` is the same ``w`` (and every ``bias[:, p]`` the same ``b``)
    the layer is ``conv(x, w, b)``. Windows, output size and receptive field are the conv's.

    Args:
        input (Tensor[N, C_in, *spatial] or Tensor[C_in, *spatial]): 1-3 spatial dims.
        weight (Tensor[*out, C_out, C_in, *kernel]): one filter bank per output position;
            rank 4, 6 or 8 for 1, 2 or 3 spatial dims, e.g. ``[H_out, W_out, C_out, C_in, kH, kW]``.
        bias (Tensor[C_out, *out], optional): one bias per output unit. Default: None.
        stride (int or tuple): step of the window per dim. Default: 1.
        padding (int, tuple, per-side pairs, "valid" or "same"): as in
            :func:`convolab.functional.conv` ("same" for any stride: ``out = ceil(in / stride)``).
        dilation (int or tuple): spacing between kernel taps. Default: 1.
        padding_mode (str): "zeros", "reflect", "replicate" or "circular". Default: "zeros".

    Returns:
        Tensor[N, C_out, *out] (unbatched in, unbatched out).

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim,
        the conv's; ``weight.shape[:nd]`` must equal it.
        Parameters: ``prod(out) * (prod(kernel)*C_in + 1) * C_out``
        (:func:`convolab.arithmetic.locally_connected_params`); MACs: the conv's.

    Raises:
        ValueError: a weight of the wrong rank, channels or number of output positions, a bias
            of the wrong shape, an empty output, bad padding/stride/dilation or padding mode.
        TypeError: non-tensor arguments or mismatched dtypes.

    Example:
        >>> x = torch.randn(2, 3, 8, 8)
        >>> w = torch.randn(6, 6, 4, 3, 3, 3)     # 6x6 positions, 4 filters of 3x3x3 each
        >>> locally_connected(x, w).shape
        torch.Size([2, 4, 6, 6])
        >>> shared = torch.randn(4, 3, 3, 3)      # the same filters everywhere: the conv
        >>> y = locally_connected(x, shared.expand(8, 8, 4, 3, 3, 3), padding=1)
        >>> torch.allclose(y, torch.nn.functional.conv2d(x, shared, padding=1), atol=1e-5)
        True
    """
    nd = _check_tensors(_op or "locally_connected", input, weight, bias, fixed=_op is not None)
    op = _op or f"locally_connected{nd}d"
    input, weight, bias = autocast_operands(input, weight, bias)
    for name, t in (("input", input), ("bias", bias)):
        if t is not None and t.dtype != weight.dtype:
            raise TypeError(f"{op}: {name} dtype ({t.dtype}) must equal weight dtype ({weight.dtype})")
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    out_shape = tuple(weight.shape[:nd])
    c_out, c_in, kernel = weight.shape[nd], weight.shape[nd + 1], tuple(weight.shape[nd + 2:])
    if x.shape[1] != c_in:
        raise ValueError(
            f"{op}: expected input with weight.shape[{nd + 1}] = {c_in} channels (C_in of the layout "
            f"{_layout(nd)}), got {x.shape[1]} channels (input {list(input.shape)}, weight {list(weight.shape)})"
        )
    stride_t = positive_tuple(stride, nd, "stride", op)
    dilation_t = positive_tuple(dilation, nd, "dilation", op)
    check_choice(padding_mode, PADDING_MODES, "padding_mode", op)
    spatial = tuple(x.shape[2:])
    if concrete(spatial):
        if _input_size is not None and spatial != tuple(_input_size):
            raise ValueError(
                f"{op}: built for inputs of spatial size {tuple(_input_size)} (its weights belong to that "
                f"size's {len(out_shape)}-D grid of output positions), got {spatial}"
            )
        pairs = arithmetic.resolve_padding(padding, spatial, kernel, stride_t, dilation_t, op=op)
        size = tuple(
            arithmetic.conv_output_size(i, k, s, p, d, op=op, dim=j + 2)
            for j, (i, k, s, p, d) in enumerate(zip(spatial, kernel, stride_t, pairs, dilation_t))
        )
        if size != out_shape:
            raise ValueError(
                f"{op}: weight holds {'x'.join(map(str, out_shape))} output positions (its first {nd} dims, "
                f"layout {_layout(nd)}) but input {list(input.shape)} gives {'x'.join(map(str, size))} "
                f"(kernel {kernel}, stride {stride_t}, padding {pairs}, dilation {dilation_t}); "
                f"build the weight for this input size"
            )
        rows = _rows_per_chunk(x, weight) if free_choice(x) else 0
    else:  # traced sizes: torch's own ops check them as they run
        static = arithmetic.static_padding(padding, nd, kernel, stride_t, dilation_t, op=op)
        pairs = static if static is not None else tuple(
            arithmetic.same_padding_unchecked(i, k, s, d)
            for i, k, s, d in zip(as_ints(spatial), kernel, stride_t, dilation_t)
        )
        rows = 0
    if bias is not None and tuple(bias.shape) != (c_out, *out_shape):
        raise ValueError(
            f"{op}: expected bias of shape [C_out, *out] = {[c_out, *out_shape]} (one per output unit), "
            f"got {list(bias.shape)}"
        )
    y = local_products(x, weight, list(stride_t), [(int(b), int(a)) for b, a in pairs], list(dilation_t),
                       padding_mode, rows, torch.jit.is_tracing())
    if y.requires_grad and free_choice(x):
        # the gradient arrives through the permute to [N, C_out, *out] as a strided view that no
        # BLAS call takes, and bmm's backward then copies matrix by matrix (measured: 30x the
        # forward's time); the hook hands it a contiguous copy (eager only: tracers keep plain ops)
        y.register_hook(_contiguous)
    y = _finish(y, bias, x.shape[0], weight, nd)
    return y.squeeze(0) if unbatched else y


def _check_tensors(op: str, input: Tensor, weight: Tensor, bias: Optional[Tensor], fixed: bool) -> int:
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if weight.dim() not in (4, 6, 8):
        raise ValueError(
            f"{op}: expected weight of rank 4, 6 or 8 ([*out, C_out, C_in, *kernel] with 1-3 spatial dims, "
            f"e.g. {_layout(2)}), got rank {weight.dim()} with shape {list(weight.shape)}"
        )
    nd = (weight.dim() - 2) // 2
    op = op if fixed else f"{op}{nd}d"
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected input of rank {nd + 2} ([N, C, *spatial]) or {nd + 1} (unbatched) for a weight "
            f"with {nd} spatial dims, got rank {input.dim()} with shape {list(input.shape)}"
        )
    return nd


def _rows_per_chunk(x: Tensor, weight: Tensor) -> int:
    """Output rows (positions along the first spatial dim) per block of unfolded windows."""
    nd = (weight.dim() - 2) // 2
    per_row = x.shape[0] * math.prod(weight.shape[1:nd]) * math.prod(weight.shape[nd + 1:]) * x.element_size()
    rows = max(1, CHUNK_BYTES // max(per_row, 1))
    return 0 if rows >= weight.shape[0] else rows


def local_nd(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    pairs: List[Tuple[int, int]],
    dilation: List[int],
    padding_mode: str,
    rows: int,
    slices: bool = False,
) -> Tensor:
    """The locally connected layer on torch's operators (TorchScript compiles it).

    ``x`` is batched ``[N, C_in, *spatial]``; ``pairs`` the per-side padding; ``rows`` the
    output rows (first spatial dim) unfolded at a time, 0 for all at once. ``slices`` gathers
    the windows with one strided slice per kernel tap instead of ``unfold`` (whose ONNX
    mapping in the TorchScript exporter needs static sizes).

    Shape:
        weight ``[*out, C_out, C_in, *k]``, bias ``[C_out, *out]`` -> ``[N, C_out, *out]``.
    """
    y = local_products(x, weight, stride, pairs, dilation, padding_mode, rows, slices)
    return _finish(y, bias, x.shape[0], weight, (weight.dim() - 2) // 2)


def local_products(
    x: Tensor,
    weight: Tensor,
    stride: List[int],
    pairs: List[Tuple[int, int]],
    dilation: List[int],
    padding_mode: str,
    rows: int,
    slices: bool = False,
) -> Tensor:
    """The per-position products of :func:`local_nd`, ``[L, N, C_out]`` with ``L = prod(out)``."""
    nd = (weight.dim() - 2) // 2
    flat = flat_padding(pairs)
    if any(p != 0 for p in flat):
        x = F.pad(x, flat) if padding_mode == "zeros" else F.pad(x, flat, mode=padding_mode)
    n, c_in = x.shape[0], x.shape[1]
    c_out = weight.shape[nd]
    kernel: List[int] = []
    out: List[int] = []
    for j in range(nd):
        out.append(weight.shape[j])
        kernel.append(weight.shape[nd + 2 + j])
    depth = c_in
    taps = 1
    for k in kernel:
        depth *= k
        taps *= k
    rest = 1
    for o in out[1:]:
        rest *= o
    if slices:
        # the windows as one strided slice per kernel tap, each [*out, N, C_in]; stacked
        # tap-last they are [*out, N, C_in, K] (Slice ops, which every exporter maps)
        order: List[int] = []
        for j in range(nd):
            order.append(2 + j)
        order += [0, 1]
        views: List[Tensor] = []
        for q in range(taps):
            v = x
            r = q
            for j in range(nd - 1, -1, -1):
                t = r % kernel[j]
                r = r // kernel[j]
                first = t * dilation[j]
                v = torch.ops.aten.slice(v, 2 + j, first, first + (out[j] - 1) * stride[j] + 1, stride[j])
            views.append(v.permute(order))
        cols = torch.stack(views, -1).reshape(out[0] * rest, n, depth)
        return torch.bmm(cols, weight.reshape(out[0] * rest, c_out, depth).transpose(1, 2))
    # every window as a strided view [N, C_in, *out, *k] (no copy yet)
    win = x
    for j in range(nd):
        win = win.unfold(2 + j, dilation[j] * (kernel[j] - 1) + 1, stride[j])
        if dilation[j] > 1:
            win = win[..., :: dilation[j]]
    layout: List[int] = []  # [*out, N, C_in, *k]
    for j in range(nd):
        layout.append(2 + j)
    layout += [0, 1]
    for j in range(nd):
        layout.append(2 + nd + j)
    total = out[0] if rows <= 0 else rows
    blocks: List[Tensor] = []
    for start in range(0, out[0], total):
        stop = min(start + total, out[0])
        # [rows*rest, N, C_in*K] @ [rows*rest, C_in*K, C_out]: one product per output position
        positions = (stop - start) * rest
        cols = win.narrow(2, start, stop - start).permute(layout).reshape(positions, n, depth)
        w = weight.narrow(0, start, stop - start).reshape(positions, c_out, depth)
        blocks.append(torch.bmm(cols, w.transpose(1, 2)))
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, 0)


def _contiguous(grad: Tensor) -> Tensor:
    """The products' gradient as a contiguous tensor (see :func:`locally_connected`)."""
    return grad.contiguous() if grad is not None else grad


def _finish(y: Tensor, bias: Optional[Tensor], n: int, weight: Tensor, nd: int) -> Tensor:
    """``[L, N, C_out]`` products -> ``[N, C_out, *out]``, plus the per-unit bias."""
    shape = [n, weight.shape[nd]]
    for j in range(nd):
        shape.append(weight.shape[j])
    y = y.permute(1, 2, 0).reshape(shape)
    if bias is not None:
        y = y + bias.unsqueeze(0)
    return y


locally_connected1d = rank_pinned(1, locally_connected, "locally_connected1d", locally_connected, weight_rank=4,
                                  weight_layout=_layout(1))
locally_connected2d = rank_pinned(2, locally_connected, "locally_connected2d", locally_connected, weight_rank=6,
                                  weight_layout=_layout(2))
locally_connected3d = rank_pinned(3, locally_connected, "locally_connected3d", locally_connected, weight_rank=8,
                                  weight_layout=_layout(3))

