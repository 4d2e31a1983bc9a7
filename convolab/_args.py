"""Argument normalisation shared by every convolab op (pure Python, no torch).

Every public op funnels its user-facing arguments through these helpers, so the
rules, and the wording of the errors, exist exactly once. Messages follow
``"<op>: <parameter> <rule>, got <value>"``.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Iterable, Sequence
from typing import Any, Union

PaddingPairs = tuple[tuple[int, int], ...]
PaddingArg = Union[int, str, Sequence[int], Sequence[Sequence[int]]]

# torch's convolution and pooling kernels hold window arguments (kernel size, stride, padding,
# dilation, output padding) in 32-bit ints: larger values wrap around inside them ("stride
# should be greater than zero, but got stride_width: -727379968") or overflow a cast.
INT32_MAX = 2**31 - 1


def _is_int(value: Any) -> bool:
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


def ntuple(value: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    """Expand an int or a length-``n`` sequence of ints to an ``n``-tuple of ints."""
    if _is_int(value):
        return check_int32((operator.index(value),), name, op, value) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(
                f"{op}: {name} must be an int or a sequence of {n} ints (one per spatial dim), "
                f"got {tuple(value)!r}"
            )
        if not all(_is_int(v) for v in value):
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


def nonnegative_tuple(value: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    out = ntuple(value, n, name, op)
    if any(v < 0 for v in out):
        raise ValueError(f"{op}: {name} must be >= 0 in every dim, got {_show(value)}")
    return out


def _show(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, (list, tuple)) else repr(value)


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
    if _is_int(padding):
        pairs = ((operator.index(padding), operator.index(padding)),) * n
    elif isinstance(padding, Sequence):
        items = list(padding)
        if items and all(isinstance(p, Sequence) and not isinstance(p, str) for p in items):
            if len(items) != n or any(len(p) != 2 for p in items):
                raise ValueError(
                    f"{op}: per-side padding must be {n} (before, after) pairs, one per spatial dim, "
                    f"got {padding!r}"
                )
            if not all(_is_int(v) for p in items for v in p):
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
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    if in_channels % groups:
        raise ValueError(f"{op}: groups ({groups}) must divide in_channels ({in_channels})")
    if out_channels % groups:
        raise ValueError(f"{op}: groups ({groups}) must divide out_channels ({out_channels})")


def check_conv_channels(op: str, input_shape: Sequence[int], weight_shape: Sequence[int], groups: Any, channel_dim: int = 1) -> None:
    """A conv weight ``[C_out, C_in/groups, *k]`` must fit the input's channels and the groups."""
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    c_in, c_out = input_shape[channel_dim], weight_shape[0]
    if weight_shape[1] * groups != c_in:
        raise ValueError(
            f"{op}: expected input with weight.shape[1] * groups = {weight_shape[1]} * {groups} = "
            f"{weight_shape[1] * groups} channels, got {c_in} channels "
            f"(input {list(input_shape)}, weight {list(weight_shape)})"
        )
    check_groups(c_in, c_out, groups, op)
