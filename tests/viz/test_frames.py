"""Frames are data: their content is checked against independent references, not only their count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convolab import arithmetic
from convolab.viz.animate import animate
from convolab.viz.frames import (
    DATA,
    PAD,
    ZERO,
    channel_shuffle_animation,
    checkerboard_animation,
    conv_animation,
    conv_transpose_animation,
    depthwise_separable_animation,
    grouped_conv_animation,
    pointwise_animation,
)
from tests._reference import conv_loop, conv_transpose_loop, same_pads_tf


def _data(grid) -> np.ndarray:
    """The data cells of a shown input grid, back in their original layout."""
    values, kinds = np.array(grid.values), np.array(grid.kinds)
    rows = [r for r in range(kinds.shape[0]) if (kinds[r] == DATA).any()]
    cols = [c for c in range(kinds.shape[1]) if (kinds[:, c] == DATA).any()]
    return values[np.ix_(rows, cols)]


CONV_CASES = [
    # input, kernel, stride, padding, dilation
    ((5, 5), 3, 2, 1, 1),            # the CS231n demo geometry
    ((5, 5), 3, 1, "valid", 1),
    ((5, 5), 3, 1, "same", 1),
    ((6, 7), 3, 2, "same", 1),       # 'same' with stride 2: asymmetric (0, 1) padding
    ((7, 7), 3, 1, 0, 2),            # dilated
    ((5, 6), (2, 3), (1, 2), ((1, 0), (2, 1)), 1),  # per-side pairs
    ((9,), 3, 1, "same", 2),         # 1-D, dilated, same
    ((8,), 4, 3, 2, 1),              # 1-D strided
]


@pytest.mark.parametrize("size,k,s,p,d", CONV_CASES)
def test_conv_frames_match_reference(size, k, s, p, d):
    a = conv_animation(size, k, s, p, d, seed=3)
    nd = len(size)
    out_shape = arithmetic.conv_output_shape(size, k, s, p, d)
    assert len(a.frames) == math.prod(out_shape)
    pads = (
        [same_pads_tf(n, kk, ss, dd) for n, kk, ss, dd in zip(size, *(
            [v] * nd if isinstance(v, int) else list(v) for v in (k, s, d)))]
        if p == "same" else ([(0, 0)] * nd if p == "valid" else p)
    )
    x = _data(a.input)
    assert x.shape == ((1,) + size if nd == 1 else size)
    w = np.array(a.kernel.values)
    x_in = x.reshape(1, 1, *size)
    w_in = w.reshape(1, 1, *w.shape[-nd:]) if nd == 2 else w.reshape(1, 1, -1)
    ref = conv_loop(x_in, w_in, [a.bias], s, pads, d)[0, 0]
    ref2 = ref.reshape(1, -1) if nd == 1 else ref
    # every output cell is written once, in row-major order, with the reference value
    cells = [f.cells[0] for f in a.frames]
    assert cells == [(i, j) for i in range(ref2.shape[0]) for j in range(ref2.shape[1])]
    for f in a.frames:
        assert f.values[0] == pytest.approx(ref2[f.cells[0]])
        assert f.caption.endswith(f"= {f.values[0]:g}")
    np.testing.assert_allclose(np.array(a.output.values), ref2)


@pytest.mark.parametrize("size,k,s,p,d", CONV_CASES)
def test_conv_padding_cells_are_where_arithmetic_says(size, k, s, p, d):
    a = conv_animation(size, k, s, p, d)
    nd = len(size)
    pads = arithmetic.resolve_padding(p, size, k, s, d)
    pads2 = ((0, 0), *pads) if nd == 1 else pads
    size2 = (1, *size) if nd == 1 else size
    assert a.input.shape == tuple(n + b + e for n, (b, e) in zip(size2, pads2))
    expected = {
        (i, j)
        for i in range(a.input.shape[0])
        for j in range(a.input.shape[1])
        if not (pads2[0][0] <= i < pads2[0][0] + size2[0] and pads2[1][0] <= j < pads2[1][0] + size2[1])
    }
    assert a.input.cells(PAD) == expected
    assert all(a.input.values[i][j] == 0 for i, j in expected)


@pytest.mark.parametrize("size,k,s,p,d", CONV_CASES)
def test_window_times_kernel_is_the_value(size, k, s, p, d):
    """The cells drawn under the window, times the kernel, plus bias, give the op's value."""
    a = conv_animation(size, k, s, p, d, seed=1)
    taps = [v for row in a.kernel.values for v in row]
    for f in a.frames:
        under = [a.input.values[i][j] for i, j in f.window]
        assert len(under) == len(taps)
        assert sum(u * t for u, t in zip(under, taps)) + a.bias == pytest.approx(f.values[0])
        # the window spans exactly the dilated kernel extent
        rows = sorted({i for i, _ in f.window})
        cols = sorted({j for _, j in f.window})
        dd = (d,) * len(size) if isinstance(d, int) else d
        if len(size) == 2:
            assert all(b - a_ == dd[0] for a_, b in zip(rows, rows[1:]))
        assert all(b - a_ == dd[-1] for a_, b in zip(cols, cols[1:]))


@pytest.mark.parametrize("size,k,s,p,op", [
    ((2, 2), 3, 1, 0, 0),       # Dumoulin & Visin's 2x2 -> 4x4
    ((3, 3), 3, 2, 1, 1),
    ((2, 3), (3, 2), 2, 0, 0),
    ((4,), 3, 2, 1, 0),
    ((3, 3), 3, 2, 2, 1),       # padding = kernel-1: no extra padding, output_padding after
])
def test_conv_transpose_frames_match_torch(size, k, s, p, op):
    a = conv_transpose_animation(size, k, s, p, op, seed=2)
    nd = len(size)
    # recover the input from the data cells: the zero-inserted grid holds it at stride s
    values, kinds = np.array(a.input.values), np.array(a.input.kinds)
    data = values[kinds == DATA].reshape(size)
    x = torch.tensor(data, dtype=torch.float64).reshape(1, 1, *size)
    flipped = torch.tensor(a.kernel.values, dtype=torch.float64)
    w = torch.flip(flipped, dims=(0, 1)) if nd == 2 else torch.flip(flipped.reshape(-1), dims=(0,))
    w = w.reshape(1, 1, *w.shape)
    fn = F.conv_transpose2d if nd == 2 else F.conv_transpose1d
    ref = fn(x, w, torch.tensor([a.bias], dtype=torch.float64), stride=s, padding=p, output_padding=op)[0, 0]
    ref2 = ref.reshape(1, -1) if nd == 1 else ref
    assert len(a.frames) == ref.numel()
    for f in a.frames:
        assert f.values[0] == pytest.approx(float(ref2[f.cells[0]]))
    # inserted zeros sit between data cells, stride apart
    zeros = a.input.cells(ZERO)
    ss = (s,) * nd if isinstance(s, int) else s
    assert len(zeros) == math.prod((n - 1) * t + 1 for n, t in zip(size, ss)) - math.prod(size)
    assert all(a.input.values[i][j] == 0 for i, j in zeros)
    # the title names every setting that shapes the output, output_padding included when it is set
    assert (f"output_padding {op}" in a.title) == (op != 0)


def test_conv_transpose_matches_the_scatter_loop():
    a = conv_transpose_animation((3, 2), 2, 2, seed=5)
    values, kinds = np.array(a.input.values), np.array(a.input.kinds)
    x = values[kinds == DATA].reshape(1, 1, 3, 2)
    w = np.array(a.kernel.values)[::-1, ::-1].reshape(1, 1, 2, 2)
    ref = conv_transpose_loop(x, w, [a.bias], stride=2)[0, 0]
    np.testing.assert_allclose(np.array(a.output.values), ref)


def test_checkerboard_counts():
    a = checkerboard_animation((3, 3), 3, 2)
    ref = F.conv_transpose2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3), stride=2)[0, 0]
    assert len(a.frames) == 9
    final: dict = {}
    for f in a.frames:
        assert len(f.cells) == 9  # each input scatters a full 3x3 footprint
        final.update(zip(f.cells, f.values))
    assert all(final[c] == float(ref[c]) for c in final)
    assert len(final) == ref.numel()
    assert a.output.values[0] == (1, 1, 2, 1, 2, 1, 1)
    assert a.output.values[2][2] == 4


def test_grouped_edges_follow_the_groups():
    a = grouped_conv_animation(6, 4, 2, seed=1)
    edges = {(src, dst) for src, dst, _ in a.stages[0].edges}
    assert edges == {(i, o) for i in range(6) for o in range(4) if i // 3 == o // 2}
    assert len(a.frames) == 4
    stage = a.stages[0]
    x = np.array(a.inputs)
    for f in a.frames:
        expect = sum(w * x[src] for src, dst, w in stage.edges if dst == f.dst) + stage.bias[f.dst]
        assert f.value == pytest.approx(expect)
        assert set(f.sources) == {i for i, o in edges if o == f.dst}


def test_shuffle_unit_and_channel_shuffle():
    a = grouped_conv_animation(4, 6, 2, shuffle=True)
    assert [s.label.split(" (")[0] for s in a.stages] == ["grouped conv", "channel shuffle", "grouped conv"]
    assert len(a.frames) == 6 * 3
    perm = {dst: src for src, dst, w in a.stages[1].edges}
    # independent rule: output j of shuffle(g) reads input (j % g) * (C / g) + j // g
    assert perm == {j: (j % 2) * 3 + j // 2 for j in range(6)}
    assert all(w == 1 for *_, w in a.stages[1].edges)
    # after the shuffle, every second-stage group reads both first-stage groups
    g1 = a.stages[0].groups
    for dst in range(6):
        sources = {perm[src] for src, d, _ in a.stages[2].edges if d == dst}
        assert {g1[s] for s in sources} == {0, 1}
    b = channel_shuffle_animation(6, 3)
    assert {dst: src for src, dst, _ in b.stages[0].edges} == {j: (j % 3) * 2 + j // 3 for j in range(6)}
    assert b.stages[0].values == tuple(b.inputs[(j % 3) * 2 + j // 3] for j in range(6))


def test_depthwise_separable_shows_the_depthwise_step_spatially():
    a = depthwise_separable_animation(3, 5, 3, (5, 4), seed=3)
    by_label = {p.grid.label.split(",")[0]: (i, p) for i, p in enumerate(a.panels)}
    x = torch.tensor([by_label[f"input channel {c}"][1].grid.values for c in range(3)], dtype=torch.float64)
    wd = torch.tensor([by_label[f"filter {c}"][1].grid.values for c in range(3)], dtype=torch.float64)
    bd = torch.tensor([float(by_label[f"filter {c}"][1].grid.label.split("bias ")[1]) for c in range(3)],
                      dtype=torch.float64)
    wp = torch.tensor(by_label["1x1 weights: row o"][1].grid.values, dtype=torch.float64)
    bp = torch.tensor(by_label["biases"][1].grid.values, dtype=torch.float64).flatten()
    # torch's own convs, from the numbers the picture shows
    mid = F.conv2d(x[None], wd[:, None], bd, groups=3)[0]
    out = F.conv2d(mid[None], wp[:, :, None, None], bp)[0]
    assert mid.shape == (3, 3, 2) and len(a.frames) == (3 + 5) * 3 * 2
    for f in a.frames:
        (panel, cell), value = f.cells[0], f.values[0]
        label = a.panels[panel].grid.label
        if label.startswith("depthwise channel"):
            c = int(label.split()[-1])
            assert value == pytest.approx(float(mid[c][cell]))
            # the window is a k x k patch of that channel only: the depthwise step is spatial
            assert {p for p, _ in f.window} == {by_label[f"input channel {c}"][0]}
            assert {rc for _, rc in f.window} == {(cell[0] + i, cell[1] + j) for i in range(3) for j in range(3)}
        else:
            o = int(label.split()[-1])
            assert value == pytest.approx(float(out[o][cell]))
            assert {rc for _, rc in f.window} == {cell} and len(f.window) == 3  # one pixel of every channel
    # the counts include the biases the op adds, and match convolab.arithmetic
    assert "depthwise 3*3*3 + 3 biases = 30, pointwise 5*3 + 5 biases = 20: 50 in all" in a.notes[0]
    assert arithmetic.depthwise_separable_params(3, 5, 3) == 50 and "5*3*3*3 + 5 biases = 140" in a.notes[0]
    with pytest.raises(ValueError, match=r"animate depthwise-separable: in_channels must be an int in \[1, 6\]"):
        depthwise_separable_animation(7, 2)


def test_pointwise():
    p = pointwise_animation(4, 2)
    assert len(p.stages[0].edges) == 8 and len(p.frames) == 2
    x = torch.tensor(p.inputs, dtype=torch.float64)
    w = torch.zeros(2, 4, dtype=torch.float64)
    for src, dst, v in p.stages[0].edges:
        w[dst, src] = v
    ref = F.conv2d(x.view(1, 4, 1, 1), w.view(2, 4, 1, 1), torch.tensor(p.stages[0].bias, dtype=torch.float64))
    assert [f.value for f in p.frames] == pytest.approx(ref.flatten().tolist())


def test_errors_are_clear():
    with pytest.raises(ValueError, match=r"animate conv: input_size must have 1 or 2 spatial dims, got \(2, 2, 2\)"):
        conv_animation((2, 2, 2), 1)
    with pytest.raises(ValueError, match=r"animate conv: output size would be 0 along dim 2"):
        conv_animation((2, 2), 3)
    with pytest.raises(ValueError, match=r"animate conv: stride must be >= 1"):
        conv_animation((5, 5), 3, stride=0)
    with pytest.raises(ValueError, match=r"animate grouped: groups \(3\) must divide in_channels \(4\)"):
        grouped_conv_animation(4, 6, 3)
    with pytest.raises(ValueError, match=r"animate pointwise: in_channels must be an int in \[1, 64\]"):
        pointwise_animation(100, 2)
    with pytest.raises(ValueError, match=r"animate: op must be one of .*did you mean 'grouped'"):
        animate("groupd")
