"""convolab.nn conv modules are drop-in for torch.nn: init, state_dict, outputs, repr, errors."""

from __future__ import annotations

import pytest
import torch

import convolab.nn as cnn

PAIRS = [
    (cnn.Conv1d, torch.nn.Conv1d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2), (2, 4, 11)),
    (cnn.Conv2d, torch.nn.Conv2d, dict(in_channels=3, out_channels=8, kernel_size=(3, 5), dilation=(2, 1), padding="same"), (2, 3, 9, 10)),
    (cnn.Conv3d, torch.nn.Conv3d, dict(in_channels=2, out_channels=4, kernel_size=2, bias=False, padding_mode="circular", padding=1), (1, 2, 4, 5, 3)),
    (cnn.ConvTranspose1d, torch.nn.ConvTranspose1d, dict(in_channels=4, out_channels=2, kernel_size=4, stride=2, padding=1), (2, 4, 7)),
    (cnn.ConvTranspose2d, torch.nn.ConvTranspose2d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2, dilation=1), (2, 4, 5, 6)),
    (cnn.ConvTranspose3d, torch.nn.ConvTranspose3d, dict(in_channels=2, out_channels=3, kernel_size=(2, 3, 2), stride=(1, 2, 2)), (1, 2, 3, 4, 3)),
]


@pytest.mark.parametrize("ours,theirs,kwargs,shape", PAIRS, ids=[p[0].__name__ for p in PAIRS])
@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
def test_drop_in_for_torch(ours, theirs, kwargs, shape, algorithm):
    torch.manual_seed(3)
    a = ours(**kwargs, algorithm=algorithm)
    torch.manual_seed(3)
    b = theirs(**kwargs)
    # same initialisation for the same seed, same keys and shapes
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in b.state_dict().items():
        assert torch.equal(a.state_dict()[key], value), key
    x = torch.randn(*shape)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)
    # torch weights load into ours, and gradients agree
    b.weight.data.normal_()
    a.load_state_dict(b.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a(xa).square().sum().backward()
    b(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=1e-4, atol=1e-4)


def test_transposed_output_size_argument():
    torch.manual_seed(0)
    a = cnn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    torch.manual_seed(0)
    b = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(a(x, output_size=[10, 9]), b(x, output_size=[10, 9]))


def test_extras_beyond_torch():
    x = torch.randn(1, 3, 10, 11)
    assert cnn.Conv2d(3, 4, 3, stride=2, padding="same")(x).shape == (1, 4, 5, 6)
    assert cnn.Conv2d(3, 4, 3, padding=((1, 0), (2, 2)))(x).shape == (1, 4, 9, 13)
    m = cnn.Conv2d(3, 4, 3, flip=True, bias=False)
    torch.testing.assert_close(m(x), torch.nn.functional.conv2d(x, m.weight.flip(2, 3)))


def test_extra_repr_shows_only_non_defaults():
    assert repr(cnn.Conv2d(3, 8, 3)) == "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(torch.nn.Conv2d(3, 8, 3)) == repr(cnn.Conv2d(3, 8, 3))  # same text as torch
    r = repr(cnn.Conv2d(3, 8, 3, stride=2, padding="same", groups=1, bias=False, algorithm="im2col", flip=True))
    assert r == "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding='same', flip=True, algorithm='im2col', bias=False)"
    assert "padding=((1, 0), (0, 1))" in repr(cnn.ConvTranspose2d(3, 4, 3, padding=((1, 0), (0, 1))))


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: cnn.Conv2d(6, 4, 3, groups=4), r"Conv2d: groups \(4\) must divide in_channels \(6\)"),
        (lambda: cnn.Conv2d(0, 4, 3), r"Conv2d: in_channels must be an int >= 1, got 0"),
        (lambda: cnn.Conv1d(2, 4, 0), r"Conv1d: kernel_size must be >= 1 in every dim, got 0"),
        (lambda: cnn.Conv3d(2, 4, (3, 3)), r"Conv3d: kernel_size must be an int or a sequence of 3 ints"),
        (lambda: cnn.Conv2d(2, 4, 3, padding_mode="zero"), r"Conv2d: padding_mode must be one of .*; did you mean 'zeros'\?"),
        (lambda: cnn.Conv2d(2, 4, 3, algorithm="im2cols"), r"Conv2d: algorithm must be one of .*; did you mean 'im2col'\?"),
        (lambda: cnn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=2), r"ConvTranspose2d: output_padding \(\(2, 2\)\) must be smaller"),
        (lambda: cnn.ConvTranspose2d(2, 4, 3, padding="same"), r"ConvTranspose2d: padding='same' is not defined"),
        (lambda: cnn.ConvTranspose2d(2, 4, 3, padding_mode="reflect"), r"ConvTranspose2d: padding_mode must be one of 'zeros'"),
    ],
)
def test_construction_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_call_time_shape_error_names_the_module():
    with pytest.raises(ValueError, match=r"Conv2d: expected input with weight.shape\[1\] \* groups = 3 \* 1 = 3 channels, got 4"):
        cnn.Conv2d(3, 8, 3)(torch.randn(1, 4, 8, 8))
