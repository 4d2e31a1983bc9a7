"""The empirical (gradient-based) effective receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convolab.analysis import effective_receptive_field, receptive_field


def _stack(n: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Conv2d(2 if i else 1, 2, 3, padding=1) for i in range(n)])
    for p in net.parameters():
        with torch.no_grad():
            p.uniform_(0.1, 1.0)  # positive weights: every pixel of the field has a gradient
    return net


def test_support_is_the_theoretical_field():
    net = _stack(3)
    erf = effective_receptive_field(net, torch.randn(2, 1, 15, 15))
    (h, w) = receptive_field(net, (2, 1, 15, 15))
    rows = torch.nonzero(erf.sum(1)).flatten()
    cols = torch.nonzero(erf.sum(0)).flatten()
    centre = 7
    assert (int(rows.min()), int(rows.max())) == (centre - (h.size - 1) // 2, centre + (h.size - 1) // 2)
    assert len(cols) == w.size == 7
    assert erf.sum().item() == pytest.approx(1.0)
    assert erf.argmax().item() == centre * 15 + centre  # strongest at the centre (Luo et al.)


def test_layer_by_name_or_module_and_stride():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    for p in net.parameters():
        with torch.no_grad():
            p.fill_(1.0)
    x = torch.randn(1, 1, 16, 16)
    first = effective_receptive_field(net, x, "0")
    assert int((first > 0).sum()) == 9
    by_module = effective_receptive_field(net, x, net[1])
    assert torch.equal(by_module, effective_receptive_field(net, x, "1"))
    # unit (4, 4) of layer 1 sits at pixel 8 (jump 2): its 5x5 field
    rows = torch.nonzero(by_module.sum(1)).flatten()
    assert (int(rows.min()), int(rows.max())) == (6, 10)


def test_model_state_and_grads_untouched():
    net = _stack(2)
    net.train()
    x = torch.randn(1, 1, 9, 9)
    effective_receptive_field(net, x, "1")
    assert net.training and all(p.grad is None for p in net.parameters())


def test_unit_that_ignores_the_input_gives_zeros():
    class Const(nn.Module):
        def forward(self, x):
            return torch.zeros(1, 1, 4, 4) + 0 * x.sum()

    erf = effective_receptive_field(Const(), torch.randn(1, 1, 4, 4))
    assert erf.shape == (4, 4) and not erf.any()


def test_errors():
    net = _stack(1)
    with pytest.raises(TypeError, match="effective_receptive_field: input must be a floating-point tensor"):
        effective_receptive_field(net, torch.ones(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"effective_receptive_field: input must be \[N, C, \*spatial\]"):
        effective_receptive_field(net, torch.ones(4, 4))
    with pytest.raises(ValueError, match=r"effective_receptive_field: no layer named '00'; did you mean '0'"):
        effective_receptive_field(net, torch.ones(1, 1, 4, 4), "00")
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.spare = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return self.conv(x)

    unused = Unused()
    with pytest.raises(ValueError, match=r"effective_receptive_field: layer 'spare' was not called by the forward pass"):
        effective_receptive_field(unused, torch.ones(1, 1, 4, 4), "spare")
    flat = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"the output of '1' has no spatial dims \(shape \[1, 4\]\)"):
        effective_receptive_field(flat, torch.ones(1, 1, 4, 4), "1")


def test_effective_field_of_a_chosen_unit_is_where_the_unit_looks():
    import torch
    from torch import nn

    from convolab.analysis import effective_receptive_field

    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))  # field 5x5, output 5x5 on 9x9
    heat = effective_receptive_field(net, torch.randn(2, 1, 9, 9), unit=(0, 4))
    rows, cols = torch.nonzero(heat, as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (0, 4, 4, 8)
    import pytest

    with pytest.raises(ValueError, match=r"effective_receptive_field: unit must be 2 indices inside the output \(5, 5\)"):
        effective_receptive_field(net, torch.randn(1, 1, 9, 9), unit=(5, 0))
