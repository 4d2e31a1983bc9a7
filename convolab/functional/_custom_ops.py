"""Plumbing shared by convolab's own kernels, which are torch custom ops in the ``convolab::`` namespace.

The deformable convolution and the ROI ops run kernels of their own (embedding_bag maps,
sparse-table max queries, a NumPy radix sort): code a tracer cannot follow and should not
try to. As ``torch.library.custom_op``s they are opaque nodes with fake (meta) kernels that
give the output shapes from the arguments, so ``torch.compile``, ``torch.export``, ONNX
export, ``jit.trace``, ``vmap`` and autocast see one node per call. This module holds what
their public wrappers and registrations share:

- :func:`values_unavailable`: whether data-dependent checks (bad boxes) may read values;
- :func:`static_shape`: sizes as ints, also under ``jit.trace`` (which hands out 0-d tensors);
- :func:`needs_plain_autograd`: custom ops have no forward-mode AD formula (without one torch
  silently returns a zero tangent), and their generated autograd lacks the ``setup_context``
  that functorch's ``grad``/``vjp``/``jacrev`` require; under those transforms the public
  wrappers run plain differentiable torch code instead, and the raw ops refuse forward-mode
  AD (:func:`refuse_forward_ad`);
- :func:`compute_dtype`: low-precision inputs are computed in float32;
- :func:`vmap_by_loop`: the always-correct vmap rule (one call per vmapped slice);
- :func:`register_autocast`: the autocast rule (float32) on every device that has autocast.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake

__all__ = [
    "autocast_enabled",
    "compute_dtype",
    "forward_ad_active",
    "needs_plain_autograd",
    "refuse_forward_ad",
    "register_autocast",
    "static_shape",
    "values_unavailable",
    "vmap_by_loop",
]


def values_unavailable(*tensors: Optional[Tensor]) -> bool:
    """True when tensor values cannot (or must not) be read on the host.

    That is under ``torch.compile`` / ``torch.export`` (dynamo or non-strict), ``jit.trace``,
    for fake or meta tensors, and for tensors batched by ``vmap``. Data-dependent checks
    are skipped then: a traced graph cannot raise a Python error from a value, and
    reading one would break the graph or bake the example's answer into it.
    """
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return True
    for t in tensors:
        if t is None:
            continue
        if t.device.type == "meta" or is_fake(t) or torch._C._functorch.is_batchedtensor(t):
            return True
    return False


def static_shape(t: Tensor) -> tuple[int, ...]:
    """``tuple(t.shape)`` as ints; under ``jit.trace`` sizes come as 0-d tensors.

    The geometry of convolab's ops is static by design (it becomes the op's int
    attributes), so a trace specialises it exactly as the op's schema does: the
    tracer's warning about converting sizes to ints says nothing new here.
    """
    if torch.jit.is_tracing():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return tuple(int(s) for s in t.shape)
    return tuple(t.shape)


def forward_ad_active(*tensors: Optional[Tensor]) -> bool:
    """True if any tensor carries a forward-mode tangent (``torch.func.jvp``/``jacfwd``, ``forward_ad``).

    Both ``torch.func.jvp`` and ``torch.autograd.forward_ad.dual_level`` attach tangents at
    the current dual level, so one check covers them; outside any dual level it costs one
    global read.
    """
    if fwAD._current_level < 0:
        return False
    return any(t is not None and fwAD.unpack_dual(t).tangent is not None for t in tensors)


def needs_plain_autograd(*tensors: Optional[Tensor]) -> bool:
    """True under forward-mode AD or a functorch transform that differentiates (grad, vjp, jacrev, jvp, jacfwd).

    The custom ops serve plain autograd (``backward``, ``autograd.grad``), ``torch.compile``
    and ``vmap``; these transforms need plain differentiable torch ops. Under compilation the
    answer is False without looking further (dynamo folds the check away).
    """
    if torch.compiler.is_compiling():
        return False
    if forward_ad_active(*tensors):
        return True
    stack = torch._C._functorch.get_interpreter_stack()
    differentiating = (torch._C._functorch.TransformType.Grad, torch._C._functorch.TransformType.Jvp)
    return bool(stack) and any(level.key() in differentiating for level in stack)


def refuse_forward_ad(op: str, public: str, *tensors: Optional[Tensor]) -> None:
    """Raise instead of letting torch return a silently zero tangent through a raw custom op.

    Called inside the kernels, where the tangents of ``forward_ad.dual_level`` are visible;
    ``torch.func.jvp`` unwraps them before the kernel, so calling a raw op under it gives
    torch's zero tangent: the public functions are the supported entry points.
    """
    if forward_ad_active(*tensors):
        raise RuntimeError(
            f"{op}: forward-mode AD (torch.func.jvp, jacfwd, forward_ad) has no formula on this custom op "
            f"and torch would return a zero tangent; call {public} instead, which computes forward-mode "
            f"derivatives with plain differentiable torch ops"
        )


def autocast_enabled(t: Tensor) -> bool:
    """Whether autocast is on for ``t``'s device (meta and other devices without autocast: never)."""
    device = t.device.type
    return torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)


def compute_dtype(t: Tensor) -> torch.dtype:
    """float64 stays float64; every other floating dtype (bf16, fp16, float32) computes in float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def vmap_by_loop(op: Callable, info: Any, in_dims: tuple, *args: Any) -> tuple[Any, Any]:
    """A vmap rule that is always right: call ``op`` once per vmapped slice and stack the results."""
    results = []
    for i in range(info.batch_size):
        sliced = [a.select(d, i) if isinstance(a, Tensor) and d is not None else a for a, d in zip(args, in_dims)]
        results.append(op(*sliced))
    if isinstance(results[0], (tuple, list)):
        return tuple(torch.stack(parts) for parts in zip(*results)), (0,) * len(results[0])
    return torch.stack(results), 0


def register_autocast(op: Any) -> None:
    """Under autocast, run ``op`` in float32: its sampling weights and sums lose too much in bf16/fp16.

    The op then returns float32 (autocast's policy for precision-sensitive ops, like
    ``layer_norm``); the next autocast-eligible op casts down again.
    """
    for device in ("cpu", "cuda"):
        if torch.amp.is_autocast_available(device):
            op.register_autocast(device, torch.float32)
