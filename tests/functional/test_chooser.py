"""The "auto" chooser: the cost model's picks, its safety rules, and the autotuning cache."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import convolab
from convolab.functional import conv
from convolab.functional.algorithms import ALGORITHMS, Problem, choices_changed, choose, select, set_chooser
from convolab.functional.algorithms import chooser as _chooser
from convolab.functional.algorithms import tune as _tune
from convolab.functional.algorithms import choose_algorithm, estimate


def _problem(nd=2, batch=2, c_in=8, c_out=8, groups=1, size=None, kernel=None, stride=1, dilation=1,
             padding=0, input_dilation=1, dtype="torch.float32", device="cpu", channels_last=False):
    size = size or (12,) * nd
    kernel = kernel or (3,) * nd
    out = tuple(
        ((i - 1) * input_dilation + 1 + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        for i, k in zip(size, kernel)
    )
    return Problem(nd, batch, c_in, c_out, groups, tuple(size), tuple(kernel), (stride,) * nd,
                   (dilation,) * nd, ((padding, padding),) * nd, (input_dilation,) * nd, out,
                   dtype, device, channels_last)


@pytest.fixture
def tuning(tmp_path, monkeypatch):
    """Autotuning on with an empty cache; restored afterwards."""
    _tune.clear_tuning_cache()
    convolab.autotune(True, tmp_path / "tune.json")
    yield tmp_path / "tune.json"
    convolab.autotune(False)
    _tune.clear_tuning_cache()


# --- the cost model ------------------------------------------------------------------------------

def test_meta_tensors_get_native_so_analysis_sees_torchs_op():
    p = _problem(size=(64, 64), kernel=(31, 31), c_in=8, c_out=8, groups=8, padding=15, device="meta")
    assert choose_algorithm(p) == "native"
    x, w = torch.empty(1, 8, 64, 64, device="meta"), torch.empty(8, 1, 31, 31, device="meta")
    assert conv(x, w, padding=15, groups=8).shape == (1, 8, 64, 64)  # "auto" on meta runs


def test_meta_is_native_even_when_autotuning(tuning):
    assert choose_algorithm(_problem(device="meta", kernel=(31, 31), size=(64, 64), padding=15)) == "native"
    assert _tune.tuning_cache() == {}


def test_large_depthwise_kernels_train_with_fft_and_wide_ones_infer_off_native_nchw():
    dw31 = _problem(2, 8, 128, 128, 128, (32, 32), (31, 31), padding=15)
    dw13 = _problem(2, 8, 128, 128, 128, (56, 56), (13, 13), padding=6)
    long1d = _problem(1, 8, 64, 64, 64, (4096,), (257,), padding=128)
    with torch.enable_grad():  # torch's depthwise backward is the bottleneck: FFT's is a forward's cost
        assert [choose_algorithm(p) for p in (dw31, dw13, long1d)] == ["fft"] * 3
    with torch.no_grad():  # forward only: oneDNN is fine up to 13x13; wider, NCHW collapses
        assert choose_algorithm(dw31) in ("fft", "native_cl")
        assert choose_algorithm(dw13) == "native"
        assert choose_algorithm(long1d) == "fft"


@pytest.mark.parametrize(
    "p",
    [
        _problem(2, 4, 256, 256, 1, (14, 14), (3, 3), padding=1),  # ResNet 3x3: oneDNN is strong
        _problem(2, 4, 3, 64, 1, (224, 224), (7, 7), stride=2, padding=3),  # the stem
        _problem(2, 4, 128, 128, 128, (56, 56), (3, 3), padding=1),  # depthwise 3x3
        _problem(3, 2, 64, 64, 1, (8, 28, 28), (3, 3, 3), padding=1),
    ],
    ids=["resnet3x3", "stem", "dw3x3", "3d"],
)
@pytest.mark.parametrize("grad", [False, True])
def test_native_keeps_the_shapes_where_it_is_strong(p, grad):
    with torch.set_grad_enabled(grad):
        assert choose_algorithm(p) == "native"


def test_1x1_stays_native_without_autotuning():
    """Measured on a quiet machine: native 1x1 runs at 76-94% of matmul peak, gemm and
    native_cl lost (0.73-0.90x), so the model keeps native; autotune may still pick gemm."""
    p = _problem(2, 4, 256, 64, 1, (56, 56), (1, 1))
    with torch.no_grad():
        assert choose_algorithm(p) == "native"
    with torch.enable_grad():
        assert choose_algorithm(p) == "native"
    assert ALGORITHMS["gemm"].supports(p)


def test_layout_is_decided_per_pass():
    """Transposed 4x4/2: channels-last runs the forward 4-8% faster when its output may stay
    channels-last, but the result must come back in the input's layout (a .view() after it
    must work), and converting it back costs that gain; the backward is slower anyway."""
    p = _problem(2, 4, 128, 64, 1, (28, 28), (4, 4), padding=2, input_dilation=2)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            assert choose_algorithm(p) == "native"
    with torch.no_grad():  # input already channels-last: native runs it in that layout
        assert choose_algorithm(replace(p, channels_last=True)) == "native"


def test_dense_and_grouped_convs_are_not_converted_to_channels_last():
    for p in (
        _problem(2, 4, 64, 64, 1, (56, 56), (3, 3), padding=1),
        _problem(2, 4, 64, 256, 1, (56, 56), (1, 1)),
        _problem(2, 4, 256, 256, 32, (28, 28), (3, 3), padding=1),  # ResNeXt grouped 3x3
    ):
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                assert choose_algorithm(p) == "native"
                # already channels-last: native runs it in that layout, nothing to decide
                assert choose_algorithm(replace(p, channels_last=True)) == "native"


def test_other_devices_dtypes_and_empty_batches_get_native():
    big_dw = dict(nd=2, c_in=8, c_out=8, groups=8, size=(64, 64), kernel=(31, 31), padding=15)
    assert choose_algorithm(_problem(**big_dw, dtype="torch.bfloat16")) == "native"
    assert choose_algorithm(_problem(**big_dw, device="cuda:0")) == "native"
    assert choose_algorithm(_problem(**big_dw, batch=0)) == "native"


PROBLEMS = [
    _problem(nd, 2, cin, cout, g, (s,) * nd, (k,) * nd, stride, dil, pad, idil)
    for nd, (cin, cout, g), s, k, stride, dil, pad, idil in itertools.product(
        [1, 2, 3], [(8, 8, 1), (8, 16, 2), (8, 8, 8)], [9, 40], [1, 3, 9], [1, 2], [1, 2], [0, 4], [1, 2]
    )
    if (s - 1) * idil + 1 + 2 * pad >= dil * (k - 1) + 1
]


@pytest.mark.parametrize("grad", [False, True])
def test_chooser_never_picks_an_algorithm_that_does_not_support_the_problem(grad):
    with torch.set_grad_enabled(grad):
        for p in PROBLEMS:
            name = choose_algorithm(p)
            assert ALGORITHMS[name].supports(p), (name, p)
            assert estimate(name, p, grad) < float("inf")


def test_estimates_are_inf_for_unsupported_and_unknown_algorithms():
    p = _problem(kernel=(5, 5))
    assert estimate("winograd", p) == float("inf") and estimate("gemm", p) == float("inf")
    assert estimate("no-such", p) == float("inf")
    assert 0 < estimate("native", p) < float("inf")


def test_registry_falls_back_to_native_when_a_chooser_names_an_unsupported_algorithm():
    p = _problem(kernel=(5, 5))
    try:
        set_chooser(lambda p: "winograd")
        assert choose(p) == "native"
        set_chooser(lambda p: "does-not-exist")
        assert choose(p) == "native"
    finally:
        set_chooser(choose_algorithm)


def test_modules_use_the_chooser(monkeypatch):
    seen = []
    monkeypatch.setattr(_chooser, "_model_choice", lambda p, b: seen.append(p) or "fft")
    choices_changed()  # the ops' memoised picks were made by the real model (conftest clears them after)
    m = convolab.nn.Conv2d(4, 4, 5, padding=2, groups=4)
    x = torch.randn(1, 4, 9, 9)
    torch.testing.assert_close(m(x), F.conv2d(x, m.weight, m.bias, padding=2, groups=4), rtol=1e-5, atol=1e-5)
    assert len(seen) == 1 and seen[0].kernel == (5, 5)


def test_set_machine_changes_the_model_and_clears_its_cache():
    p = _problem(2, 8, 128, 128, 128, (56, 56), (7, 7), padding=3)
    original = _chooser.MACHINE
    try:
        with torch.no_grad():
            assert choose_algorithm(p) != "fft"
            _chooser.set_machine(replace(original, fft_gunits=1e6, bandwidth_gbs=1e6))
            assert choose_algorithm(p) == "fft"  # a machine with a free FFT
    finally:
        _chooser.set_machine(original)
    with pytest.raises(TypeError, match="set_machine: expected a Machine, got dict"):
        _chooser.set_machine({})


def test_calibrate_measures_positive_constants():
    m = _chooser.calibrate()
    assert m.gemm_gmacs > 0 and m.fft_gunits > 0 and m.bandwidth_gbs > 0
    assert m.margin == _chooser.MACHINE.margin


# --- autotuning and its cache --------------------------------------------------------------------


def _fake_timer(monkeypatch, times):
    """Replace the timing by a table; record every call."""
    calls = []

    def fake(p, names, backward, repeats=5):
        calls.append((p, tuple(names), backward))
        return {n: times.get(n, 1.0) for n in names}

    monkeypatch.setattr(_tune, "_time_candidates", fake)
    return calls


DW = _problem(2, 2, 8, 8, 8, (40, 40), (15, 15), padding=7)  # fft, native, native_cl all plausible


def test_autotune_times_once_and_reuses_the_cached_choice(tuning, monkeypatch):
    calls = _fake_timer(monkeypatch, {"native": 1.0, "fft": 0.5, "native_cl": 0.7})
    with torch.no_grad():
        assert choose_algorithm(DW) == "fft"
        assert choose_algorithm(DW) == "fft"
    assert len(calls) == 1
    assert set(calls[0][1]) >= {"native", "fft"} and all(ALGORITHMS[n].supports(DW) for n in calls[0][1])


def test_autotune_retunes_on_shape_dtype_layout_and_grad_mode_changes(tuning, monkeypatch):
    calls = _fake_timer(monkeypatch, {"native": 1.0, "fft": 0.5})
    variants = [
        DW,
        _problem(2, 2, 8, 8, 8, (44, 40), (15, 15), padding=7),  # shape
        _problem(2, 3, 8, 8, 8, (40, 40), (15, 15), padding=7),  # batch
        _problem(2, 2, 8, 8, 8, (40, 40), (15, 15), padding=7, dtype="torch.float64"),
        _problem(2, 2, 8, 8, 8, (40, 40), (15, 15), padding=7, channels_last=True),
    ]
    with torch.no_grad():
        for p in variants:
            choose_algorithm(p)
    with torch.enable_grad():
        choose_algorithm(DW)
    assert len(calls) == len(variants) + 1
    assert [c[2] for c in calls] == [False] * len(variants) + [True]
    assert len(_tune.tuning_cache()) == len(variants) + 1


def test_autotune_ties_go_to_native(tuning, monkeypatch):
    _fake_timer(monkeypatch, {"native": 1.0, "fft": 0.92, "native_cl": 0.99})
    with torch.no_grad():
        assert choose_algorithm(DW) == "native"


def test_autotune_cache_file_is_written_and_read_back(tuning, monkeypatch):
    calls = _fake_timer(monkeypatch, {"native": 1.0, "fft": 0.2})
    with torch.no_grad():
        choose_algorithm(DW)
    stored = json.loads(tuning.read_text())
    assert list(stored.values()) == ["fft"] and "kernel=(15, 15)" in next(iter(stored))
    _tune.clear_tuning_cache()  # a new session: reads the file, times nothing
    convolab.autotune(True, tuning)
    with torch.no_grad():
        assert choose_algorithm(DW) == "fft"
    assert len(calls) == 1


def test_autotune_with_real_timing_picks_a_supported_algorithm_and_computes_right(tuning):
    x, w = torch.randn(1, 4, 16, 16), torch.randn(4, 1, 9, 9)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            y = conv(x, w, padding=4, groups=4)
        torch.testing.assert_close(y, F.conv2d(x, w, padding=4, groups=4), rtol=1e-4, atol=1e-4)
    choices = _tune.tuning_cache()
    assert len(choices) == 2 and all(c in ALGORITHMS for c in choices.values())


def test_autotune_rejects_a_bad_cache_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(ValueError, match=r"autotune: cache_file '.*bad.json' is not a JSON cache"):
        convolab.autotune(True, bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"autotune: cache_file '.*bad.json' must hold a JSON object"):
        convolab.autotune(True, bad)
    convolab.autotune(False)


@pytest.mark.parametrize("value,enabled,file", [("1", True, False), ("0", False, False), ("", False, False),
                                                ("on", True, False), ("{path}", True, True)])
def test_environment_variable(monkeypatch, tmp_path, value, enabled, file):
    path = tmp_path / "env.json"
    monkeypatch.setenv("CONVOLAB_AUTOTUNE", value.format(path=path))
    try:
        convolab.autotune(False)
        _tune._from_environment()
        assert _tune.autotune_enabled() is enabled
        assert (_tune._state["file"] == path) is file
    finally:
        convolab.autotune(False)


def test_select_auto_returns_the_chosen_algorithm():
    p = _problem(1, 8, 64, 64, 64, (4096,), (257,), padding=128)
    with torch.no_grad():
        assert select("auto", torch.empty(1, 64, 4096), lambda: p, "conv1d") == ("fft", p)


# --- planning is bounded in the sizes, and "auto" never picks a memory bomb ----------------------


def test_fft_planning_is_bounded_for_absurd_sizes():
    """Counting up to the next 7-smooth number took minutes at 10**12; now a table lookup."""
    from convolab.functional.algorithms.fft import good_size, tile_length

    assert good_size(10**12) == 2**40 and good_size(10**12, even=True) % 2 == 0
    assert good_size(2**34 + 1) == 2**35  # past the table: the next power of two
    assert tile_length(10**12, 3) == 32 and tile_length(2 * 10**8, 257) >= 514
    p = _problem(1, 1, 1, 1, 1, (100,), (3,), padding=10**8)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            assert choose_algorithm(p) == "native"  # fft would need gigabytes of blocks


def test_transposed_conv_with_an_absurd_stride_returns():
    """conv_transpose1d(stride=10**12) hung in fft planning; it now fails at once (torch's own
    size check, or convolab's output-size estimate) instead of planning forever."""
    with pytest.raises((ValueError, RuntimeError)):
        convolab.functional.conv_transpose1d(torch.randn(1, 1, 5), torch.randn(1, 1, 3), stride=10**12)


def test_auto_never_picks_an_algorithm_beyond_the_workspace_limit():
    from convolab.functional.algorithms import workspace

    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for p in PROBLEMS:
                name = choose_algorithm(p)
                assert name == "native" or workspace(name, p, grad) <= _chooser.workspace_limit(p)


def test_a_small_workspace_ceiling_turns_fft_off():
    p = _problem(2, 8, 128, 128, 128, (32, 32), (31, 31), padding=15)
    original = _chooser.MACHINE
    try:
        with torch.enable_grad():
            assert choose_algorithm(p) == "fft"
            _chooser.set_machine(replace(original, workspace_bytes=2**20))
            assert choose_algorithm(p) != "fft"
    finally:
        _chooser.set_machine(original)


def test_workspace_estimates_are_in_bytes_and_grow_with_the_problem():
    from convolab.functional.algorithms import workspace

    small = _problem(2, 2, 8, 8, 8, (32, 32), (15, 15), padding=7)
    large = _problem(2, 8, 8, 8, 8, (64, 64), (15, 15), padding=7)
    for name in ("fft", "im2col", "direct", "winograd"):
        if ALGORITHMS[name].supports(small):
            assert 0 < workspace(name, small, False) < workspace(name, large, False)
            assert workspace(name, small, False) <= workspace(name, small, True)
    assert workspace("native", large, True) == 0
    # the fft's padded blocks of a 31x31 kernel on a 32x32 map: about 15x the problem's bytes
    dw31 = _problem(2, 8, 128, 128, 128, (32, 32), (31, 31), padding=15)
    own = 2 * 8 * 128 * 32 * 32 * 4
    assert 10 * own < workspace("fft", dw31, True) < 30 * own
