"""torch's ``__torch_function__`` protocol for convolab's ops, as torch.nn.functional has it.

An op decorated with :func:`overridable` hands itself to an argument's ``__torch_function__``
when one has it: ``torch.fx`` proxies record the op as one node of the graph (feature
extractors and graph rewriters see ``conv2d``, not the Python inside it), and tensor
subclasses or ``TorchFunctionMode``s can intercept it, exactly as they do torch's own ops.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

from torch.overrides import handle_torch_function, has_torch_function

from ._common import public_signature

__all__ = ["overridable"]

Op = TypeVar("Op", bound=Callable)


def overridable(fn: Op) -> Op:
    """Make ``fn`` dispatch through ``__torch_function__`` (positional and keyword arguments).

    The op shows ``fn``'s signature without its private keywords (``_op``: the name a
    rank-pinned wrapper such as ``conv2d`` gives errors; ``_nd``: its number of spatial dims).
    """

    @functools.wraps(fn)
    def op(*args, **kwargs):  # type: ignore[no-untyped-def]
        relevant = (*args, *kwargs.values())
        # tensors may come in lists (the weights of a separable conv's passes)
        relevant = (*relevant, *(t for a in relevant if isinstance(a, (list, tuple)) for t in a))
        if has_torch_function(relevant):
            return handle_torch_function(op, relevant, *args, **kwargs)
        return fn(*args, **kwargs)

    op.__signature__ = public_signature(fn)  # type: ignore[attr-defined]
    return op  # type: ignore[return-value]
