"""The eager plan memo of conv and pooling: it never changes what an op does, only how often
its checks and algorithm pick run."""

from __future__ import annotations


import pytest
import torch

import convolab.functional as F
from convolab.functional import algorithms
from convolab.functional.algorithms import ALGORITHMS, choose_algorithm, register_algorithm, set_chooser

from convolab.functional import convolution as conv_module
from convolab.functional import pooling as pool_module


class _Spy:
    """im2col under another name, counting its runs."""

    name = "spy"
    requirement = ""

    def __init__(self) -> None:
        self.runs = 0

    def supports(self, p) -> bool:
        return ALGORITHMS["im2col"].supports(p)

    def run(self, x, weight, bias, p):
        self.runs += 1
        return ALGORITHMS["im2col"].run(x, weight, bias, p)

    def numerics(self, p) -> str:
        return "native"


@pytest.fixture
def spy():
    algorithm = register_algorithm(_Spy())
    try:
        yield algorithm
    finally:
        ALGORITHMS.pop("spy")
        set_chooser(choose_algorithm)


def test_a_new_chooser_is_seen_by_the_next_call(spy):
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    F.conv2d(x, w, padding=1)  # memoised: the cost model's pick
    set_chooser(lambda p: "spy")
    torch.testing.assert_close(F.conv2d(x, w, padding=1), torch.conv2d(x, w, padding=1))
    assert spy.runs == 1
    set_chooser(choose_algorithm)
    F.conv2d(x, w, padding=1)
    assert spy.runs == 1


def test_the_pick_follows_the_grad_mode(spy):
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    set_chooser(lambda p: "spy" if torch.is_grad_enabled() else "native")
    with torch.no_grad():
        F.conv2d(x, w)
    assert spy.runs == 0
    F.conv2d(x, w)
    assert spy.runs == 1


def test_bad_arguments_fail_every_time():
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    for _ in range(2):
        with pytest.raises(ValueError, match="stride"):
            F.conv2d(x, w, stride=0)
        with pytest.raises(ValueError, match="kernel_size"):
            F.max_pool2d(x, 0)
    F.conv2d(x, w, stride=2)  # the good call's plan does not excuse a later bad one
    with pytest.raises(ValueError, match="padding_mode"):
        F.conv2d(x, w, stride=2, padding_mode="mirror")


def test_a_memoised_plan_gives_the_same_results_as_a_fresh_one():
    x = torch.randn(2, 4, 9, 10)
    w = torch.randn(6, 2, 3, 3)
    cases = [
        lambda: F.conv2d(x, w, stride=2, padding="same", groups=2),
        lambda: F.conv2d(x, w, padding=((1, 2), (0, 1)), groups=2, padding_mode="reflect"),
        lambda: F.conv2d(x, w, padding=1, groups=2, flip=True),
        lambda: F.max_pool2d(x, 3, 2, padding="same", return_indices=True)[1].float(),
        lambda: F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
    ]
    for case in cases:
        conv_module._PLANS.clear()
        pool_module._PLANS.clear()
        fresh = case()
        torch.testing.assert_close(case(), fresh, rtol=0, atol=0)


def test_nothing_is_memoised_under_a_transform_or_a_tracer():
    conv_module._PLANS.clear()
    x, w = torch.randn(2, 1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    torch.func.vmap(lambda t: F.conv2d(t, w))(x)
    torch.jit.trace(lambda t: F.conv2d(t, w), (x[0],), check_trace=False)  # (its check runs it eagerly)
    assert len(conv_module._PLANS) == 0
    F.conv2d(x[0], w)
    assert len(conv_module._PLANS) == 1


def test_the_memo_is_bounded():
    plans = type(conv_module._PLANS)(size=3)
    for i in range(10):
        plans.put(plans.key((i,)), i)
    assert len(plans) == 3 and plans.get(plans.key((9,))) == 9 and plans.get(plans.key((0,))) is None


def test_generation_changes_with_the_chooser_state():
    before = algorithms.generation()
    algorithms.autotune(False)
    assert algorithms.generation() != before


@pytest.mark.parametrize("good,bad", [
    (dict(padding=1), dict(padding=True)),
    (dict(stride=2), dict(stride=2.0)),
    (dict(padding=((1, 1), (0, 0))), dict(padding=((True, 1), (0, 0)))),
])
def test_a_plan_for_an_int_never_answers_for_a_bool_or_a_float(good, bad):
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    F.conv2d(x, w, **good)
    F.conv_transpose2d(x, w.transpose(0, 1), **good)
    with pytest.raises((TypeError, ValueError)):
        F.conv2d(x, w, **bad)
    with pytest.raises((TypeError, ValueError)):
        F.conv_transpose2d(x, w.transpose(0, 1), **bad)


def test_a_pooling_plan_for_an_int_never_answers_for_a_float():
    x = torch.randn(1, 3, 8, 8)
    F.max_pool2d(x, 2)
    F.lp_pool2d(x, 2, 2)
    with pytest.raises((TypeError, ValueError)):
        F.max_pool2d(x, 2.0)
    with pytest.raises((TypeError, ValueError)):
        F.lp_pool2d(x, 2, 2.0)


def test_nested_lists_are_memoised_as_tuples():
    x, w = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(F.conv2d(x, w, padding=[[1, 2], [0, 1]]), F.conv2d(x, w, padding=((1, 2), (0, 1))))
