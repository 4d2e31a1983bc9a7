"""Argument normalisation shared by every convolab op, layer, model and command (pure Python, no torch).

Every user-facing argument goes through these helpers, so the rules, and the wording of the
errors, exist exactly once. Messages follow ``"<op>: <parameter> <rule>, got <value>"``.

- the types of the window arguments: :data:`IntOrTuple`, :data:`DimPadding`, :data:`PaddingArg`;
- single ints: :func:`is_int`, :func:`positive_int`, :func:`nonnegative_int`;
- per-dim tuples: :func:`ntuple`, :func:`positive_tuple`, :func:`window_tuples`, :func:`check_int32`;
- padding: :func:`padding_pair` (one dim), :func:`normalize_padding` (every dim);
- names and channels: :func:`check_choice`, :func:`suggest`, :func:`check_groups`,
  :func:`check_conv_channels`.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Iterable, Sequence
from typing import Any, Union

#: kernel size, stride, dilation, output padding: one int for every spatial dim, or one per dim
IntOrTuple = Union[int, Sequence[int]]
#: a (before, after) pair of one dim
Pair = tuple[int, int]
#: the padding of one dim: an int (both sides) or a (before, after) pair
DimPadding = Union[int, Sequence[int]]
#: resolved padding: one (before, after) pair per spatial dim
PaddingPairs = tuple[Pair, ...]
#: any padding spec: int, per-dim ints, per-dim (before, after) pairs, "same" or "valid"
PaddingArg = Union[int, str, Sequence[int], Sequence[Sequence[int]]]

# torch's convolution and pooling kernels hold window arguments (kernel size, stride, padding,
# dilation, output padding) in 32-bit ints: larger values wrap around inside them ("stride
# should be greater than zero, but got stride_width: -727379968") or overflow a cast.
INT32_MAX = 2**31 - 1


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer: int, a NumPy integer, or anything else that
    implements ``__index__`` (a traced size); bool is an int subclass but never a size."""
    if type(value) is int:
        return True
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _int_at_least(value: Any, minimum: int, name: str, op: str) -> int:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return operator.index(value)


def positive_int(value: Any, name: str, op: str) -> int:
    """``value`` must be an int >= 1 (channels, groups, multipliers, counts); returns it as an int."""
    return _int_at_least(value, 1, name, op)


def nonnegative_int(value: Any, name: str, op: str) -> int:
    """``value`` must be an int >= 0 (sizes, padding, batch); returns it as an int."""
    return _int_at_least(value, 0, name, op)


def ntuple(value: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    """Expand an int or a length-``n`` sequence of ints to an ``n``-tuple of ints."""
    if is_int(value):
        return check_int32((operator.index(value),), name, op, value) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(
                f"{op}: {name} must be an int or a sequence of {n} ints (one per spatial dim), "
                f"got {tuple(value)!r}"
            )
        if not all(is_int(v) for v in value):
            raise TypeError(f"{op}: {name} must contain ints, got {tuple(value)!r}")
        return check_int32(tuple(operator.index(v) for v in value), name, op, value)
    raise TypeError(f"{op}: {name} must be an int or a sequence of ints, got {value!r}")


def check_int32(values: Sequence[int], name: str, op: str, shown: Any = None) -> tuple[int, ...]:
    """Every value must fit torch's 32-bit window arguments: ``v <= 2**31 - 1`` (the callers
    refuse negative values with their own rule)."""
    if any(v > INT32_MAX for v in values):
        raise ValueError(
            f"{op}: {name} must be at most 2**31 - 1 = {INT32_MAX} in every dim (torch's kernels hold "
            f"it in a 32-bit int), got {_show(values if shown is None else shown)}"
        )
    return tuple(values)


def positive_tuple(value: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    """Like :func:`ntuple` but every entry must be >= 1 (stride, dilation, kernel size)."""
    out = ntuple(value, n, name, op)
    if any(v < 1 for v in out):
        raise ValueError(f"{op}: {name} must be >= 1 in every dim, got {_show(value)}")
    return out


def window_tuples(
    kernel_size: Any, stride: Any, dilation: Any, n: int, op: str
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(kernel_size, stride, dilation)`` as ``n``-tuples of ints >= 1, checked in that order."""
    return (
        positive_tuple(kernel_size, n, "kernel_size", op),
        positive_tuple(stride, n, "stride", op),
        positive_tuple(dilation, n, "dilation", op),
    )


def _show(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, (list, tuple)) else repr(value)


def padding_pair(padding: DimPadding, op: str) -> Pair:
    """The padding of one dim as ``(before, after)``: an int pads both sides."""
    if is_int(padding):
        p = nonnegative_int(padding, "padding", op)
        return (p, p)
    if isinstance(padding, Sequence) and len(padding) == 2:
        return (nonnegative_int(padding[0], "padding before", op), nonnegative_int(padding[1], "padding after", op))
    raise ValueError(f"{op}: padding must be an int or a (before, after) pair, got {padding!r}")


def normalize_padding(padding: PaddingArg, n: int, op: str) -> str | PaddingPairs:
    """Normalise a padding spec.

    Accepts an int (all sides), a per-dim sequence of ints (symmetric), a per-dim
    sequence of ``(before, after)`` pairs (asymmetric), ``"valid"`` or ``"same"``.
    Returns ``"same"`` (resolved later, it depends on the input size) or a tuple of
    ``n`` ``(before, after)`` pairs.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * n
        if mode == "same":
            return "same"
        raise ValueError(
            f"{op}: padding must be an int, a tuple, per-side pairs, 'same' or 'valid', "
            f"got {padding!r}{suggest(padding, ('same', 'valid'))}"
        )
    if is_int(padding):
        pairs = ((operator.index(padding), operator.index(padding)),) * n
    elif isinstance(padding, Sequence):
        items = list(padding)
        if items and all(isinstance(p, Sequence) and not isinstance(p, str) for p in items):
            if len(items) != n or any(len(p) != 2 for p in items):
                raise ValueError(
                    f"{op}: per-side padding must be {n} (before, after) pairs, one per spatial dim, "
                    f"got {padding!r}"
                )
            if not all(is_int(v) for p in items for v in p):
                raise TypeError(f"{op}: padding must contain ints, got {padding!r}")
            pairs = tuple((operator.index(a), operator.index(b)) for a, b in items)
        else:
            sym = ntuple(padding, n, "padding", op)
            pairs = tuple((p, p) for p in sym)
    else:
        raise TypeError(
            f"{op}: padding must be an int, a tuple, per-side pairs, 'same' or 'valid', got {padding!r}"
        )
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"{op}: padding must be >= 0 on every side, got {padding!r}")
    check_int32([v for pair in pairs for v in pair], "padding", op, padding)
    return pairs


def suggest(name: str, choices: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix with the closest matches (empty when none)."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_choice(value: str, choices: Iterable[str], name: str, op: str) -> str:
    """Validate that ``value`` is one of ``choices``; list them and the closest matches if not."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(
            f"{op}: {name} must be one of {', '.join(repr(c) for c in choices)}, "
            f"got {value!r}{suggest(value, choices)}"
        )
    return value


def check_groups(in_channels: int, out_channels: int, groups: int, op: str) -> None:
    """groups >= 1 must divide both channel counts."""
    groups = positive_int(groups, "groups", op)
    if in_channels % groups:
        raise ValueError(f"{op}: groups ({groups}) must divide in_channels ({in_channels})")
    if out_channels % groups:
        raise ValueError(f"{op}: groups ({groups}) must divide out_channels ({out_channels})")


def check_conv_channels(op: str, input_shape: Sequence[int], weight_shape: Sequence[int], groups: Any, channel_dim: int = 1) -> None:
    """A conv weight ``[C_out, C_in/groups, *k]`` must fit the input's channels and the groups."""
    groups = positive_int(groups, "groups", op)
    c_in, c_out = input_shape[channel_dim], weight_shape[0]
    if weight_shape[1] * groups != c_in:
        raise ValueError(
            f"{op}: expected input with weight.shape[1] * groups = {weight_shape[1]} * {groups} = "
            f"{weight_shape[1] * groups} channels, got {c_in} channels "
            f"(input {list(input_shape)}, weight {list(weight_shape)})"
        )
    check_groups(c_in, c_out, groups, op)
