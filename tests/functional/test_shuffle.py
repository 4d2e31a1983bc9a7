"""Channel shuffle: torch's op, its inverse, gradients, and the reason it exists (information crossing groups)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convolab.functional as CF
import convolab.nn as cnn


SHAPES = [(2, 6, 5), (2, 12, 3, 4), (1, 8, 2, 3, 2), (3, 6)]


@pytest.mark.parametrize(
    "shape,groups", [(s, g) for s in SHAPES for g in (1, 2, 3, 4, 6) if s[1] % g == 0]
)
def test_matches_torch_and_inverts(shape, groups):
    x = torch.randn(*shape)
    y = CF.channel_shuffle(x, groups)
    c = shape[1]
    # written out: output channel i is input channel (i % g) * (C / g) + i // g
    perm = [(i % groups) * (c // groups) + i // groups for i in range(c)]
    torch.testing.assert_close(y, x[:, perm])
    if x.dim() > 2:  # torch's op needs a spatial dim
        torch.testing.assert_close(y, F.channel_shuffle(x, groups))
    # shuffling with the complementary group count undoes it
    torch.testing.assert_close(CF.channel_shuffle(y, shape[1] // groups), x)


def test_module_is_drop_in_and_gradcheck():
    m, ref = cnn.ChannelShuffle(3), nn.ChannelShuffle(3)
    assert repr(m) == repr(ref)
    x = torch.randn(2, 6, 4, 4)
    torch.testing.assert_close(m(x), ref(x))
    xd = torch.randn(1, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: CF.channel_shuffle(t, 2), (xd,))


def test_batch_zero_and_non_contiguous():
    assert CF.channel_shuffle(torch.randn(0, 6, 3, 3), 2).shape == (0, 6, 3, 3)
    x = torch.randn(2, 5, 4, 6).permute(0, 3, 1, 2)  # [2, 6, 5, 4], not contiguous
    torch.testing.assert_close(CF.channel_shuffle(x, 3), F.channel_shuffle(x.contiguous(), 3))


def _reach(net: nn.Module, channels: int) -> torch.Tensor:
    """reach[o, c] is True when output channel o depends on input channel c (from the Jacobian)."""
    x = torch.randn(1, channels, 3, 3, requires_grad=True)
    y = net(x)
    rows = []
    for o in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[0, o].sum(), x, retain_graph=True)
        rows.append(g[0].abs().sum((1, 2)) > 0)
    return torch.stack(rows)


def test_group_conv_alone_keeps_groups_apart_shuffle_lets_information_cross():
    c, g = 12, 3  # 4 channels per group: after the shuffle every group holds channels of all 3
    stacked = nn.Sequential(cnn.PointwiseConv2d(c, c, groups=g), cnn.PointwiseConv2d(c, c, groups=g))
    shuffled = nn.Sequential(stacked[0], cnn.ChannelShuffle(g), stacked[1])
    alone, crossed = _reach(stacked, c), _reach(shuffled, c)
    block = torch.block_diag(*[torch.ones(c // g, c // g, dtype=torch.bool)] * g)
    # without shuffle every output channel only ever sees its own group's inputs
    assert torch.equal(alone, block)
    # with the shuffle between, each output channel sees channels of every group...
    for o in range(c):
        seen_groups = {int(i) // (c // g) for i in alone.nonzero()[:, 1][alone.nonzero()[:, 0] == o]}
        assert len(seen_groups) == 1
        assert {i // (c // g) for i in crossed[o].nonzero().flatten().tolist()} == set(range(g))
    # ...and the same weights give a different function: the shuffle is not a relabelling
    x = torch.randn(1, c, 3, 3)
    assert not torch.allclose(stacked(x), shuffled(x))


def test_errors():
    with pytest.raises(ValueError, match=r"channel_shuffle: groups \(4\) must divide channels \(6\)"):
        CF.channel_shuffle(torch.randn(1, 6, 2, 2), 4)
    with pytest.raises(ValueError, match=r"channel_shuffle: groups must be an int >= 1, got 0"):
        CF.channel_shuffle(torch.randn(1, 6, 2, 2), 0)
    with pytest.raises(ValueError, match=r"channel_shuffle: expected input \[N, C, \*spatial\], got shape \[6\]"):
        CF.channel_shuffle(torch.randn(6), 2)
    with pytest.raises(ValueError, match=r"ChannelShuffle: groups must be an int >= 1, got 2.0"):
        cnn.ChannelShuffle(2.0)
