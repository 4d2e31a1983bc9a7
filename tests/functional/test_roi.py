"""roi_align / roi_pool against loop references of the published definitions, gradients, edge cases, errors."""

from __future__ import annotations

import pytest
import torch

from convolab.functional import roi_align, roi_pool
from tests._reference import roi_align_reference, roi_pool_reference


def _boxes(k=14, batch=2, seed=0, dtype=torch.float64):
    """Random boxes in a 9x11 map at scale 1, some partly outside, plus degenerate ones."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * 14 - 2
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * 9
    idx = torch.randint(0, batch, (k, 1), generator=g).to(dtype)
    boxes = torch.cat([idx, xy, xy + wh], 1)
    boxes[0, 3] = boxes[0, 1]  # zero width
    boxes[1, 3:] = boxes[1, 1:3]  # a point
    boxes[2, 1:] = torch.tensor([20.0, 20.0, 25.0, 30.0], dtype=dtype)  # fully outside
    return boxes


@pytest.fixture
def feature():
    return torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("scale,size", [(1.0, (3, 4)), (0.5, (2, 2)), (1.3, 5)])
def test_roi_align_matches_loop_reference(feature, sampling_ratio, aligned, scale, size):
    boxes = _boxes()
    out = roi_align(feature, boxes, size, scale, sampling_ratio, aligned)
    ref = roi_align_reference(feature, boxes, size if isinstance(size, tuple) else (size, size), scale, sampling_ratio, aligned)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("scale,size", [(1.0, (3, 4)), (0.5, (2, 2)), (0.7, 5)])
def test_roi_pool_matches_loop_reference_and_routes_gradient_to_argmax(feature, scale, size):
    boxes = _boxes(seed=2)
    size2 = size if isinstance(size, tuple) else (size, size)
    x = feature.clone().requires_grad_()
    out = roi_pool(x, boxes, size, scale)
    ref, arg = roi_pool_reference(feature, boxes, size2, scale)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    out.backward(g)
    expected = torch.zeros(2, 3, 9 * 11, dtype=x.dtype)
    for k, c, i, j in zip(*torch.nonzero(arg >= 0, as_tuple=True)):
        expected[int(boxes[k, 0]), c, arg[k, c, i, j]] += g[k, c, i, j]
    torch.testing.assert_close(x.grad, expected.view_as(x))


def test_roi_pool_ties_go_to_the_first_maximum_in_row_major_order():
    x = torch.zeros(1, 1, 6, 6, requires_grad=True)  # all equal: every bin is a tie
    out = roi_pool(x, torch.tensor([[0, 0.0, 0.0, 5.0, 5.0]]), 2)
    out.sum().backward()
    _, arg = roi_pool_reference(x.detach(), torch.tensor([[0, 0.0, 0.0, 5.0, 5.0]]), (2, 2))
    assert arg.flatten().tolist() == [0, 3, 18, 21]
    assert x.grad.flatten().nonzero().flatten().tolist() == [0, 3, 18, 21]


def test_many_boxes_per_image_and_list_form(feature):
    boxes = _boxes(k=60, seed=3)
    per_image = [boxes[boxes[:, 0] == b, 1:] for b in range(2)]
    stacked = torch.cat([torch.cat([torch.full((len(p), 1), float(b), dtype=p.dtype), p], 1) for b, p in enumerate(per_image)])
    torch.testing.assert_close(roi_align(feature, per_image, 3, 0.8, 2), roi_align(feature, stacked, 3, 0.8, 2))
    torch.testing.assert_close(roi_pool(feature, per_image, 3), roi_pool(feature, stacked, 3))
    torch.testing.assert_close(roi_align(feature, stacked, 3, 0.8, 2), roi_align_reference(feature, stacked, (3, 3), 0.8, 2))


@pytest.mark.parametrize("aligned,sampling_ratio", [(False, -1), (True, -1), (True, 2)])
def test_roi_align_gradcheck(feature, aligned, sampling_ratio):
    boxes = _boxes(k=6, seed=4)
    x = feature[:, :2, :6, :7].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: roi_align(t, boxes, (2, 3), 0.6, sampling_ratio, aligned), (x,))


def test_roi_pool_gradcheck_away_from_ties(feature):
    x = feature[:, :2, :6, :7].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, _boxes(k=6, seed=5), (2, 3), 0.6), (x,))


def test_empty_box_list_batch_and_non_contiguous(feature):
    for op in (roi_align, roi_pool):
        x = feature.clone().requires_grad_()
        out = op(x, torch.zeros(0, 5, dtype=x.dtype), (2, 3))
        assert out.shape == (0, 3, 2, 3)
        out.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))
        assert op(feature, [torch.zeros(0, 4), torch.zeros(0, 4)], 2).shape == (0, 3, 2, 2)
        boxes = _boxes()
        dense = op(feature, boxes, 3)
        torch.testing.assert_close(op(feature.contiguous(memory_format=torch.channels_last), boxes, 3), dense)
        torch.testing.assert_close(op(feature.transpose(2, 3).contiguous().transpose(2, 3), boxes, 3), dense)
    # float32 input with float64 boxes works (boxes follow the input's dtype)
    assert roi_align(feature.float(), _boxes(), 2).dtype == torch.float32


@pytest.mark.parametrize("op", [roi_align, roi_pool])
def test_bad_input_messages(op, feature):
    name = op.__name__
    good = torch.tensor([[0, 1.0, 1.0, 4.0, 4.0]], dtype=feature.dtype)
    with pytest.raises(ValueError, match=rf"{name}: boxes must be a Tensor\[K, 5\] .* got a tensor of shape \[1, 4\]"):
        op(feature, good[:, 1:], 2)
    with pytest.raises(ValueError, match=rf"{name}: boxes must be .*got boxes\[1\] of shape \[2, 5\]"):
        op(feature, [good[:, 1:], torch.zeros(2, 5)], 2)
    with pytest.raises(ValueError, match=rf"{name}: box 0 has batch index 2; it must be an integer in \[0, 2\)"):
        op(feature, torch.tensor([[2, 1.0, 1.0, 4.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: box 0 has batch index 0.5; it must be an integer"):
        op(feature, torch.tensor([[0.5, 1.0, 1.0, 4.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: box 1 has x2 \(1\) < x1 \(5\)"):
        op(feature, torch.tensor([[0, 1.0, 1.0, 4.0, 4.0], [1, 5.0, 1.0, 1.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: box 0 has y2 \(0\) < y1 \(3\)"):
        op(feature, torch.tensor([[0, 1.0, 3.0, 4.0, 0.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: box 0 has non-finite coordinates"):
        op(feature, torch.tensor([[0, 1.0, float("nan"), 4.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: got 3 box tensors for a batch of 2 images"):
        op(feature, [good[:, 1:]] * 3, 2)
    with pytest.raises(ValueError, match=rf"{name}: expected input of rank 4 \(\[N, C, H, W\]\), got shape \[3, 9, 11\]"):
        op(feature[0], good, 2)
    with pytest.raises(ValueError, match=rf"{name}: output_size must be >= 1 in every dim, got \(0, 2\)"):
        op(feature, good, (0, 2))
    with pytest.raises(ValueError, match=rf"{name}: spatial_scale must be a finite number > 0, got -1"):
        op(feature, good, 2, -1)
    with pytest.raises(ValueError, match=rf"{name}: spatial_scale must be a finite number > 0, got inf"):
        op(feature, good, 2, float("inf"))
    with pytest.raises(TypeError, match=rf"{name}: boxes must be .*got dict"):
        op(feature, {"a": good}, 2)
