"""Who is running an op: plain eager code, or a tracer, compiler, transform or dispatch mode.

convolab picks among its own algorithms (and runs its own eager-only checks) only in plain
eager mode. Everywhere else an op lowers to torch's own operators, which every tool of the
PyTorch toolchain understands: dynamo (``torch.compile``) and ``torch.export`` see aten
convolutions whose algorithm the backend then picks; ``torch.jit.trace`` and the TorchScript
ONNX exporter record plain ``aten::_convolution``; functorch transforms (``vmap``, ``grad``,
``jvp``) and dispatch modes (FLOP counters, fake tensors) get ops that they have rules for.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["as_ints", "concrete", "exporting", "free_choice", "tracing"]


def tracing() -> bool:
    """True while dynamo, ``torch.export`` or ``torch.jit.trace`` records this code."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def exporting() -> bool:
    """True while the code is recorded into a portable program: ``torch.export`` (and the
    dynamo ONNX exporter built on it) or ``torch.jit.trace`` (and the TorchScript ONNX
    exporter). convolab's own algorithms then give way to the plain op they compute."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def free_choice(x: Tensor) -> bool:
    """Whether convolab may choose its own algorithm (and memory layout) for an op on ``x``.

    Only in plain eager mode on the CPU: not under a tracer or compiler, not inside a
    functorch transform (vmap, grad, jvp, jacrev), not under a torch dispatch mode (a FLOP
    counter or fake tensors must see torch's own ops), not on meta or other devices.
    """
    return (
        x.device.type == "cpu"
        and not tracing()
        and not torch._C._are_functorch_transforms_active()
        and torch._C._len_torch_dispatch_stack() == 0
    )


def concrete(sizes: Sequence) -> bool:
    """Whether every size is a plain int (eager mode) rather than a traced value: a SymInt of
    ``torch.export``/``torch.compile`` or a 0-d tensor of ``torch.jit.trace``."""
    return all(type(v) is int for v in sizes)


def as_ints(sizes: Sequence) -> tuple:
    """Traced sizes as values arithmetic can use: SymInts stay symbolic; ``torch.jit.trace``'s
    0-d tensors become ints, i.e. constants of the trace (as for any Python arithmetic on sizes)."""
    return tuple(v if isinstance(v, (int, torch.SymInt)) else operator.index(v) for v in sizes)
