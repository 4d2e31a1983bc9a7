"""The one registry of subjects that every toolchain test runs: each ``convolab.nn`` module (in
the configurations that take different code paths) and each registered model.

A new module or model is covered by every tool test by adding one line here; the test
``test_every_module_and_model_is_a_subject`` fails until it is. ``refuses`` names the tools
a subject cannot go through, with the start of the clear error it gives instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

import pytest
import torch
from torch import Tensor, nn

import convolab.nn as cnn
from convolab.models import create_model, list_models

TOOLS = ("compile", "export", "onnx", "onnx_ts", "jit_trace", "jit_script", "fx", "autocast", "vmap")


@dataclass(frozen=True)
class Subject:
    """A module to put through the tools, and how to make inputs for it.

    Attributes:
        name: the test id (a ``convolab.nn`` class name, optionally ``-configuration``).
        make: builds the module (in eval mode, the same weights every time).
        inputs: ``inputs(n)`` gives the forward's arguments for a batch of ``n``.
        batched: per argument, whether dim 0 is the batch (the dynamic dim of export, the
            dim other batch sizes change), or "own" for a dynamic dim of its own that is no
            batch (ROI boxes: their count changes, and vmap does not map over them).
        refuses: tool -> regex of the clear error that tool gets instead of working.
        slow: big models, run by ``pytest -m slow``.
        atol: tolerance for comparisons with eager, relative to max |y|.
    """

    name: str
    make: Callable[[], nn.Module]
    inputs: Callable[[int], tuple[Tensor, ...]]
    batched: tuple[Union[bool, str], ...] = (True,)
    refuses: dict[str, str] = field(default_factory=dict)
    slow: bool = False
    atol: float = 1e-5

    @property
    def param(self):  # type: ignore[no-untyped-def]
        marks = [pytest.mark.slow] if self.slow else []
        return pytest.param(self, id=self.name, marks=marks)


def _m(name: str, build: Callable[[], nn.Module], *shape: int, **kwargs) -> Subject:  # type: ignore[no-untyped-def]
    """A subject with one input of ``shape`` (its first entry, the batch, is replaced by ``n``)."""
    return Subject(name, lambda: build().eval(), lambda n: (torch.randn(n, *shape[1:]),), **kwargs)


_SCRIPT_INDICES = {"jit_script": r"torch.jit.script cannot compile this module: return_indices=True"}
_SCRIPT_CEIL = {"jit_script": r"torch.jit.script cannot compile this module: ceil_mode=True"}
_SCRIPT_POOL = {"jit_script": r"Pool: torch.jit.script cannot compile this module"}
_CALLABLE_POOL = {**_SCRIPT_POOL, "fx": r"Pool: torch.fx.symbolic_trace cannot record a Python callable reduction"}


MODULE_SUBJECTS: list[Subject] = [
    # convolutions: torch's padding, per-side pairs with a padding mode and flip, 'same' with a stride
    _m("Conv1d", lambda: cnn.Conv1d(3, 4, 5, padding=2), 2, 3, 16),
    _m("Conv1d-same-s2-depthwise-large", lambda: cnn.Conv1d(4, 4, 33, stride=2, padding="same", groups=4), 2, 4, 64),
    _m("Conv2d", lambda: cnn.Conv2d(3, 4, 3, padding=1), 2, 3, 8, 9),
    _m("Conv2d-same-s2", lambda: cnn.Conv2d(3, 4, 3, stride=2, padding="same"), 2, 3, 10, 11),
    _m("Conv2d-pairs-reflect-flip", lambda: cnn.Conv2d(4, 4, 3, padding=((1, 0), (2, 1)), padding_mode="reflect",
                                                       flip=True, groups=2, dilation=(1, 2)), 2, 4, 9, 10),
    _m("Conv2d-depthwise-13x13", lambda: cnn.Conv2d(8, 8, 13, padding=6, groups=8), 2, 8, 20, 20),
    _m("Conv3d", lambda: cnn.Conv3d(2, 3, 3, padding=(1, 0, 1), stride=(1, 2, 1)), 2, 2, 5, 6, 7),
    _m("ConvTranspose1d", lambda: cnn.ConvTranspose1d(3, 2, 4, stride=2, padding=1), 2, 3, 7),
    _m("ConvTranspose2d", lambda: cnn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, output_padding=1), 2, 4, 5, 6),
    _m("ConvTranspose2d-pairs", lambda: cnn.ConvTranspose2d(4, 3, 3, stride=2, padding=((2, 0), (1, 1)), groups=1),
       2, 4, 5, 6),
    _m("ConvTranspose3d", lambda: cnn.ConvTranspose3d(2, 2, 3, stride=(2, 1, 1), dilation=(1, 2, 1)), 2, 2, 3, 4, 5),
    # pooling
    _m("MaxPool1d", lambda: cnn.MaxPool1d(3, 2, 1), 2, 3, 11),
    _m("MaxPool2d", lambda: cnn.MaxPool2d(3, 2, 1, ceil_mode=True), 2, 3, 10, 11),
    _m("MaxPool2d-same-s2", lambda: cnn.MaxPool2d(3, 2, "same"), 2, 3, 10, 11),
    _m("MaxPool2d-pairs-dilated", lambda: cnn.MaxPool2d(3, 1, ((2, 0), (1, 2)), dilation=2), 2, 3, 8, 9),
    _m("MaxPool2d-indices", lambda: cnn.MaxPool2d(2, return_indices=True), 2, 3, 8, 8, refuses=_SCRIPT_INDICES),
    _m("MaxPool3d", lambda: cnn.MaxPool3d(2), 2, 2, 4, 6, 6),
    _m("AvgPool1d", lambda: cnn.AvgPool1d(3, 2, 1, divisor_override=2), 2, 3, 11),
    _m("AvgPool2d", lambda: cnn.AvgPool2d(3, 2, 1, count_include_pad=False), 2, 3, 10, 11),
    _m("AvgPool2d-pairs-no-pad-count", lambda: cnn.AvgPool2d(3, 2, ((0, 1), (1, 1)), count_include_pad=False),
       2, 3, 10, 11),
    _m("AvgPool2d-same-ceil", lambda: cnn.AvgPool2d(3, 2, "same", ceil_mode=True), 2, 3, 10, 11,
       refuses=_SCRIPT_CEIL),
    _m("AvgPool3d", lambda: cnn.AvgPool3d(2, padding=1), 2, 2, 4, 5, 6),
    _m("LPPool1d", lambda: cnn.LPPool1d(2, 3, 2), 2, 3, 11),
    _m("LPPool2d", lambda: cnn.LPPool2d(2, 3, 2), 2, 3, 8, 9),
    _m("LPPool3d", lambda: cnn.LPPool3d(float("inf"), 2), 2, 2, 4, 4, 4),
    _m("AdaptiveMaxPool1d", lambda: cnn.AdaptiveMaxPool1d(4), 2, 3, 11),
    _m("AdaptiveMaxPool2d", lambda: cnn.AdaptiveMaxPool2d((3, None)), 2, 3, 10, 11),
    _m("AdaptiveMaxPool3d", lambda: cnn.AdaptiveMaxPool3d(2), 2, 2, 5, 5, 5),
    _m("AdaptiveAvgPool1d", lambda: cnn.AdaptiveAvgPool1d(4), 2, 3, 11),
    _m("AdaptiveAvgPool2d", lambda: cnn.AdaptiveAvgPool2d((1, 3)), 2, 3, 10, 11),
    _m("AdaptiveAvgPool3d", lambda: cnn.AdaptiveAvgPool3d((None, 2, 2)), 2, 2, 5, 5, 5),
    _m("GlobalMaxPool", lambda: cnn.GlobalMaxPool(), 2, 3, 5, 6),
    _m("GlobalAvgPool", lambda: cnn.GlobalAvgPool(keepdim=True), 2, 3, 5, 6),
    _m("Pool-logsumexp", lambda: cnn.Pool(2, reduce=torch.logsumexp), 2, 3, 6, 6, refuses=_CALLABLE_POOL),
    _m("Pool-max-same", lambda: cnn.Pool((3, 3), 2, "same", reduce="max"), 2, 3, 7, 8, refuses=_SCRIPT_POOL),
    _m("SpatialPyramidPool", lambda: cnn.SpatialPyramidPool((1, 2, 4)), 2, 8, 9, 10),
    _m("SpatialPyramidPool-paper-avg", lambda: cnn.SpatialPyramidPool((1, 2, 3), mode="avg", bins="paper"), 2, 8, 9, 10),
    # separable and 1x1 convolutions
    _m("DepthwiseSeparableConv1d", lambda: cnn.DepthwiseSeparableConv1d(3, 5, 3, padding=1), 2, 3, 12),
    _m("DepthwiseSeparableConv2d", lambda: cnn.DepthwiseSeparableConv2d(4, 6, 3, stride=2, padding="same",
                                                                       norm=nn.BatchNorm2d, activation=nn.ReLU),
       2, 4, 9, 10),
    _m("DepthwiseSeparableConv3d", lambda: cnn.DepthwiseSeparableConv3d(2, 3, 3, padding=1, depth_multiplier=2),
       2, 2, 4, 5, 5),
    _m("PointwiseConv1d", lambda: cnn.PointwiseConv1d(4, 6, groups=2), 2, 4, 9),
    _m("PointwiseConv2d", lambda: cnn.PointwiseConv2d(4, 6), 2, 4, 5, 6),
    _m("PointwiseConv3d", lambda: cnn.PointwiseConv3d(2, 3), 2, 2, 3, 4, 5),
    _m("FlattenedConv1d", lambda: cnn.FlattenedConv1d(3, 4, 3, padding=1), 2, 3, 10),
    _m("FlattenedConv2d", lambda: cnn.FlattenedConv2d(3, 4, 3, padding="same", stride=2), 2, 3, 9, 10),
    _m("FlattenedConv3d", lambda: cnn.FlattenedConv3d(2, 3, 3, padding=1), 2, 2, 4, 5, 6),
    _m("SpatiallySeparableConv2d", lambda: cnn.SpatiallySeparableConv2d(3, 4, (3, 5), padding=((1, 1), (2, 2))),
       2, 3, 9, 10),
    _m("SpatiallySeparableConv3d", lambda: cnn.SpatiallySeparableConv3d(2, 3, 3, padding=1, mid_channels=4),
       2, 2, 4, 5, 6),
    _m("ChannelShuffle", lambda: cnn.ChannelShuffle(3), 2, 6, 4, 5),
    # locally connected layers: the conv's windows, a filter bank per output position
    _m("LocallyConnected1d", lambda: cnn.LocallyConnected1d(3, 4, 3, input_size=12, padding=1), 2, 3, 12),
    _m("LocallyConnected2d-same-s2", lambda: cnn.LocallyConnected2d(3, 4, 3, input_size=(9, 10), stride=2,
                                                                     padding="same"), 2, 3, 9, 10),
    _m("LocallyConnected2d-pairs-reflect-dilated", lambda: cnn.LocallyConnected2d(
        2, 3, (3, 2), input_size=(8, 7), padding=((2, 1), (0, 1)), dilation=(2, 1), padding_mode="reflect"), 2, 2, 8, 7),
    _m("LocallyConnected3d", lambda: cnn.LocallyConnected3d(2, 3, 2, input_size=(4, 5, 4), bias=False), 2, 2, 4, 5, 4),
    # convolab's own conv algorithms, chosen explicitly (exporters record the plain conv they compute)
    _m("Conv2d-fft-depthwise", lambda: cnn.Conv2d(4, 4, 7, padding=3, groups=4, algorithm="fft"), 2, 4, 12, 11),
    _m("Conv1d-fft-strided-dilated", lambda: cnn.Conv1d(3, 4, 5, stride=2, padding=4, dilation=2, algorithm="fft"),
       2, 3, 40),
    _m("ConvTranspose2d-fft", lambda: cnn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, algorithm="fft"), 2, 4, 5, 6),
    _m("Conv2d-winograd", lambda: cnn.Conv2d(4, 6, 3, padding=1, algorithm="winograd"), 2, 4, 9, 10),
    _m("Conv3d-winograd_f2", lambda: cnn.Conv3d(2, 3, 3, padding=1, groups=1, algorithm="winograd_f2"), 2, 2, 4, 5, 6),
    _m("Conv2d-direct", lambda: cnn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, algorithm="direct"), 2, 4, 9, 10),
    _m("Conv2d-im2col", lambda: cnn.Conv2d(4, 6, 3, padding=1, dilation=2, algorithm="im2col"), 2, 4, 9, 10),
    _m("Conv2d-gemm", lambda: cnn.Conv2d(4, 6, 1, stride=2, algorithm="gemm"), 2, 4, 9, 10),
    _m("Conv2d-native_cl", lambda: cnn.Conv2d(4, 4, 5, padding=2, groups=4, algorithm="native_cl"), 2, 4, 9, 10),
]


# convolab's own kernels (torch custom ops): deformable convs with their offset predictor (random
# weights, so offsets are fractional), with offsets as inputs, and the ROI ops on boxes of every kind
_SPATIAL = {1: (9,), 2: (6, 7), 3: (4, 5, 4)}
_ORT_NO_3D = {"onnx": r"must be 4D", "onnx_ts": r"must be 4D"}  # onnxruntime's DeformConv is 2-D only


def _owning(cls: type) -> Subject:
    nd = cls.ndim

    def make() -> nn.Module:
        m = cls(4, 6, 3, padding=1, groups=2, offset_groups=2).eval()
        nn.init.normal_(m.conv_offset.weight, std=0.3)
        return m

    refuses = _ORT_NO_3D if nd == 3 else {}
    return Subject(cls.__name__, make, lambda n: (torch.randn(n, 4, *_SPATIAL[nd]),), refuses=refuses)


def _plain(cls: type) -> Subject:
    nd, taps = cls.ndim, 2**cls.ndim

    def inputs(n: int) -> tuple[Tensor, ...]:
        out = tuple(s + 1 for s in _SPATIAL[nd])
        return (torch.randn(n, 4, *_SPATIAL[nd]), torch.randn(n, nd * 2 * taps, *out), torch.rand(n, 2 * taps, *out))

    refuses = _ORT_NO_3D if nd == 3 else {}
    return Subject(cls.__name__, lambda: cls(4, 6, 2, padding=1, offset_groups=2).eval(), inputs, (True, True, True),
                   refuses=refuses)


def _roi_inputs(n: int) -> tuple[Tensor, ...]:
    k = 2 * n + 1
    xy = torch.rand(k, 2) * 20
    boxes = torch.cat([torch.arange(k).remainder(n).float().view(-1, 1), xy, xy + 2 + torch.rand(k, 2) * 12], 1)
    return torch.randn(n, 3, 12, 14), boxes


KERNEL_SUBJECTS: list[Subject] = [
    *(_owning(getattr(cnn, f"{kind}DeformConv{d}d")) for kind in ("", "Modulated") for d in (1, 2, 3)),
    *(_plain(getattr(cnn, f"PlainDeformConv{d}d")) for d in (1, 2, 3)),
    Subject("RoIAlign", lambda: cnn.RoIAlign((3, 2), 0.5, 2, aligned=True), _roi_inputs, (True, "own")),
    Subject("RoIAlign-adaptive", lambda: cnn.RoIAlign(3, 0.5, 0), _roi_inputs, (True, "own")),
    Subject("RoIPool", lambda: cnn.RoIPool((3, 2), 0.5), _roi_inputs, (True, "own")),
    Subject("RoISpatialPyramidPool", lambda: cnn.RoISpatialPyramidPool((1, (2, 3)), 0.5), _roi_inputs, (True, "own")),
    Subject("RoISpatialPyramidPool-avg", lambda: cnn.RoISpatialPyramidPool((1, 2), 0.5, "avg"), _roi_inputs, (True, "own")),
]


# Models at their smallest input (small is enough: every layer runs); the big ones are slow.
FAST_MODELS = ("mnist_cnn", "resnet18", "mobilenet_v2", "shufflenet_v2_x1_0", "inception_v3", "convnext_atto",
               "replknet_tiny")
_MODEL_KWARGS = {"inception_v3": {"aux_logits": False}, "googlenet": {"aux_logits": False}}


def _model_subject(name: str) -> Subject:
    with torch.device("meta"):  # only for its input size: no memory, no init
        probe = create_model(name, **_MODEL_KWARGS.get(name, {}))
    if hasattr(probe, "min_input_size"):
        shape = (3, *probe.min_input_size)
    else:  # the MNIST network
        shape = (1, 28, 28)
    return Subject(
        name, lambda: create_model(name, **_MODEL_KWARGS.get(name, {})).eval(),
        lambda n: (torch.randn(n, *shape),), slow=name not in FAST_MODELS, atol=1e-4,
    )


MODEL_SUBJECTS = [_model_subject(name) for name in list_models()]

SUBJECTS = MODULE_SUBJECTS + KERNEL_SUBJECTS + MODEL_SUBJECTS


def built(subject: Subject, n: int = 2) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """The subject's module (eval mode) and inputs for a batch of ``n``, the same every time."""
    torch.manual_seed(0)
    module = subject.make()
    return module, subject.inputs(n)


def relative_close(actual: Tensor, expected: Tensor, atol: float) -> None:
    """``|actual - expected| <= atol * max|expected|`` elementwise (and the same shape)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    actual, expected = actual.detach(), expected.detach()
    nan = expected.isnan()
    assert torch.equal(actual.isnan(), nan), "NaN where the eager module has none, or the reverse"
    actual, expected = actual[~nan], expected[~nan]
    if expected.numel() == 0:
        return
    scale = max(float(expected.abs().max()), 1e-12)
    err = float((actual.double() - expected.double()).abs().max())
    assert err <= atol * scale, f"max error {err:.3g} > {atol:g} x max|y| = {atol * scale:.3g}"
