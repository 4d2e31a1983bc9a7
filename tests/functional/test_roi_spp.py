"""roi_spatial_pyramid_pool / RoISpatialPyramidPool (SPP-net's detector) against a slow loop,
gradients, the box forms, the modes, errors."""

from __future__ import annotations

import pytest
import torch

from convolab import arithmetic
from convolab.functional import _native, roi_pool, roi_spatial_pyramid_pool
from convolab.nn import RoISpatialPyramidPool
from tests._reference import roi_spp_reference


def _boxes(k=12, batch=2, seed=0, dtype=torch.float64):
    """Boxes in image pixels over a 9x11 map at scale 0.5: some partly or wholly outside, degenerate ones."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * 26 - 4
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * 18
    boxes = torch.cat([torch.randint(0, batch, (k, 1), generator=g).to(dtype), xy, xy + wh], 1)
    boxes[0, 3] = boxes[0, 1]  # zero width
    boxes[1, 3:] = boxes[1, 1:3]  # a point
    boxes[2, 1:] = torch.tensor([40.0, 40.0, 50.0, 60.0], dtype=dtype)  # wholly outside: zeros
    return boxes


@pytest.fixture
def feature():
    return torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("levels", [(1, 2, 4), (3,), [(1, 1), (2, 3)], (6, 1)])
def test_matches_the_loop_reference(feature, mode, levels):
    boxes = _boxes()
    out = roi_spatial_pyramid_pool(feature, boxes, levels, 0.5, mode)
    torch.testing.assert_close(out, roi_spp_reference(feature, boxes, levels, 0.5, mode))
    assert out.shape == (12, arithmetic.spp_features(3, [(n, n) if isinstance(n, int) else n for n in levels]))
    assert out[2].abs().max() == 0  # the box outside the map


def test_one_level_is_roi_pool_flattened_and_the_layout_is_channel_major(feature):
    boxes = _boxes(seed=2)
    torch.testing.assert_close(roi_spatial_pyramid_pool(feature, boxes, [7], 0.5), roi_pool(feature, boxes, 7, 0.5).flatten(1))
    pyramid = roi_spatial_pyramid_pool(feature, boxes, (1, 2), 0.5)
    torch.testing.assert_close(pyramid[:, 3:], roi_pool(feature, boxes, 2, 0.5).flatten(1))  # after C*1 numbers


def test_box_forms_any_box_size_gives_one_length_and_the_torch_path_agrees(feature):
    boxes = _boxes(k=30, seed=3)
    per_image = [boxes[boxes[:, 0] == b, 1:] for b in range(2)]
    stacked = torch.cat([torch.cat([torch.full((len(p), 1), float(b), dtype=p.dtype), p], 1) for b, p in enumerate(per_image)])
    for mode in ("max", "avg"):
        a = roi_spatial_pyramid_pool(feature, per_image, (1, 2, 3), 0.5, mode)
        torch.testing.assert_close(a, roi_spatial_pyramid_pool(feature, stacked, (1, 2, 3), 0.5, mode))
        assert a.shape == (30, 3 * 14)
        with _native.disabled():
            torch.testing.assert_close(roi_spatial_pyramid_pool(feature, stacked, (1, 2, 3), 0.5, mode), a)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_gradcheck(feature, mode):
    x = feature[:, :2, :7, :8].clone().requires_grad_()
    boxes = _boxes(k=6, seed=4)
    assert torch.autograd.gradcheck(lambda t: roi_spatial_pyramid_pool(t, boxes, (1, 2), 0.7, mode), (x,))


def test_avg_gradient_spreads_evenly_over_each_bin():
    x = torch.zeros(1, 1, 6, 6, requires_grad=True)
    roi_spatial_pyramid_pool(x, torch.tensor([[0, 0.0, 0.0, 5.0, 3.0]]), [(2, 1)], mode="avg").sum().backward()
    expected = torch.zeros(6, 6)
    expected[:4] = 1 / 12  # two bins of 2x6 pixels, each pixel 1/12 of its bin
    torch.testing.assert_close(x.grad[0, 0], expected)


def test_batch_0_channels_last_low_precision_and_forward_ad(feature):
    assert roi_spatial_pyramid_pool(feature, torch.zeros(0, 5, dtype=feature.dtype), (1, 2)).shape == (0, 15)
    boxes = _boxes(seed=5)
    for mode in ("max", "avg"):
        dense = roi_spatial_pyramid_pool(feature, boxes, (1, 2), 0.5, mode)
        torch.testing.assert_close(roi_spatial_pyramid_pool(feature.contiguous(memory_format=torch.channels_last), boxes, (1, 2), 0.5, mode), dense)
        low = roi_spatial_pyramid_pool(feature.bfloat16(), boxes, (1, 2), 0.5, mode)
        assert low.dtype == torch.bfloat16
        torch.testing.assert_close(low.double(), dense, rtol=2e-2, atol=2e-2)
        tangent = torch.randn_like(feature)
        _, jvp = torch.func.jvp(lambda t: roi_spatial_pyramid_pool(t, boxes, (1, 2), 0.5, mode), (feature,), (tangent,))
        torch.testing.assert_close(jvp, roi_spatial_pyramid_pool(tangent, boxes, (1, 2), 0.5, mode) if mode == "avg" else jvp)


def test_module(feature):
    m = RoISpatialPyramidPool([1, (2, 3)], spatial_scale=0.5, mode="avg")
    boxes = _boxes(seed=6)
    torch.testing.assert_close(m(feature, boxes), roi_spatial_pyramid_pool(feature, boxes, [1, (2, 3)], 0.5, "avg"))
    assert m.output_features(3) == m(feature, boxes).shape[1] == 21
    assert repr(m) == "RoISpatialPyramidPool(levels=(1, (2, 3)), spatial_scale=0.5, mode='avg')"
    scripted = torch.jit.script(RoISpatialPyramidPool((1, 2), 0.5))
    torch.testing.assert_close(scripted(feature, boxes), roi_spatial_pyramid_pool(feature, boxes, (1, 2), 0.5))


def test_bad_arguments(feature):
    op = "roi_spatial_pyramid_pool"
    good = torch.tensor([[0, 1.0, 1.0, 4.0, 4.0]], dtype=feature.dtype)
    with pytest.raises(ValueError, match=rf"{op}: levels must be a non-empty sequence of bin counts \(int or \(n_h, n_w\)\), got \(\)"):
        roi_spatial_pyramid_pool(feature, good, ())
    with pytest.raises(ValueError, match=rf"{op}: levels must be a non-empty sequence of bin counts .*got 4"):
        roi_spatial_pyramid_pool(feature, good, 4)
    with pytest.raises(ValueError, match=rf"{op}: levels must be >= 1 in every dim, got 0"):
        roi_spatial_pyramid_pool(feature, good, (1, 0))
    with pytest.raises(ValueError, match=rf"{op}: mode must be one of 'max', 'avg', got 'mean'"):
        roi_spatial_pyramid_pool(feature, good, (1, 2), mode="mean")
    with pytest.raises(TypeError, match=rf"{op}: mode must be a str, one of 'max', 'avg', got None"):
        roi_spatial_pyramid_pool(feature, good, (1, 2), mode=None)
    with pytest.raises(ValueError, match=rf"{op}: box 0 has x2 \(0\) < x1 \(3\)"):
        roi_spatial_pyramid_pool(feature, torch.tensor([[0, 3.0, 1.0, 0.0, 4.0]]), (1, 2))
    with pytest.raises(ValueError, match=rf"{op}: spatial_scale must be a finite number > 0, got 0"):
        roi_spatial_pyramid_pool(feature, good, (1, 2), 0)
    with pytest.raises(ValueError, match=rf"{op}: expected input of rank 4"):
        roi_spatial_pyramid_pool(feature[0], good, (1, 2))
    with pytest.raises(ValueError, match=r"RoISpatialPyramidPool: mode must be one of 'max', 'avg', got 'maxx'; did you mean 'max'"):
        RoISpatialPyramidPool(mode="maxx")
    with pytest.raises(ValueError, match=r"RoISpatialPyramidPool: levels must be a non-empty sequence"):
        RoISpatialPyramidPool(levels=[])
