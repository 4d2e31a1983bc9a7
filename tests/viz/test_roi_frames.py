"""Deformable-conv and ROI frames against slow loops written from the papers' definitions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convolab.viz.frames import DATA
from convolab.viz.frames import deform_conv_animation, roi_align_animation, roi_pool_animation
from tests._reference import _bilinear_roi, _interp_zero, _round_half_away, roi_align_reference, roi_pool_reference


def _data(a, shape):
    vals = [v for row, kinds in zip(a.input.values, a.input.kinds) for v, k in zip(row, kinds) if k == DATA]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape)


def test_deform_zero_offsets_is_the_regular_conv():
    out = (5, 5)
    a = deform_conv_animation((5, 5), 3, padding=1, offset=torch.zeros(18, *out), seed=4)
    x = _data(a, (1, 1, 5, 5))
    w = torch.tensor(a.kernel.values, dtype=torch.float64).view(1, 1, 3, 3)
    ref = F.conv2d(x, w, torch.tensor([a.bias], dtype=torch.float64), padding=1)[0, 0]
    assert [f.values[0] for f in a.frames] == pytest.approx(ref.flatten().tolist())
    # with zero offsets the points are the regular taps (cell centres); those on data cells are read
    for f in a.frames:
        assert all(r == int(r) and c == int(c) for r, c in f.points)
        on_data = {(int(r), int(c)) for r, c in f.points if a.input.kind((int(r), int(c))) == DATA}
        assert set(f.window) == on_data


@pytest.mark.parametrize("size,k,s,p", [((5, 5), 3, 1, 1), ((6, 5), 2, 2, 0), ((7,), 3, 2, 1)])
def test_deform_frames_match_the_bilinear_definition(size, k, s, p):
    a = deform_conv_animation(size, k, s, p, max_offset=1.5, seed=7)
    nd = len(size)
    x = _data(a, size if nd == 2 else (1, *size))
    pad = (0, p) if nd == 1 else (p, p)
    taps = [v for row in a.kernel.values for v in row]
    for f in a.frames:
        # the points are on the padded grid: move them back to input coordinates
        samples = [_interp_zero(x.tolist(), tuple(x.shape), [r - pad[0], c - pad[1]]) for r, c in f.points]
        assert sum(t * v for t, v in zip(taps, samples)) + a.bias == pytest.approx(f.values[0], abs=1e-9)
        # the pixels the op reads (measured) are the bilinear corners of the points
        corners = set()
        for r, c in f.points:
            rr, cc = r - pad[0], c - pad[1]
            for dr in (0, 1):
                for dc in (0, 1):
                    pr, pc = math.floor(rr) + dr, math.floor(cc) + dc
                    weight = (1 - abs(rr - pr)) * (1 - abs(cc - pc))
                    if weight > 1e-12 and 0 <= pr < x.shape[0] and 0 <= pc < x.shape[1]:
                        corners.add((pr + pad[0], pc + pad[1]))
        assert set(f.window) == corners


@pytest.mark.parametrize("size,box,out,scale", [
    ((8, 8), (1.0, 1.0, 6.0, 5.0), 2, 1.0),
    ((7, 9), (3.0, 2.0, 17.0, 11.0), (3, 2), 0.5),
    ((6, 6), (4.0, 4.0, 9.0, 9.0), 2, 1.0),   # partly outside the map
])
def test_roi_pool_matches_the_fast_rcnn_loop(size, box, out, scale):
    a = roi_pool_animation(size, box, out, scale, seed=2)
    x = torch.tensor(a.input.values)
    oh, ow = (out, out) if isinstance(out, int) else out
    ref, _ = roi_pool_reference(x[None, None], torch.tensor([[0.0, *box]]), (oh, ow), scale)
    assert [f.values[0] for f in a.frames] == ref.flatten().tolist()
    x1, y1, x2, y2 = (_round_half_away(v * scale) for v in box)
    rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
    assert len(a.frames) == oh * ow
    for f in a.frames:
        p, q = f.cells[0]
        rows = range(max(y1 + math.floor(p * rh / oh), 0), min(y1 + math.ceil((p + 1) * rh / oh), size[0]))
        cols = range(max(x1 + math.floor(q * rw / ow), 0), min(x1 + math.ceil((q + 1) * rw / ow), size[1]))
        cells = {(r, c) for r in rows for c in cols}
        assert set(f.window) == cells
        expect = max((float(x[r, c]) for r, c in cells), default=0.0)
        assert f.values[0] == expect
        if cells:
            (m,) = f.marked
            assert float(x[m]) == expect


def _align_weights(size, y, xx):
    """The reference bilinear rule's weight of every pixel for one sample (probed with one-hot maps)."""
    h, w = size
    weights = {}
    for r in range(h):
        for c in range(w):
            one_hot = [[1.0 if (i, j) == (r, c) else 0.0 for j in range(w)] for i in range(h)]
            value = _bilinear_roi(one_hot, h, w, y, xx)
            if value:
                weights[(r, c)] = value
    return weights


@pytest.mark.parametrize("size,box,out,scale,ratio,aligned", [
    ((8, 8), (1.2, 0.7, 6.1, 5.4), 2, 1.0, 2, False),
    ((8, 8), (1.2, 0.7, 6.1, 5.4), 2, 1.0, 2, True),
    ((6, 7), (0.0, 0.0, 20.0, 14.0), (3, 2), 0.25, 1, False),
    ((5, 5), (3.0, 3.0, 7.0, 6.5), 2, 1.0, 3, True),  # partly outside
])
def test_roi_align_matches_the_mask_rcnn_loop(size, box, out, scale, ratio, aligned):
    a = roi_align_animation(size, box, out, scale, ratio, aligned, seed=3)
    x = torch.tensor(a.input.values, dtype=torch.float64)
    oh, ow = (out, out) if isinstance(out, int) else out
    ref = roi_align_reference(x[None, None], torch.tensor([[0.0, *box]], dtype=torch.float64), (oh, ow), scale,
                              ratio, aligned)
    assert [f.values[0] for f in a.frames] == pytest.approx(ref.flatten().tolist())
    shift = 0.5 if aligned else 0.0
    bx1, by1, bx2, by2 = (v * scale - shift for v in box)
    rh, rw = by2 - by1, bx2 - bx1
    if not aligned:
        rh, rw = max(rh, 1.0), max(rw, 1.0)
    for f in a.frames:
        p, q = f.cells[0]
        weights: dict = {}
        points = []
        for i in range(ratio):
            for j in range(ratio):
                yy = by1 + p * rh / oh + (i + 0.5) * rh / oh / ratio
                xx = bx1 + q * rw / ow + (j + 0.5) * rw / ow / ratio
                points.append((yy, xx))
                for cell, wt in _align_weights(size, yy, xx).items():
                    weights[cell] = weights.get(cell, 0.0) + wt / ratio ** 2
        assert [v for pt in f.points for v in pt] == pytest.approx([v for pt in points for v in pt])
        expect = sum(wt * float(x[c]) for c, wt in weights.items())
        assert f.values[0] == pytest.approx(expect, abs=1e-9)
        assert set(f.window) == {c for c, wt in weights.items() if wt > 1e-12}


def test_roi_and_deform_errors():
    with pytest.raises(ValueError, match=r"animate roi_pool: box must be \(x1, y1, x2, y2\), got \(1, 2\)"):
        roi_pool_animation((4, 4), (1, 2))
    with pytest.raises(ValueError, match=r"animate roi_align: sampling_ratio must be an int >= 1"):
        roi_align_animation((4, 4), (0, 0, 2, 2), 2, sampling_ratio=0)
    with pytest.raises(ValueError, match=r"animate roi_pool: input_size must have at most 576 pixels"):
        roi_pool_animation((30, 30))
    with pytest.raises(ValueError, match=r"animate roi_align: spatial_scale must be a finite number > 0, got 0"):
        roi_align_animation((4, 4), (0, 0, 2, 2), 2, 0)
    with pytest.raises(ValueError, match=r"animate deform_conv: offset must have shape \[18, 5, 5\]"):
        deform_conv_animation((5, 5), 3, offset=torch.zeros(9, 3, 3))
    with pytest.raises(ValueError, match=r"animate deform_conv: max_offset must be a number in \[0, 3\]"):
        deform_conv_animation((5, 5), 3, max_offset=5)
