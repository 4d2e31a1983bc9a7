"""A fast sample of the fault-and-bad-input campaign (``python -m tests.campaign`` runs all of
it), and a hypothesis property over the same generator: every op configuration gives the
oracle's result or convolab's own error, never torch's message and never a silent wrong answer.

Failures owned by the fast algorithms (NaN/Inf locality, dynamic range of explicitly chosen
fft/winograd/direct paths) are the algorithms part of issue 16 and are not asserted here.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .bombs import run_one
from .core import Case, Draw, classify
from .generate import nonfinite_case, random_case
from .malformed import malformed_cases
from .oracle import Invalid


def _failures(outcomes):
    return [f"[{o.kind}] {o.case.name}: {o.detail}" for o in outcomes
            if o.kind in ("unclear", "silent") and o.case.owner == "errors"]


def test_classifier_tells_the_four_outcomes_apart():
    ok = lambda: (torch.ones(2), torch.float32)  # noqa: E731
    invalid = lambda: (_ for _ in ()).throw(Invalid("bad"))  # noqa: E731

    def case(run, expect=ok):
        return Case("random", "t", ("conv2d",), ("padding",), run, expect)

    assert classify(case(lambda: torch.ones(2))).kind == "correct"
    assert classify(case(lambda: torch.ones(2) * 1.001)).kind == "silent"
    assert classify(case(lambda: torch.ones(2, dtype=torch.float64))).kind == "silent"  # the wrong dtype
    assert classify(case(lambda: torch.ones(2), invalid)).kind == "silent"  # accepted a bad input

    def raises(error):
        def run():
            raise error
        return run

    assert classify(case(raises(ValueError("conv2d: padding must be >= 0, got -1")), invalid)).kind == "clear"
    refused = classify(case(raises(TypeError("conv2d: padding must contain ints"))))
    assert refused.kind == "clear" and refused.refused
    assert classify(case(raises(RuntimeError("conv2d: padding")), invalid)).kind == "unclear"  # not ours
    assert classify(case(raises(ValueError("padding must be >= 0")), invalid)).kind == "unclear"  # no op name
    assert classify(case(raises(ValueError("max_pool2d: padding bad")), invalid)).kind == "unclear"  # other op
    assert classify(case(raises(IndexError("conv2d: padding")), invalid)).kind == "unclear"


def test_random_sample():
    draw = Draw(random.Random(2024))
    outcomes = [classify(random_case(draw).case, timeout=30) for _ in range(300)]
    made = []
    while len(made) < 60:
        built = nonfinite_case(draw)
        if built is not None:
            made.append(classify(built.case, timeout=30))
    assert sum(o.kind == "correct" for o in outcomes) > 100  # the sample mostly computes something
    assert _failures(outcomes + made) == []


def test_malformed_arguments():
    outcomes = [classify(case, timeout=30) for case in malformed_cases()]
    assert len(outcomes) > 500
    assert _failures(outcomes) == []


@pytest.mark.parametrize("name", ["conv2d padding=1e6", "conv_transpose1d stride=1e12", "conv2d padding=2**40",
                                  "adaptive_avg_pool2d output=1e6", "pool logsumexp window copy",
                                  "Conv2d padding=1e6"])
def test_bombs_are_refused_before_any_allocation(name):
    # each needs terabytes: refused by the estimate on any machine (the campaign runs all of
    # them in their own processes, under an address-space limit)
    assert run_one(name)["kind"] == "clear"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_configuration_is_correct_or_a_clear_error(data):
    draw = Draw(data=data)
    built = random_case(draw)
    outcome = classify(built.case, timeout=30)
    assert _failures([outcome]) == []
