"""An eager-mode memo of what an op works out from its arguments before it computes.

A small conv spends most of a call checking its arguments against the shapes, resolving
padding and picking an algorithm: all functions of the shapes, strides, dtypes and
arguments, not of the values. :class:`Plans` keeps that work per key, for plain eager calls
only (:func:`convolab.functional._tracing.free_choice`): under a tracer the sizes are
symbolic and the ops run the full checks, so nothing traced is ever hashed or stored. A
call that fails a check stores nothing, so bad input always gets its error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, Optional

import torch

__all__ = ["Plans"]

# argument values a key may hold: 1, 1.0 and True hash alike, and only the int is a valid size
_ATOMS = frozenset((int, str, type(None), torch.dtype, torch.device))
_SEQUENCES = frozenset((tuple, list, torch.Size))


def _plain(value: Any) -> bool:
    """Whether ``value`` is an int, a str, None, a dtype or device, or a tuple/list of those."""
    kind = type(value)
    if kind in _ATOMS:
        return True
    return kind in _SEQUENCES and all(_plain(v) for v in value)


def _frozen(value: Any) -> Any:
    """``value`` with every list, at any depth, as a tuple."""
    return tuple(_frozen(v) for v in value) if type(value) in _SEQUENCES else value


class Plans:
    """A bounded dict of plans; the oldest entry goes when it is full.

    Example:
        >>> plans = Plans(size=2)
        >>> key = plans.key(("conv2d", (1, 3, 8, 8)), [1, 1])
        >>> plans.get(key) is None
        True
        >>> plans.put(key, "plan"); plans.get(key)
        'plan'
        >>> plans.key(("conv2d",), {"unhashable": 1}) is None, plans.key(("conv2d",), 2.0) is None
        (True, True)
        >>> plans.key(("conv2d",), True) == plans.key(("conv2d",), 1)
        False
    """

    def __init__(self, size: int = 1024) -> None:
        self._plans: dict[Hashable, Any] = {}
        self._size = size

    @staticmethod
    def key(known: tuple, *arguments: Any) -> Optional[tuple]:
        """A key of ``known`` (what the op read off its tensors: shapes, strides, dtypes, modes)
        and the caller's ``arguments`` with their types (lists become tuples); None (no memo)
        when an argument is not plain: a float, a bool inside a sequence, any other type.
        1, 1.0 and True hash alike and only the int is a valid size, so a memo of
        ``padding=1`` must not answer for ``padding=True``: the op's own checks see those
        every time. A bool flag (``ceil_mode``) is plain; its type is part of the key."""
        types = tuple(map(type, arguments))
        for kind, argument in zip(types, arguments):
            if kind is not int and kind is not bool and not _plain(argument):
                return None
        key = (known, arguments, types)
        try:
            hash(key)
        except TypeError:  # lists, at any depth
            key = (known, _frozen(arguments), types)
        return key

    def get(self, key: Optional[tuple]) -> Any:
        return None if key is None else self._plans.get(key)

    def put(self, key: Optional[tuple], plan: Any) -> None:
        if key is None:
            return
        if len(self._plans) >= self._size:
            self._plans.pop(next(iter(self._plans)), None)
        self._plans[key] = plan

    def memoised(self, key: Callable[..., Optional[tuple]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate a pure function of its arguments' shapes: its result is kept under
        ``key(*args)`` (None: not kept, e.g. while tracing). An exception stores nothing."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def memo(*args: Any) -> Any:
                k = key(*args)
                plan = self.get(k)
                if plan is None:
                    plan = fn(*args)
                    self.put(k, plan)
                return plan

            return memo

        return decorate

    def clear(self) -> None:
        self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)
