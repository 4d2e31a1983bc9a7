"""The table of convolution algorithms: the :class:`Problem` record, the :class:`Algorithm`
protocol, registration and what the table answers about an algorithm.

Every algorithm declares ``supports(problem)`` and ``run(x, weight, bias, problem)``
with one signature, so the chooser, the benchmarks and the tests treat them alike, and
carries what ``"auto"`` needs to weigh it: ``estimate(problem, backward)`` (predicted
seconds), ``workspace(problem, backward)`` (bytes of temporaries) and
``numerics(problem)`` (whether it gives native's NaN/Inf pattern and error bound on any
input; when not, ``"auto"`` runs it behind the checks of :mod:`._numerics`); optionally
``run_transposed`` (a transposed conv in torch's weight layout). A new algorithm is one
class and one ``register_algorithm`` call.

``run`` receives the *unpadded* input: ``problem.padding`` holds the zero padding
still to apply per dim as ``(before, after)`` (negative entries crop), and
``problem.input_dilation`` the zero insertion between input samples (transposed
convolution), both in JAX's ``conv_general_dilated`` sense. Non-zero padding
modes (reflect, ...) have already been applied by the caller.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional, Protocol

from torch import Tensor

from ..._args import check_choice
from .._common import transposed_weight
from ._numerics import run_checked
from .problem import Problem, symmetric_padding

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Problem",
    "available_algorithms",
    "check_algorithm",
    "choices_changed",
    "estimate",
    "generation",
    "native_numerics",
    "numerics",
    "register_algorithm",
    "symmetric_padding",
    "workspace",
]


class Algorithm(Protocol):
    """What a registered algorithm provides (only ``name``, ``supports`` and ``run`` are required;
    without ``estimate`` ``"auto"`` never picks it, without ``numerics`` it is checked;
    ``run_transposed(x, weight, bias, problem)`` is optional)."""

    name: str
    requirement: str

    def supports(self, p: Problem) -> bool: ...

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor: ...

    def estimate(self, p: Problem, backward: bool) -> float: ...

    def workspace(self, p: Problem, backward: bool) -> float: ...

    def numerics(self, p: Problem) -> str: ...


ALGORITHMS: dict[str, Algorithm] = {}

class _Registered:
    """A registered algorithm as the table hands it out: the algorithm itself in every attribute,
    except that ``run`` and ``run_transposed`` honour ``problem.guard`` (``"auto"``'s numerics
    contract, enforced here once for every algorithm, built-in or not)."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm

    def __getattr__(self, attribute: str):  # type: ignore[no-untyped-def]
        return getattr(self.algorithm, attribute)

    def __repr__(self) -> str:
        return f"<algorithm {self.algorithm.name!r}>"

    def run(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        """The algorithm on the general conv problem ``p`` (weight ``[C_out, C_in/g, *k]``)."""
        if not p.guard:
            return self.algorithm.run(x, weight, bias, p)
        q = replace(p, guard=False)
        return run_checked(
            lambda x, w, b: self.algorithm.run(x, w, b, q),
            lambda x, w, b: ALGORITHMS["native"].run(x, w, b, q),
            x, weight, bias, q.ndim, numerics(self.algorithm.name, q),
        )

    def run_transposed(self, x: Tensor, weight: Tensor, bias: Optional[Tensor], p: Problem) -> Tensor:
        """A transposed conv's problem ``p`` with torch's transposed weight ``[C_in, C_out/g, *k]``:
        the algorithm's own transposed path when it has one, else ``run`` on the conv layout."""
        q = replace(p, guard=False)
        own = getattr(self.algorithm, "run_transposed", None)

        def fast(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:
            if own is not None:
                return own(x, w, b, q)
            return self.algorithm.run(x, transposed_weight(w, q.groups), b, q)

        if not p.guard:
            return fast(x, weight, bias)
        # the fallback is the op's own native, torch's conv_transpose: its NaN/Inf pattern can
        # differ from a padded conv's (torch's kernels differ in whether they multiply padding)
        native = ALGORITHMS["native"].algorithm
        return run_checked(
            fast, lambda x, w, b: native.run_transposed(x, w, b, q), x, weight, bias, q.ndim,
            numerics(self.algorithm.name, q),
        )


_generation = [0]


def generation() -> int:
    """Changes whenever what ``"auto"`` picks may change: an algorithm registered, a chooser
    installed, autotuning switched or its cache cleared, a new machine model. The ops' eager
    plan memos (:mod:`convolab.functional._plans`) key on it."""
    return _generation[0]


def choices_changed() -> None:
    """Invalidate every memoised pick (see :func:`generation`)."""
    _generation[0] += 1


def register_algorithm(algorithm: Algorithm) -> Algorithm:
    """Add an algorithm to the table (later registrations with the same name replace earlier)."""
    ALGORITHMS[algorithm.name] = _Registered(algorithm)  # type: ignore[assignment]
    choices_changed()
    return algorithm


def available_algorithms() -> tuple[str, ...]:
    """Names accepted by ``algorithm=``: every registered algorithm plus ``"auto"``."""
    return ("auto", *ALGORITHMS)


def estimate(name: str, p: Problem, backward: bool = False) -> float:
    """Predicted seconds of algorithm ``name`` on ``p`` (inf when it has no model or no support)."""
    algorithm = ALGORITHMS.get(name)
    if algorithm is None or not hasattr(algorithm, "estimate") or not algorithm.supports(p):
        return math.inf
    return algorithm.estimate(p, backward)


def workspace(name: str, p: Problem, backward: bool = False) -> float:
    """Bytes of temporary memory algorithm ``name`` needs for ``p`` beyond its input, output and
    weight (0 when it does not say)."""
    algorithm = ALGORITHMS.get(name)
    return algorithm.workspace(p, backward) if hasattr(algorithm, "workspace") else 0.0


def numerics(name: str, p: Problem) -> str:
    """What algorithm ``name`` keeps of native's numerics on ``p``: ``"native"``,
    ``"finite-weights"`` or ``"checked"`` (see :mod:`._numerics`; "checked" when it does not say)."""
    algorithm = ALGORITHMS.get(name)
    return algorithm.numerics(p) if hasattr(algorithm, "numerics") else "checked"


def native_numerics(name: str, p: Problem) -> bool:
    """Whether algorithm ``name`` gives native's NaN/Inf pattern and error bound on every input of ``p``."""
    return numerics(name, p) == "native"


def check_algorithm(name: str, op: str) -> str:
    """``name`` must be "auto" or a registered algorithm (the error lists them and the closest)."""
    if name != "auto" and name not in ALGORITHMS:
        check_choice(name, available_algorithms(), "algorithm", op)
    return name
