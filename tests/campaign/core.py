"""A campaign case, and how its outcome is classified.

Every case runs convolab and asks the oracle what the contract expects, then lands in one of:

- ``correct``: the result matches the oracle (shape, dtype, values within the dtype's
  tolerance, NaN and infinity pattern), or an invalid input is refused clearly;
- ``clear``: a ``ValueError``/``TypeError``/``NotImplementedError`` whose message starts with
  the op's name (``conv2d: ...``, ``Conv2d: ...``) and names one of its parameters. A clear
  refusal of an input the oracle could compute (the dtype rule, the memory estimate, an
  algorithm that cannot do the problem) is counted here too, and listed as ``refused``;
- ``unclear``: any other exception (torch's message from deep inside, a Python error), or a
  hang;
- ``silent``: a result where the oracle says refuse, or a result that differs from it.
"""

from __future__ import annotations

import math
import re
import signal
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from .oracle import Invalid

OUTCOMES = ("correct", "clear", "unclear", "silent")
TOLERANCE = {torch.float64: 1e-9, torch.float32: 5e-5, torch.float16: 1e-2, torch.bfloat16: 4e-2}


@dataclass
class Case:
    """One configuration.

    Attributes:
        category: "random", "nonfinite", "malformed", "bomb" or "cli".
        name: a short description (reproduces the case in a report).
        ops: op names a clear message may start with.
        params: parameter names a clear message may name.
        run: calls convolab.
        expect: the oracle: returns ``(expected, dtype)`` or raises :class:`Invalid`.
        scale: the magnitude the tolerance is relative to, lazily: a number, or per output (for a
            convolution, the same convolution of ``|x|`` and ``|w|``).
        owner: whose part of issue 16 a failure belongs to ("errors" or "algorithms").
    """

    category: str
    name: str
    ops: tuple[str, ...]
    params: tuple[str, ...]
    run: Callable[[], Any]
    expect: Callable[[], tuple[Any, torch.dtype]]
    scale: Optional[Callable[[], Any]] = None
    owner: str = "errors"


@dataclass
class Outcome:
    case: Case
    kind: str
    detail: str = ""
    refused: bool = False  # a clear error where the oracle computes a result
    extra: dict = field(default_factory=dict)


class Timeout(Exception):
    pass


def _alarm(signum, frame):  # type: ignore[no-untyped-def]
    raise Timeout()


def is_clear(error: BaseException, ops: Sequence[str], params: Sequence[str]) -> bool:
    """convolab's own message: the op's name first, then one of its parameters."""
    if not isinstance(error, (ValueError, TypeError, NotImplementedError)):
        return False
    message = str(error)
    head = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*): ", message)
    if head is None or head.group(1) not in ops:
        return False
    return any(re.search(rf"\b{re.escape(p)}\b", message) for p in params)


def _tensors(y: Any) -> list[Optional[Tensor]]:
    if isinstance(y, Tensor) or y is None:
        return [y]
    return list(y)


def compare(got: Any, expected: Any, dtype: torch.dtype, scale: Any) -> Optional[str]:
    """None when ``got`` matches the oracle's ``expected`` (values in float64, then indices)."""
    if isinstance(expected, torch.Size):  # only the shape is known (a resource bomb's result)
        first = _tensors(got)[0]
        if not isinstance(first, Tensor) or first.shape != expected or first.dtype != dtype:
            return f"returned {getattr(first, 'shape', first)}, expected shape {list(expected)} of {dtype}"
        return None
    got_t, want_t = _tensors(got), _tensors(expected)
    if len(got_t) != len(want_t):
        return f"returned {len(got_t)} tensors, expected {len(want_t)}"
    for i, (g, w) in enumerate(zip(got_t, want_t)):
        if w is None:  # nothing to compare (indices of non-finite input)
            continue
        if not isinstance(g, Tensor):
            return f"output {i} is {type(g).__name__}"
        if tuple(g.shape) != tuple(w.shape):
            return f"shape {list(g.shape)}, expected {list(w.shape)}"
        if i == 0 and g.dtype != dtype:
            return f"dtype {g.dtype}, expected {dtype}"
        if i > 0:  # indices
            if not torch.equal(g.to(torch.int64), w.to(torch.int64)):
                return "indices differ"
            continue
        g = g.detach()
        gg = (g.real if g.is_complex() else g).to(torch.float64)
        w = (w.real if w.is_complex() else w).to(torch.float64)
        for what, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
            a, b = test(gg), test(w)
            if not torch.equal(a, b):
                return f"{what} at {int((a & ~b).sum())} extra and {int((b & ~a).sum())} missing positions"
        finite = torch.isfinite(w)
        if not finite.any():
            continue
        err = (gg[finite] - w[finite]).abs()
        tol = TOLERANCE.get(dtype, 0.0)  # integers are exact
        if isinstance(scale, Tensor) and scale.shape == w.shape:
            # elementwise: the error bound of a sum of products is relative to the sum of their
            # magnitudes at that output (what torch's own kernels meet), not to the largest output
            # (which one huge input value would inflate), plus a few rounding errors of a typical
            # output, for outputs whose exact value is 0
            useful = scale[torch.isfinite(scale) & (scale > 0)]
            typical = float(useful.median()) if useful.numel() else 0.0
            floor = 16 * torch.finfo(dtype).eps * typical if dtype.is_floating_point else 0.0
            bound = tol * scale.to(torch.float64)[finite] + floor
        else:
            bound = torch.full_like(err, tol * max(float(scale), 1e-30))
        if bool((err > bound).any()):
            worst = int((err - bound).argmax())
            return f"error {float(err[worst]):.3g} > bound {float(bound[worst]):.3g} (of {int((err > bound).sum())} outputs)"
    return None


def classify(case: Case, timeout: float = 60.0) -> Outcome:
    """Run one case and classify it (a hang beyond ``timeout`` seconds is unclear)."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected, dtype = case.expect()
        valid, why = True, ""
    except Invalid as e:
        valid, why, expected, dtype = False, str(e), None, None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = case.run()
    except Timeout:
        return Outcome(case, "unclear", f"no answer within {timeout:g} s")
    except Exception as e:  # noqa: BLE001  (every exception is classified)
        message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        if is_clear(e, case.ops, case.params):
            return Outcome(case, "clear", message, refused=valid)
        return Outcome(case, "unclear", message)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if not valid:
        return Outcome(case, "silent", f"accepted an input the contract refuses ({why})")
    try:
        scale = case.scale() if case.scale is not None else 1.0
    except Invalid:
        scale = 1.0
    if not isinstance(scale, Tensor) and not math.isfinite(scale):
        scale = 1.0
    reason = compare(got, expected, dtype, scale)
    return Outcome(case, "correct" if reason is None else "silent", reason or "")


class Draw:
    """Random choices from a seeded :class:`random.Random` (the campaign) or from hypothesis's
    ``data`` (the property test), behind one interface, so one generator serves both."""

    def __init__(self, rng: Any = None, data: Any = None) -> None:
        self.rng, self.data = rng, data

    def int(self, lo: int, hi: int) -> int:
        if self.data is not None:
            from hypothesis import strategies as st

            return self.data.draw(st.integers(lo, hi))
        return self.rng.randint(lo, hi)

    def pick(self, options: Sequence[Any]) -> Any:
        return options[self.int(0, len(options) - 1)]

    def chance(self, p: float) -> bool:
        return self.int(0, 999) < p * 1000

    def seed(self) -> int:
        return self.int(0, 2**31 - 1)
