"""Separable convolutions as thin parameterisations of :func:`convolab.functional.conv`.

- depthwise separable: a depthwise conv (groups = C_in, ``depth_multiplier`` filters per
  channel), then a pointwise 1x1 conv (MobileNet, Xception);
- spatially separable: one 1-D conv per spatial dim (k x 1 then 1 x k; three passes in 3-D),
  exactly a dense conv whose kernel is the outer product of the 1-D kernels;
- flattened (Jin et al., 2014): a 1-D filter across channels (1x1 conv), then one depthwise
  1-D filter per spatial dim, so each output channel's filter is a rank-1 tensor.

No new kernels: every pass is the general conv (any algorithm, padding form and mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional

import torch
from torch import Tensor

from .. import arithmetic
from .._args import IntOrTuple, PaddingArg, positive_tuple
from ._dispatch import overridable
from .convolution import conv

__all__ = [
    "depthwise_separable_conv",
    "flattened_conv",
    "spatially_separable_conv",
    "split_separable_kernel",
]



def _tensor(op: str, name: str, t: object) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    return t


def _channels(op: str, input: Tensor, nd: int) -> int:
    _tensor(op, "input", input)
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: expected input of rank {nd + 2} ([N, C, *spatial]) or {nd + 1} (unbatched) for "
            f"weights with {nd} spatial dims, got rank {input.dim()} with shape {list(input.shape)}"
        )
    return input.shape[-nd - 1]


@overridable
def depthwise_separable_conv(
    input: Tensor,
    depthwise_weight: Tensor,
    pointwise_weight: Tensor,
    depthwise_bias: Optional[Tensor] = None,
    pointwise_bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    between: Optional[Callable[[Tensor], Tensor]] = None,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """Depthwise separable convolution: a depthwise conv, then a pointwise (1x1) conv.

    ``mid = conv(x, depthwise_weight, groups=C_in)`` filters every input channel on its own with
    ``depth_multiplier = depthwise_weight.shape[0] / C_in`` kernels; ``between`` (e.g. a norm and
    an activation) is applied to it; then ``out = conv(mid, pointwise_weight)`` mixes channels.
    Versus a dense conv the cost is a factor ``1/C_out + 1/prod(kernel)`` (depth multiplier 1):
    :func:`convolab.arithmetic.depthwise_separable_macs`.

    Args:
        input (Tensor[N, C_in, *spatial] or unbatched): 1-3 spatial dims.
        depthwise_weight (Tensor[C_in*depth_multiplier, 1, *kernel]).
        pointwise_weight (Tensor[C_out, C_in*depth_multiplier, 1, ...]).
        depthwise_bias (Tensor[C_in*depth_multiplier], optional).
        pointwise_bias (Tensor[C_out], optional).
        stride, padding, dilation: of the depthwise conv, every form of :func:`conv`.
        between (callable, optional): applied to the depthwise output. Default: None.
        padding_mode (str): of the depthwise conv. Default: "zeros".
        algorithm (str): for both convs, as in :func:`conv`.

    Returns:
        Tensor[N, C_out, *out].

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim.

    Raises:
        ValueError: weights of the wrong shape (named with the expected shape), a depthwise
            count that is not a multiple of C_in, and everything :func:`conv` rejects.
        TypeError: as :func:`conv`: one floating dtype (float16, bfloat16, float32, float64).

    Example:
        >>> x = torch.randn(1, 3, 7, 7)
        >>> dw, pw = torch.randn(3, 1, 3, 3), torch.randn(128, 3, 1, 1)
        >>> depthwise_separable_conv(x, dw, pw).shape                   # Bai's 7x7x3 -> 5x5x128 example
        torch.Size([1, 128, 5, 5])
    """
    op = _op or "depthwise_separable_conv"
    dw = _tensor(op, "depthwise_weight", depthwise_weight)
    pw = _tensor(op, "pointwise_weight", pointwise_weight)
    if dw.dim() not in (3, 4, 5):
        raise ValueError(
            f"{op}: expected depthwise_weight [C_in*depth_multiplier, 1, *kernel] with 1-3 spatial dims, "
            f"got shape {list(dw.shape)}"
        )
    nd = dw.dim() - 2
    c_in = _channels(op, input, nd)
    if dw.shape[1] != 1 or dw.shape[0] % c_in or dw.shape[0] == 0:
        raise ValueError(
            f"{op}: expected depthwise_weight of shape [C_in*depth_multiplier, 1, *kernel] with "
            f"C_in = {c_in} (the input's channels), got {list(dw.shape)}"
        )
    mid = dw.shape[0]
    if pw.dim() != nd + 2 or pw.shape[1] != mid or any(k != 1 for k in pw.shape[2:]):
        raise ValueError(
            f"{op}: expected pointwise_weight of shape [C_out, {mid}{', 1' * nd}] (1x1 over the "
            f"depthwise output's {mid} channels), got {list(pw.shape)}"
        )
    y = conv(
        input, dw, depthwise_bias, stride, padding, dilation, c_in,
        padding_mode=padding_mode, algorithm=algorithm, _op=op,
    )
    if between is not None:
        y = between(y)
    return conv(y, pw, pointwise_bias, algorithm=algorithm, _op=op)


def _check_passes(op: str, weights: Sequence[Tensor], name: str) -> tuple[int, tuple[int, ...]]:
    """Each weight ``i`` must be a 1-D filter along spatial dim ``i``; returns (ndim, full kernel)."""
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or not weights:
        raise TypeError(f"{op}: {name} must be a non-empty sequence of tensors (one per spatial dim)")
    for i, w in enumerate(weights):
        _tensor(op, f"{name}[{i}]", w)
    nd = weights[0].dim() - 2
    if not 1 <= nd <= 3 or len(weights) != nd:
        raise ValueError(
            f"{op}: {name} must hold one weight per spatial dim ({len(weights)} given, the first of "
            f"rank {weights[0].dim()}, i.e. {nd} spatial dims)"
        )
    kernel = []
    for i, w in enumerate(weights):
        spatial = tuple(w.shape[2:])
        if w.dim() != nd + 2 or any(k != 1 for j, k in enumerate(spatial) if j != i):
            want = ", ".join("k" if j == i else "1" for j in range(nd))
            raise ValueError(
                f"{op}: {name}[{i}] must be a 1-D filter along spatial dim {i + 2}, shape "
                f"[C_out, C_in/groups, {want}], got {list(w.shape)}"
            )
        kernel.append(spatial[i])
    return nd, tuple(kernel)


@overridable
def spatially_separable_conv(
    input: Tensor,
    weights: Sequence[Tensor],
    bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """Spatially separable convolution: one 1-D conv per spatial dim (k x 1, then 1 x k, ...).

    Pass ``i`` convolves, pads and strides only spatial dim ``i``; padding (also "same") is
    resolved for the full kernel ``(k_1, k_2, ...)``, so the output has the dense conv's shape.
    For one channel (or ``groups = C``) the result equals the dense conv with the outer
    product kernel exactly; with channels ``C_in -> mid -> C_out`` it is the factorised
    convolution of Inception v3 (no nonlinearity in between).

    Args:
        input (Tensor[N, C_in, *spatial] or unbatched).
        weights (sequence of Tensor): ``weights[i]`` of shape ``[C_i+1, C_i/groups, 1, .., k_i, .., 1]``
            (the kernel extent only along dim ``i``), chained ``C_in -> ... -> C_out``.
        bias (Tensor[C_out], optional): added after the last pass.
        stride, padding, dilation: of the equivalent dense conv, every form of :func:`conv`.
        groups (int): channel groups of every pass.
        padding_mode (str): "zeros", "reflect", "replicate" or "circular" (exact for each).
        algorithm (str): as in :func:`conv`.

    Returns:
        Tensor[N, C_out, *out].

    Shape:
        as the dense conv: ``out = floor((in + before + after - dilation*(k - 1) - 1) / stride) + 1``.

    Raises:
        ValueError: a weight that is not a 1-D filter along its dim, broken channel chain,
            and everything :func:`conv` rejects.
        TypeError: as :func:`conv`: one floating dtype (float16, bfloat16, float32, float64).

    Example:
        >>> col, row = torch.tensor([1., 2., 1.]), torch.tensor([-1., 0., 1.])   # Sobel
        >>> x = torch.randn(1, 1, 6, 6)
        >>> y = spatially_separable_conv(x, [col.view(1, 1, 3, 1), row.view(1, 1, 1, 3)], padding=1)
        >>> torch.allclose(y, conv(x, torch.outer(col, row).view(1, 1, 3, 3), padding=1), atol=1e-5)
        True
    """
    op = _op or "spatially_separable_conv"
    nd, kernel = _check_passes(op, weights, "weights")
    channels = _channels(op, input, nd)
    for i, w in enumerate(weights):
        if w.shape[1] * groups != channels:
            source = "the input has" if i == 0 else f"weights[{i - 1}] produces"
            raise ValueError(
                f"{op}: weights[{i}] expects {w.shape[1]} * groups ({groups}) = {w.shape[1] * groups} "
                f"input channels, but {source} {channels}"
            )
        channels = w.shape[0]
    s = positive_tuple(stride, nd, "stride", op)
    d = positive_tuple(dilation, nd, "dilation", op)
    spatial = tuple(input.shape[-nd:])
    pads = arithmetic.resolve_padding(padding, spatial, kernel, s, d, op=op)
    arithmetic.separable_pass_sizes(spatial, kernel, s, pads, d, op=op)  # errors name the dense conv
    y = input
    for i, w in enumerate(weights):
        # this pass acts on dim i alone: stride, padding and dilation are neutral elsewhere
        y = conv(
            y, w, bias if i == nd - 1 else None,
            tuple(s[i] if j == i else 1 for j in range(nd)),
            tuple(pads[i] if j == i else (0, 0) for j in range(nd)),
            tuple(d[i] if j == i else 1 for j in range(nd)),
            groups, padding_mode=padding_mode, algorithm=algorithm, _op=op,
        )
    return y


@overridable
def flattened_conv(
    input: Tensor,
    channel_weight: Tensor,
    spatial_weights: Sequence[Tensor],
    bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    *,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """Flattened convolution (Jin et al., 2014): a channel filter, then a depthwise 1-D filter per dim.

    ``out = sep(conv(x, channel_weight))`` where ``sep`` is :func:`spatially_separable_conv` with
    ``groups = C_out``. It equals the dense conv with the rank-1 filters
    ``W[o, c, i, j] = channel_weight[o, c] * spatial_weights[0][o, i] * spatial_weights[1][o, j]``
    exactly, at ``C_out*(C_in + sum(k))`` parameters instead of ``C_out*C_in*prod(k)``.

    Args:
        input (Tensor[N, C_in, *spatial] or unbatched).
        channel_weight (Tensor[C_out, C_in, 1, ...]): the 1-D filter across channels.
        spatial_weights (sequence of Tensor): ``spatial_weights[i]`` of shape
            ``[C_out, 1, 1, .., k_i, .., 1]``: vertical, then horizontal (then depth order in 3-D).
        bias (Tensor[C_out], optional).
        stride, padding, dilation: of the equivalent dense conv.
        padding_mode (str), algorithm (str): as in :func:`conv`.

    Returns:
        Tensor[N, C_out, *out].

    Shape:
        as the dense conv with kernel ``(k_1, k_2, ...)``.

    Example:
        >>> x = torch.randn(2, 3, 8, 8)
        >>> flattened_conv(x, torch.randn(16, 3, 1, 1), [torch.randn(16, 1, 3, 1), torch.randn(16, 1, 1, 3)],
        ...                padding="same").shape
        torch.Size([2, 16, 8, 8])
    """
    op = _op or "flattened_conv"
    cw = _tensor(op, "channel_weight", channel_weight)
    nd, _ = _check_passes(op, spatial_weights, "spatial_weights")
    c_in = _channels(op, input, nd)
    if cw.dim() != nd + 2 or cw.shape[1] != c_in or any(k != 1 for k in cw.shape[2:]):
        raise ValueError(
            f"{op}: expected channel_weight of shape [C_out, {c_in}{', 1' * nd}] (a 1x1 filter over the "
            f"input's {c_in} channels), got {list(cw.shape)}"
        )
    c_out = cw.shape[0]
    for i, w in enumerate(spatial_weights):
        if w.shape[0] != c_out or w.shape[1] != 1:
            raise ValueError(
                f"{op}: spatial_weights[{i}] must be depthwise over the {c_out} output channels, "
                f"shape [{c_out}, 1, ...], got {list(w.shape)}"
            )
    y = conv(input, cw, None, algorithm=algorithm, _op=op)
    return spatially_separable_conv(
        y, spatial_weights, bias, stride, padding, dilation, c_out,
        padding_mode=padding_mode, algorithm=algorithm, _op=op,
    )


def split_separable_kernel(kernel: Tensor, rtol: Optional[float] = None) -> tuple[Tensor, Tensor]:
    """Split a rank-1 2-D kernel exactly into its column and row factors: ``kernel = outer(col, row)``.

    Uses the SVD ``kernel = U S V^T``: a kernel is separable iff only one singular value is
    non-zero, and then ``col = sqrt(s_1) u_1``, ``row = sqrt(s_1) v_1`` (signs chosen so the
    largest entry of ``col`` is positive). Works on a batch ``[..., kH, kW]`` too.

    Args:
        kernel (Tensor[..., kH, kW]): the kernel(s) to split.
        rtol (float, optional): largest ``s_2 / s_1`` still counted as rank 1. Default:
            ``10 * max(kH, kW) * eps`` of the kernel's dtype (rounding noise only).

    Returns:
        ``(col, row)``: Tensor[..., kH] and Tensor[..., kW] in the kernel's dtype, ready for
        :func:`spatially_separable_conv` as ``col.view(C, 1, kH, 1)`` and ``row.view(C, 1, 1, kW)``.

    Raises:
        ValueError: a kernel that is not separable (its numerical rank and singular values are
            named), or a tensor of rank < 2.

    Example:
        >>> sobel = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
        >>> col, row = split_separable_kernel(sobel)
        >>> torch.allclose(torch.outer(col, row), sobel, atol=1e-6), (col / col[0]).tolist()
        (True, [1.0, 2.0, 1.0])
    """
    op = "split_separable_kernel"
    k = _tensor(op, "kernel", kernel)
    if k.dim() < 2:
        raise ValueError(f"{op}: expected a kernel [..., kH, kW] of rank >= 2, got shape {list(k.shape)}")
    if not k.is_floating_point():
        raise TypeError(f"{op}: kernel must be a floating-point tensor, got {k.dtype}")
    kh, kw = k.shape[-2:]
    tol = 10 * max(kh, kw) * torch.finfo(k.dtype).eps if rtol is None else float(rtol)
    u, s, vh = torch.linalg.svd(k.double(), full_matrices=False)
    if s.shape[-1] > 1:
        bad = s[..., 1] > tol * s[..., 0]
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0]) if bad.dim() else ()
            sv = s[where] if where else s
            rank = int((sv > tol * sv[0]).sum())
            at = f" at index {where}" if where else ""
            raise ValueError(
                f"{op}: kernel{at} is not separable: numerical rank {rank}, singular values "
                f"{[round(float(v), 6) for v in sv]} (rank 1 needs s[1] <= {tol:.3g} * s[0])"
            )
    scale = s[..., 0].sqrt()
    col, row = u[..., :, 0] * scale[..., None], vh[..., 0, :] * scale[..., None]
    # SVD's sign is arbitrary: make the largest-magnitude entry of col positive
    pick = col.abs().argmax(dim=-1, keepdim=True)
    sign = torch.where(col.gather(-1, pick) < 0, -1.0, 1.0).to(col.dtype)
    return (col * sign).to(k.dtype), (row * sign).to(k.dtype)
