"""convolab's convolution algorithms: the table (:mod:`.registry`), the built-ins (one module
each), the chooser of ``"auto"`` (:mod:`.chooser`) and autotuning (:mod:`.tune`).

Every algorithm declares ``supports(problem)`` and ``run(x, weight, bias, problem)``
with one signature, so the chooser, the benchmarks and the tests treat them alike, and
carries what ``"auto"`` needs to weigh it: ``estimate(problem, backward)`` (predicted
seconds), ``workspace(problem, backward)`` (bytes of temporaries) and
``numerics(problem)`` (whether it gives native's NaN/Inf pattern and error bound on any
input; when not, ``"auto"`` runs it behind the checks of :mod:`._numerics`).
A new algorithm is one class and one ``register_algorithm`` call.

``run`` receives the *unpadded* input: ``problem.padding`` holds the zero padding
still to apply per dim as ``(before, after)`` (negative entries crop), and
``problem.input_dilation`` the zero insertion between input samples (transposed
convolution), both in JAX's ``conv_general_dilated`` sense. Non-zero padding
modes (reflect, ...) have already been applied by the caller.
"""

from .registry import (
    ALGORITHMS,
    Algorithm,
    Problem,
    available_algorithms,
    check_algorithm,
    choices_changed,
    estimate,
    generation,
    native_numerics,
    numerics,
    register_algorithm,
    symmetric_padding,
    workspace,
)
# the built-ins register themselves on import, in this order (the table's order: ties go to the first)
from . import direct, im2col, native  # noqa: F401,I001
from . import fft, gemm, native_cl, winograd  # noqa: F401
from .chooser import calibrate, choose, choose_algorithm, select, set_chooser, set_machine, workspace_limit
from .tune import autotune, autotune_enabled, clear_tuning_cache, tuning_cache

set_chooser(choose_algorithm)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Problem",
    "autotune",
    "autotune_enabled",
    "available_algorithms",
    "calibrate",
    "check_algorithm",
    "choices_changed",
    "choose",
    "choose_algorithm",
    "clear_tuning_cache",
    "estimate",
    "generation",
    "native_numerics",
    "numerics",
    "register_algorithm",
    "select",
    "set_chooser",
    "set_machine",
    "symmetric_padding",
    "tuning_cache",
    "workspace",
    "workspace_limit",
]
