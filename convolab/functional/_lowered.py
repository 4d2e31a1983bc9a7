"""convolab's convolutions lowered to torch's own operators, in code TorchScript can compile.

This is what runs when torch's kernels compute an op (the ``"native"`` algorithm, and every
op under a tracer, compiler or exporter), and what a ``torch.jit.script``-ed convolab module
runs: one implementation for all of them. Everything is typed with TorchScript's types
(``List[int]``, ``List[Tuple[int, int]]``); Python callers may pass tuples.

Padding is per side, ``pairs[j] = (before, after)`` for spatial dim ``j`` in natural order;
negative entries crop.
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..arithmetic import same_padding_unchecked

__all__ = [
    "conv_nd",
    "conv_transpose_nd",
    "flat_padding",
    "native_conv",
    "native_conv_transpose",
    "pad_pairs",
    "same_pairs",
]


def flat_padding(pairs: List[Tuple[int, int]]) -> List[int]:
    """``F.pad``'s order: the last dim first, ``[before_last, after_last, ...]``."""
    flat: List[int] = []
    for j in range(len(pairs) - 1, -1, -1):
        flat.append(pairs[j][0])
        flat.append(pairs[j][1])
    return flat


def pad_pairs(x: Tensor, pairs: List[Tuple[int, int]], value: float = 0.0) -> Tensor:
    """Constant-pad (or crop, for negative entries) the trailing ``len(pairs)`` dims."""
    for b, a in pairs:
        if b != 0 or a != 0:
            return F.pad(x, flat_padding(pairs), value=value)
    return x


def same_pairs(
    sizes: List[int], kernel: List[int], stride: List[int], dilation: List[int]
) -> List[Tuple[int, int]]:
    """'same' padding (``out = ceil(in / stride)``, TensorFlow's rule) for these input sizes."""
    pairs: List[Tuple[int, int]] = []
    for j in range(len(sizes)):
        pairs.append(same_padding_unchecked(sizes[j], kernel[j], stride[j], dilation[j]))
    return pairs


def _symmetric(pairs: List[Tuple[int, int]]) -> Optional[List[int]]:
    out: List[int] = []
    for b, a in pairs:
        if b != a or b < 0:
            return None
        out.append(b)
    return out


def conv_nd(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    padding: List[int],
    dilation: List[int],
    groups: int,
) -> Tensor:
    """``F.conv1d/2d/3d``, picked by the weight's rank."""
    nd = weight.dim() - 2
    if nd == 1:
        return F.conv1d(x, weight, bias, stride, padding, dilation, groups)
    if nd == 2:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return F.conv3d(x, weight, bias, stride, padding, dilation, groups)


def conv_transpose_nd(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    padding: List[int],
    output_padding: List[int],
    groups: int,
    dilation: List[int],
) -> Tensor:
    """``F.conv_transpose1d/2d/3d``, picked by the weight's rank."""
    nd = weight.dim() - 2
    if nd == 1:
        return F.conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    if nd == 2:
        return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return F.conv_transpose3d(x, weight, bias, stride, padding, output_padding, groups, dilation)


def native_conv(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    pairs: List[Tuple[int, int]],
    dilation: List[int],
    groups: int,
) -> Tensor:
    """torch's convolution with per-side zero padding: symmetric padding goes to the kernel,
    anything else is one explicit pad (or crop) first."""
    sym = _symmetric(pairs)
    if sym is None:
        x = pad_pairs(x, pairs)
        sym = [0] * len(pairs)
    return conv_nd(x, weight, bias, stride, sym, dilation, groups)


def native_conv_transpose(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    stride: List[int],
    pairs: List[Tuple[int, int]],
    dilation: List[int],
    groups: int,
) -> Tensor:
    """torch's transposed convolution for the general problem of a transposed conv.

    ``weight`` is in torch's transposed layout ``[C_in, C_out/groups, *k]``; ``stride`` is the
    input dilation (zero insertion) and ``pairs`` the per-side padding of the zero-inserted
    input (:func:`convolab.arithmetic.conv_transpose_equivalent_padding`).
    """
    nd = weight.dim() - 2
    full: List[int] = []
    for j in range(nd):
        full.append(dilation[j] * (weight.shape[2 + j] - 1))
    # conv_transpose(padding=q, output_padding=o) equals zero insertion, then padding
    # (full - q, full - q + o), then a conv with the flipped weight
    q: List[int] = []
    o: List[int] = []
    direct = True
    for j in range(nd):
        b, a = pairs[j]
        q.append(full[j] - b)
        o.append(a - b)
        if full[j] - b < 0 or a - b < 0 or a - b >= max(stride[j], dilation[j]):
            direct = False
    if direct:
        return conv_transpose_nd(x, weight, bias, stride, q, o, groups, dilation)
    # otherwise the largest symmetric crop torch accepts, and the rest by hand
    qs: List[int] = []
    rest: List[Tuple[int, int]] = []
    for j in range(nd):
        b, a = pairs[j]
        crop = max(min(full[j] - b, full[j] - a), 0)
        qs.append(crop)
        rest.append((b - (full[j] - crop), a - (full[j] - crop)))
    y = conv_transpose_nd(x, weight, None, stride, qs, [0] * nd, groups, dilation)
    y = pad_pairs(y, rest)
    if bias is not None:
        y = y + bias.reshape([-1] + [1] * nd)
    return y


def flip_kernel(weight: Tensor) -> Tensor:
    """The kernel flipped in every spatial dim (true convolution instead of cross-correlation)."""
    dims: List[int] = []
    for d in range(2, weight.dim()):
        dims.append(d)
    return torch.flip(weight, dims)


# ----------------------------------------------------------------------------- pooling


def pool_padding(pairs: List[Tuple[int, int]], kernel: List[int]) -> Optional[List[int]]:
    """The padding torch's pooling kernels take for these pairs (symmetric, at most half the
    kernel), or None when it must be applied explicitly."""
    out: List[int] = []
    for j in range(len(pairs)):
        b, a = pairs[j]
        if b != a or 2 * b > kernel[j]:
            return None
        out.append(b)
    return out


def max_pool_nd(
    x: Tensor, kernel: List[int], stride: List[int], padding: List[int], dilation: List[int], ceil_mode: bool
) -> Tensor:
    """``F.max_pool1d/2d/3d``, picked by the number of window dims."""
    nd = len(kernel)
    if nd == 1:
        return F.max_pool1d(x, kernel, stride, padding, dilation, ceil_mode)
    if nd == 2:
        return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    return F.max_pool3d(x, kernel, stride, padding, dilation, ceil_mode)


def avg_pool_nd(
    x: Tensor,
    kernel: List[int],
    stride: List[int],
    padding: List[int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
) -> Tensor:
    """``F.avg_pool1d/2d/3d``, picked by the number of window dims (1-D runs as 2-D: torch's
    ``avg_pool1d`` has no ``divisor_override``)."""
    nd = len(kernel)
    if nd == 1:
        y = F.avg_pool2d(x.unsqueeze(-2), [1, kernel[0]], [1, stride[0]], [0, padding[0]], ceil_mode,
                         count_include_pad, divisor_override)
        return y.squeeze(-2)
    if nd == 2:
        return F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return F.avg_pool3d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)


def padded_avg_pool(
    x: Tensor,
    kernel: List[int],
    stride: List[int],
    pairs: List[Tuple[int, int]],
    count_include_pad: bool,
    divisor_override: Optional[int],
) -> Tensor:
    """Average pooling (floor rounding) with per-side zero padding applied explicitly.

    Every window lies in the padded input, so counting the padding divides by the window size;
    not counting it divides by how many input elements each window holds: the same pooling of
    a padded mask of ones.
    """
    nd = len(kernel)
    zeros = [0] * nd
    padded = pad_pairs(x, pairs)
    if count_include_pad or divisor_override is not None:
        return avg_pool_nd(padded, kernel, stride, zeros, False, True, divisor_override)
    sums = avg_pool_nd(padded, kernel, stride, zeros, False, True, 1)
    ones = torch.ones(x.shape[x.dim() - nd:], dtype=x.dtype, device=x.device)
    counts = avg_pool_nd(pad_pairs(ones.reshape([1, 1] + list(ones.shape)), pairs), kernel, stride, zeros, False, True, 1)
    return sums / counts.reshape(counts.shape[2:])
