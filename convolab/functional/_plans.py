"""An eager-mode memo of what an op works out from its arguments before it computes.

A small conv spends most of a call checking its arguments against the shapes, resolving
padding and picking an algorithm: all functions of the shapes, strides, dtypes and
arguments, not of the values. :class:`Plans` keeps that work per key, for plain eager calls
only (:func:`convolab.functional._tracing.free_choice`): under a tracer the sizes are
symbolic and the ops run the full checks, so nothing traced is ever hashed or stored. A
call that fails a check stores nothing, so bad input always gets its error.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Optional

__all__ = ["Plans"]


class Plans:
    """A bounded dict of plans; the oldest entry goes when it is full.

    Example:
        >>> plans = Plans(size=2)
        >>> key = plans.key("conv2d", (1, 3, 8, 8), [1, 1])
        >>> plans.get(key) is None
        True
        >>> plans.put(key, "plan"); plans.get(key)
        'plan'
        >>> plans.key("conv2d", {"unhashable": 1}) is None  # such calls are not memoised
        True
    """

    def __init__(self, size: int = 1024) -> None:
        self._plans: dict[Hashable, Any] = {}
        self._size = size

    @staticmethod
    def key(*parts: Any) -> Optional[tuple]:
        """The parts as a key (lists become tuples), or None when one cannot be hashed."""
        try:
            hash(parts)
            return parts
        except TypeError:
            pass
        parts = tuple(tuple(p) if type(p) is list else p for p in parts)
        try:
            hash(parts)
        except TypeError:
            return None
        return parts

    def get(self, key: Optional[tuple]) -> Any:
        return None if key is None else self._plans.get(key)

    def put(self, key: Optional[tuple], plan: Any) -> None:
        if key is None:
            return
        if len(self._plans) >= self._size:
            self._plans.pop(next(iter(self._plans)), None)
        self._plans[key] = plan

    def clear(self) -> None:
        self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)
