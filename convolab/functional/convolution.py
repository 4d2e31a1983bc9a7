"""The one general convolution of convolab and its thin parameterisations.

``conv`` is N-d (1-3 spatial dims, taken from ``weight.ndim``) with per-side
padding, padding modes, kernel dilation, groups and an optional kernel flip;
``conv_transpose`` is the same op on a zero-inserted input (input dilation),
as in JAX's ``conv_general_dilated``. ``conv1d`` ... ``conv_transpose3d`` only
fix the number of spatial dims.

Dtypes (convolab's one rule, :mod:`convolab.functional._checks`): input, weight and bias
share one floating dtype (float16, bfloat16, float32 or float64), which the result has,
whatever the algorithm; any other dtype is a ``TypeError`` before any work. Before planning
or allocating, an op refuses an output larger than the memory this process can use (with the
padded, for a transposed conv zero-inserted, input when convolab materialises it: a
``padding_mode`` other than zeros, or an explicitly chosen algorithm other than torch's),
in eager mode on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import arithmetic
from .._args import (
    IntOrTuple,
    PaddingArg,
    check_choice,
    check_conv_channels,
    check_groups,
    is_int,
    normalize_padding,
    ntuple,
    positive_int,
    positive_tuple,
)
from .algorithms import ALGORITHMS, Problem, generation, select
from ._checks import check_memory
from ._common import (
    PADDING_MODES,
    autocast_operands,
    check_bias,
    check_dtypes,
    check_tensors,
    rank_pinned,
    transposed_weight,
)
from ._dispatch import overridable
from ._plans import Plans
from ._tracing import as_ints, concrete, free_choice
from ._lowered import native_conv, native_conv_transpose

__all__ = [
    "PADDING_MODES",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "make_problem",
]

def spatial_sizes(x: Tensor) -> tuple[int, ...]:
    """The spatial sizes of ``x [N, C, *spatial]`` (symbolic under export/compile, 0-d tensors
    under ``torch.jit.trace``)."""
    return tuple(x.shape[2:])


def conv_geometry(
    op: str,
    x: Tensor,
    w_shape: Sequence[int],
    groups: int,
    stride: IntOrTuple,
    padding: PaddingArg,
    dilation: IntOrTuple,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...], Optional[tuple[int, ...]]]:
    """Check the arguments against the shapes; returns stride, dilation, per-side padding and
    the output size (None when the sizes are traced: torch's kernel checks them then)."""
    nd = len(w_shape) - 2
    kernel = tuple(w_shape[2:])
    check_conv_channels(op, tuple(x.shape), tuple(w_shape), groups)
    stride_t = positive_tuple(stride, nd, "stride", op)
    dilation_t = positive_tuple(dilation, nd, "dilation", op)
    spatial = spatial_sizes(x)
    pads = arithmetic.static_padding(padding, nd, kernel, stride_t, dilation_t, op=op)
    if concrete(spatial):
        if pads is None:
            pads = arithmetic.resolve_padding(padding, spatial, kernel, stride_t, dilation_t, op=op)
        out = tuple(
            arithmetic.conv_output_size(i, k, s, p, d, op=op, dim=j + 2)
            for j, (i, k, s, p, d) in enumerate(zip(spatial, kernel, stride_t, pads, dilation_t))
        )
        return stride_t, dilation_t, pads, out
    spatial = as_ints(spatial)
    if pads is None:  # 'same' with a stride: the padding follows the (traced) size
        pads = tuple(
            arithmetic.same_padding_unchecked(i, k, s, d)
            for i, k, s, d in zip(spatial, kernel, stride_t, dilation_t)
        )
    return stride_t, dilation_t, pads, None


def make_problem(
    x: Tensor,
    weight: Union[Tensor, Sequence[int]],
    groups: int,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: tuple[tuple[int, int], ...],
    input_dilation: tuple[int, ...],
    output_size: tuple[int, ...],
) -> Problem:
    """The :class:`Problem` an algorithm sees for this input.

    ``weight`` is the conv-layout weight ``[C_out, C_in/groups, *k]`` or just its shape.
    """
    w_shape = tuple(weight.shape) if isinstance(weight, Tensor) else tuple(weight)
    nd = len(w_shape) - 2
    channels_last = nd >= 2 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last if nd == 2 else torch.channels_last_3d
    )
    return Problem(
        ndim=nd,
        batch=x.shape[0],
        in_channels=x.shape[1],
        out_channels=w_shape[0],
        groups=groups,
        input_size=tuple(x.shape[2:]),
        kernel=w_shape[2:],
        stride=stride,
        dilation=dilation,
        padding=padding,
        input_dilation=input_dilation,
        output_size=output_size,
        dtype=str(x.dtype),
        device=str(x.device),
        channels_last=channels_last,
    )


def _transposed_output_size(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[tuple[int, int]],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """Output size of the general conv of a transposed conv (zero-inserted input, stride 1)."""
    return tuple(
        arithmetic.conv_output_size_unchecked((i - 1) * s + 1, k, 1, p, d)
        for i, k, s, p, d in zip(spatial, kernel, stride, pads, dilation)
    )


@overridable
def conv(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    flip: bool = False,
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """N-d convolution (deep learning's cross-correlation) with every padding form.

    ``out[n, o, p] = bias[o] + sum_{c in group(o), t} weight[o, c, t] * x_pad[n, c, p*stride + t*dilation]``

    With ``flip=True`` the kernel is flipped in every spatial dim first, which
    gives the true convolution of signal processing.

    Args:
        input (Tensor[N, C_in, *spatial] or Tensor[C_in, *spatial]): 1-3 spatial dims.
        weight (Tensor[C_out, C_in/groups, *kernel]): its rank fixes the number of spatial dims.
        bias (Tensor[C_out], optional): added to every output position. Default: None.
        stride (int or tuple): step of the window per dim. Default: 1.
        padding (int, tuple, per-side pairs, "valid" or "same"): ``((before, after), ...)``
            pads asymmetrically; "same" gives ``out = ceil(in / stride)`` for any stride
            and dilation (TensorFlow's rule: the odd pixel goes after). Default: 0.
        dilation (int or tuple): spacing between kernel taps (atrous conv). Default: 1.
        groups (int): split channels into independent groups; ``groups = C_in`` is depthwise.
        padding_mode (str): "zeros", "reflect", "replicate" or "circular". Default: "zeros".
        flip (bool): flip the kernel (true convolution). Default: False.
        algorithm (str): "auto", "native", "direct", "im2col" or any registered algorithm.
            Under a tracer or compiler "auto" is torch's own convolution; while exporting
            (``torch.export``, ``torch.jit.trace``, ONNX) every algorithm is, since they all
            compute the same function.

    Returns:
        Tensor[N, C_out, *out] (unbatched in, unbatched out), in the memory format torch's
        own convolution returns for these operands.

    Shape:
        ``out = floor((in + before + after - dilation*(kernel - 1) - 1) / stride) + 1`` per dim.

    Raises:
        ValueError: empty output, channel/group mismatch, bad padding/stride/dilation (each
            at most ``2**31 - 1``), reflect padding not smaller than the input, an output
            (and padded input) larger than the memory this process can use.
        TypeError: non-tensor arguments, mismatched dtypes, or a dtype other than floating
            (float16, bfloat16, float32, float64).
        NotImplementedError: an explicitly requested algorithm that cannot do this problem.

    Example:
        >>> x = torch.randn(1, 3, 5, 5); w = torch.randn(2, 3, 3, 3)
        >>> conv(x, w, stride=2, padding=1).shape
        torch.Size([1, 2, 3, 3])
        >>> conv(torch.randn(1, 3, 10, 11), w, stride=2, padding="same").shape
        torch.Size([1, 2, 5, 6])
    """
    nd = check_tensors(_op or "conv", input, weight, bias, _op is not None, dtypes=False)
    op = _op or f"conv{nd}d"
    input, weight, bias = autocast_operands(input, weight, bias)
    check_dtypes(op, input, weight, bias)
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    key = _plan_key(x, op, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm)
    plan = _PLANS.get(key)
    if plan is None:
        stride_t, dilation_t, pads, out_size = _conv_checks(op, input, x, weight, bias, stride, padding, dilation,
                                                            groups, padding_mode, algorithm)
    else:
        stride_t, dilation_t, pads, out_size, name, p = plan
    given_pads = pads
    if padding_mode != "zeros" and any(b or a for b, a in pads):
        x = _pad_mode(x, pads, padding_mode, op)
        pads = ((0, 0),) * nd
    if flip:
        weight = weight.flip(list(range(2, weight.dim())))
    if plan is None:

        def problem() -> Problem:
            size = out_size if out_size is not None else tuple(
                arithmetic.conv_output_size_unchecked(i, k, s, p, d)
                for i, k, s, p, d in zip(spatial_sizes(x), weight.shape[2:], stride_t, pads, dilation_t)
            )
            return make_problem(x, weight, groups, stride_t, dilation_t, pads, (1,) * nd, size)

        name, p = select(algorithm, x, problem, op)
        _PLANS.put(key, (stride_t, dilation_t, given_pads, out_size, name, p))
    if name == "native":
        out = native_conv(x, weight, bias, stride_t, pads, dilation_t, groups)
    else:
        out = memory_format_like_torch(ALGORITHMS[name].run(x, weight, bias, p), x, weight)
    return out.squeeze(0) if unbatched else out


# Plain eager calls keep their checks' results and algorithm pick (see _plans): at a small
# conv those cost several times torch's own kernel call.
_PLANS = Plans()


def _plan_key(x: Tensor, op: str, weight: Tensor, bias: Optional[Tensor], *args: Any) -> Optional[tuple]:
    """What a conv's checks and algorithm pick depend on, in plain eager mode; None (no memo)
    under a tracer, a transform, a dispatch mode or off the CPU."""
    if not free_choice(x):
        return None
    return _PLANS.key((op, x.shape, x.stride(), x.dtype, weight.shape, weight.stride(), weight.dtype,
                       None if bias is None else bias.shape, torch.is_grad_enabled(), torch.get_num_threads(),
                       generation()), *args)


def _conv_checks(op: str, input: Tensor, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntOrTuple,
                 padding: PaddingArg, dilation: IntOrTuple, groups: int, padding_mode: str,
                 algorithm: str) -> tuple:
    """A conv's arguments checked against the shapes: stride, dilation, per-side padding and
    the output size (None when the sizes are traced)."""
    stride_t, dilation_t, pads, out_size = conv_geometry(op, x, weight.shape, groups, stride, padding, dilation)
    check_choice(padding_mode, PADDING_MODES, "padding_mode", op)
    check_bias(op, bias, weight.shape[0])
    if out_size is not None:
        _check_conv_memory(op, x, weight.shape[0], out_size, pads, lambda: (
            f"input {list(input.shape)}, kernel {tuple(weight.shape[2:])}, stride={stride_t}, "
            f"padding={pads}, dilation={dilation_t}"
        ), padded=padding_mode != "zeros" or _pads_explicitly(algorithm))
    return stride_t, dilation_t, pads, out_size


def memory_format_like_torch(out: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    """``out`` in the memory format torch's own conv returns for these operands: channels-last
    when the input or the weight is, else contiguous, whichever algorithm computed it (code
    after a conv may ``.view()`` its output)."""
    if out.dim() < 4:
        return out.contiguous()
    fmt = torch.channels_last if out.dim() == 4 else torch.channels_last_3d
    for t in (x, weight):
        if t.dim() == out.dim() and not t.is_contiguous() and t.is_contiguous(memory_format=fmt):
            return out.contiguous(memory_format=fmt)
    return out.contiguous()


def _pads_explicitly(algorithm: str) -> bool:
    # torch's kernels pad (and insert zeros) implicitly; convolab's other algorithms materialise
    # the padded input (what "auto" picks is not known yet: its planning sizes its own buffers)
    return algorithm not in ("auto", "native", "native_cl")


def _check_conv_memory(
    op: str, x: Tensor, out_channels: int, out_size: Sequence[int], pads: Sequence[tuple[int, int]],
    arguments: Callable[[], str], input_dilation: Optional[Sequence[int]] = None, padded: bool = True,
) -> None:
    """The output, and the padded (zero-inserted, for a transposed conv) input when it is
    materialised (``padded``), must fit in memory; refused before planning or allocating."""
    buffers: list[tuple[str, Sequence[int]]] = [("output", [x.shape[0], out_channels, *out_size])]
    dilation = input_dilation or (1,) * len(pads)
    if padded and (any(b or a for b, a in pads) or any(s > 1 for s in dilation)):
        padded = [(i - 1) * s + 1 + b + a for i, s, (b, a) in zip(x.shape[2:], dilation, pads)]
        what = "padded input" if input_dilation is None else "zero-inserted padded input"
        buffers.append((what, [x.shape[0], x.shape[1], *padded]))
    check_memory(op, x, buffers, arguments)


def _pad_mode(x: Tensor, pads: tuple[tuple[int, int], ...], mode: str, op: str) -> Tensor:
    for j, ((b, a), size) in enumerate(zip(pads, x.shape[2:])):
        if mode == "reflect" and max(b, a) >= size:
            raise ValueError(
                f"{op}: padding_mode='reflect' needs padding ({max(b, a)}) < input size ({size}) "
                f"along dim {j + 2}"
            )
        if mode == "circular" and max(b, a) > size:
            raise ValueError(
                f"{op}: padding_mode='circular' needs padding ({max(b, a)}) <= input size ({size}) "
                f"along dim {j + 2}"
            )
    flat: list[int] = []
    for b, a in reversed(pads):
        flat += [b, a]
    return F.pad(x, flat, mode=mode)


@overridable
def conv_transpose(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrTuple = 1,
    padding: Union[IntOrTuple, Sequence[Sequence[int]]] = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
    *,
    output_size: Optional[Sequence[int]] = None,
    algorithm: str = "auto",
    _op: Optional[str] = None,
) -> Tensor:
    """N-d transposed convolution ("deconvolution", fractionally strided convolution).

    Computed as the general conv of a zero-inserted input: insert ``stride - 1``
    zeros between input samples, pad by ``dilation*(kernel-1) - padding`` on each
    side (plus ``output_padding`` after), and convolve with the kernel flipped and
    its channel axes swapped. Its result is the adjoint (transpose) of ``conv``
    with the same arguments; it inverts the *shape* of that conv, not its values.

    Args:
        input (Tensor[N, C_in, *spatial] or unbatched).
        weight (Tensor[C_in, C_out/groups, *kernel]): torch's transposed layout.
        bias (Tensor[C_out], optional).
        stride, dilation (int or tuple): as in ``torch.nn.functional.conv_transpose2d``.
        padding (int, tuple or per-side pairs): cropped from the full output.
        output_padding (int or tuple): extra size after; smaller than stride or dilation.
        groups (int): channel groups.
        output_size (sequence, optional): the wanted spatial size (or [N, C, *spatial]);
            picks ``output_padding`` as PyTorch does.
        algorithm (str): as in :func:`conv`.

    Returns:
        Tensor[N, C_out, *out].

    Shape:
        ``out = (in - 1)*stride - before - after + dilation*(kernel - 1) + output_padding + 1``.

    Raises:
        ValueError: as :func:`conv` (the memory estimate counts the zero-inserted input),
            and ``output_padding`` not smaller than stride or dilation.
        TypeError: as :func:`conv`.

    Example:
        >>> conv_transpose(torch.randn(1, 1, 2, 2), torch.randn(1, 1, 3, 3)).shape   # Dumoulin & Visin's 2x2 -> 4x4
        torch.Size([1, 1, 4, 4])
        >>> conv_transpose(torch.randn(1, 4, 7, 7), torch.randn(4, 2, 4, 4), stride=2, padding=1).shape
        torch.Size([1, 2, 14, 14])
    """
    nd = check_tensors(_op or "conv_transpose", input, weight, bias, _op is not None, dtypes=False)
    op = _op or f"conv_transpose{nd}d"
    input, weight, bias = autocast_operands(input, weight, bias)
    check_dtypes(op, input, weight, bias)
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    c_in, kernel = x.shape[1], tuple(weight.shape[2:])
    key = _plan_key(x, op, weight, bias, stride, padding, output_padding, groups, dilation, output_size, algorithm)
    plan = _PLANS.get(key)
    if plan is None:
        groups, c_out, stride_t, dilation_t, general_pads = _conv_transpose_checks(
            op, input, x, weight, bias, stride, padding, output_padding, groups, dilation, output_size, algorithm)

        def problem() -> Problem:
            size = _transposed_output_size(spatial_sizes(x), kernel, stride_t, general_pads, dilation_t)
            conv_shape = (c_out, c_in // groups, *kernel)  # the weight's shape in the conv layout
            return make_problem(x, conv_shape, groups, (1,) * nd, dilation_t, general_pads, stride_t, size)

        name, p = select(algorithm, x, problem, op)
        plan = groups, stride_t, dilation_t, general_pads, name, p
        _PLANS.put(key, plan)
    groups, stride_t, dilation_t, general_pads, name, p = plan
    if name == "native":
        out = native_conv_transpose(x, weight, bias, stride_t, general_pads, dilation_t, groups)
    else:
        chosen = ALGORITHMS[name]
        # an algorithm that runs transposed convs itself (native_cl: torch's kernel) takes the
        # weight as given and skips the flip-and-swap into the conv layout, and back
        run_transposed = getattr(chosen, "run_transposed", None)
        if run_transposed is not None:
            out = run_transposed(x, weight, bias, p)
        else:
            out = chosen.run(x, transposed_weight(weight, groups), bias, p)
        out = memory_format_like_torch(out, x, weight)
    return out.squeeze(0) if unbatched else out


def _conv_transpose_checks(op: str, input: Tensor, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntOrTuple,
                           padding: Union[IntOrTuple, Sequence[Sequence[int]]], output_padding: IntOrTuple, groups: int,
                           dilation: IntOrTuple, output_size: Optional[Sequence[int]], algorithm: str) -> tuple:
    """A transposed conv's arguments checked against the shapes: groups, output channels,
    stride, dilation and the per-side padding of the equivalent (zero-inserted) conv."""
    nd = x.dim() - 2
    c_in, kernel = x.shape[1], tuple(weight.shape[2:])
    groups = positive_int(groups, "groups", op)
    if weight.shape[0] != c_in:
        raise ValueError(
            f"{op}: expected input with weight.shape[0] = {weight.shape[0]} channels, got {c_in} "
            f"(input {list(input.shape)}, weight {list(weight.shape)}; transposed weights are "
            f"[C_in, C_out/groups, *kernel])"
        )
    c_out = weight.shape[1] * groups
    check_groups(c_in, c_out, groups, op)
    check_bias(op, bias, c_out)
    stride_t = positive_tuple(stride, nd, "stride", op)
    dilation_t = positive_tuple(dilation, nd, "dilation", op)
    pads = normalize_padding(padding, nd, op)
    if pads == "same":
        raise ValueError(f"{op}: padding='same' is not defined for transposed convolution")
    spatial = spatial_sizes(x)
    if output_size is not None:
        if (isinstance(output_size, (str, bytes)) or not isinstance(output_size, Sequence)
                or not all(is_int(v) for v in output_size)):
            raise TypeError(
                f"{op}: output_size must be a sequence of ints (the spatial sizes, or [N, C, *spatial]), "
                f"got {output_size!r}"
            )
        size = list(output_size)
        if len(size) == nd + 2:
            size = size[2:]
        out_pad = arithmetic.transpose_output_padding(
            as_ints(spatial), as_ints(size), kernel, stride_t, pads, dilation_t, op=op
        )
    else:
        out_pad = ntuple(output_padding, nd, "output_padding", op)
    out_size = None
    if concrete(spatial):
        out_size = arithmetic.conv_transpose_output_shape(spatial, kernel, stride_t, pads, out_pad, dilation_t, op=op)
    else:
        for o, s, d in zip(out_pad, stride_t, dilation_t):
            if o < 0 or (o >= s and o >= d):
                raise ValueError(
                    f"{op}: output_padding ({o}) must be smaller than stride ({s}) or dilation ({d})"
                )
    general_pads = tuple(
        arithmetic.conv_transpose_equivalent_padding(k, pp, o, d)
        for k, pp, o, d in zip(kernel, pads, out_pad, dilation_t)
    )
    if out_size is not None:
        _check_conv_memory(op, x, c_out, out_size, general_pads, lambda: (
            f"input {list(input.shape)}, kernel {kernel}, stride={stride_t}, padding={pads}, "
            f"output_padding={out_pad}, dilation={dilation_t}"
        ), input_dilation=stride_t, padded=_pads_explicitly(algorithm))
    return groups, c_out, stride_t, dilation_t, general_pads


conv1d = rank_pinned(1, conv, "conv1d", conv)
conv2d = rank_pinned(2, conv, "conv2d", conv)
conv3d = rank_pinned(3, conv, "conv3d", conv)
conv_transpose1d = rank_pinned(1, conv_transpose, "conv_transpose1d", conv_transpose)
conv_transpose2d = rank_pinned(2, conv_transpose, "conv_transpose2d", conv_transpose)
conv_transpose3d = rank_pinned(3, conv_transpose, "conv_transpose3d", conv_transpose)
