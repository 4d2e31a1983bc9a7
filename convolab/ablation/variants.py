"""The swap axes of an ablation: each variant rebuilds one component of a base network.

A variant is a function ``(model, probe) -> model`` applied to a freshly built registered
model; the :class:`Probe` records the input and output shape of every submodule of that model
(one forward on zeros), so a replacement can keep the shapes the rest of the network expects.
Every variant keeps the network's output shape, so data, optimizer, schedule and head stay
fixed and only the named component differs.

Axes (the first value of each is the base network unchanged):

- ``conv``: every spatial convolution but the first (the stem; MobileNet and ShuffleNet keep
  theirs dense too) becomes ``standard``, ``depthwise_separable``, ``spatially_separable``,
  ``flattened``, ``grouped_shuffle`` (grouped conv + channel shuffle, the group count being the
  divisor of both channel counts nearest to 4), ``dilated`` (dilation doubled, padding grown
  so the output size is unchanged), ``locally_connected`` (the same windows without weight
  sharing: a filter bank per output position, built for the image size of the study) or
  ``deformable`` (:class:`convolab.nn.DeformConv2d` with its offset predictor).
- ``norm``: every conv -> batch norm -> activation triple of a ``Sequential`` becomes
  ``conv-bn-act``, ``conv-act-bn`` (norm after the activation) or ``none`` (no batch norm).
- ``bottleneck``: ``off``, or ``on``: every spatial conv but the stem becomes the ResNet
  bottleneck 1x1 (C_in -> C_out/4), k x k, 1x1 (-> C_out), with batch norm and ReLU between.
- ``head``: what joins the last feature map to the classifier: ``flatten`` (the base), global
  ``max`` or ``avg`` pooling, or spatial pyramid pooling (``spp``, levels 4, 2, 1, max); the
  base's classifier follows, its first linear layer resized to the pooled length.
- ``downsample``: every max pooling layer becomes ``maxpool``, ``avgpool`` or
  ``strided_conv`` (a learned C -> C conv with the pool's window and stride).
- ``train_sizes``: not the network but the image sizes it is trained at (SPP-net's multi-size
  training), written with ``+``: ``28`` (one size) or ``28+20+36`` (the three in turn, the first
  being the size accuracy is measured at). The network must take any size (an SPP or global
  pooling head, e.g. ``mnist_spp``); the table adds the accuracy at every size named by the
  variants, so each variant is also measured at sizes it never saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import arithmetic as A
from .. import nn as cnn
from .._args import check_choice
from ..models import create_model
from ..train.pipeline import first_in_channels  # the rule fit uses for models without in_channels

_CONVS = (nn.Conv2d, cnn.Conv2d)
_MAXPOOLS = (nn.MaxPool2d, cnn.MaxPool2d)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.ELU)


@dataclass
class Probe:
    """Input and output shapes of every submodule of a model (first call), from one forward on zeros."""

    input_size: tuple[int, ...]
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # submodule names in call order

    @classmethod
    def of(cls, model: nn.Module, input_size: tuple[int, ...]) -> "Probe":
        probe = cls(tuple(input_size))
        handles = []
        for name, module in model.named_modules():
            if not name:
                continue

            def hook(m: nn.Module, args: Any, out: Any, name: str = name) -> None:
                if name not in probe.outputs and args and isinstance(args[0], Tensor) and isinstance(out, Tensor):
                    probe.inputs[name], probe.outputs[name] = tuple(args[0].shape), tuple(out.shape)
                    probe.order.append(name)

            handles.append(module.register_forward_hook(hook))
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(torch.zeros(input_size))
        finally:
            for h in handles:
                h.remove()
            model.train(was)
        return probe


Transform = Callable[[nn.Module, Probe], nn.Module]


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return model.get_submodule(parent_name), child


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, child = _parent(model, name)
    setattr(parent, child, new)


def _spatial_convs(model: nn.Module, probe: Probe) -> list[str]:
    """Names of the dense 2-D convs with a kernel larger than 1x1, in call order, without the stem."""
    found = [
        n for n in probe.order
        if isinstance(model.get_submodule(n), _CONVS)
        and model.get_submodule(n).groups == 1
        and math.prod(model.get_submodule(n).kernel_size) > 1
    ]
    return found[1:]


def _conv_args(conv: nn.Module) -> dict[str, Any]:
    return dict(
        in_channels=conv.in_channels, out_channels=conv.out_channels, kernel_size=conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
    )


def _swap_convs(build: Callable[[str, nn.Module, Probe], nn.Module]) -> Transform:
    def transform(model: nn.Module, probe: Probe) -> nn.Module:
        for name in _spatial_convs(model, probe):
            _replace(model, name, build(name, model.get_submodule(name), probe))
        return model

    return transform


def _identity(model: nn.Module, probe: Probe) -> nn.Module:
    return model


def group_count(in_channels: int, out_channels: int, target: int = 4) -> int:
    """The divisor > 1 of both channel counts nearest to ``target`` (ties: the smaller); 1 if none.

    Example:
        >>> group_count(24, 48), group_count(25, 50), group_count(25, 49)
        (4, 5, 1)
    """
    g = math.gcd(in_channels, out_channels)
    divisors = [d for d in range(2, g + 1) if g % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d)) if divisors else 1


def _grouped_shuffle(name: str, conv: nn.Module, probe: Probe) -> nn.Module:
    args = _conv_args(conv)
    g = group_count(args["in_channels"], args["out_channels"])
    if g == 1:
        raise ValueError(
            f"ablate: conv=grouped_shuffle: layer {name!r} has {args['in_channels']} -> {args['out_channels']} "
            f"channels; no group count > 1 divides both"
        )
    return nn.Sequential(cnn.Conv2d(**args, groups=g), cnn.ChannelShuffle(g))


def _dilated(name: str, conv: nn.Module, probe: Probe) -> nn.Module:
    args = _conv_args(conv)
    spatial = probe.inputs[name][2:]
    pairs = A.resolve_padding(args["padding"], spatial, args["kernel_size"], args["stride"], args["dilation"])
    dilation = tuple(2 * d for d in args["dilation"])
    padding = []
    for (before, after), k, d_old, d_new in zip(pairs, args["kernel_size"], args["dilation"], dilation):
        # grow the padding by the growth of the dilated kernel, so the output size is unchanged
        extra = A.effective_kernel_size(k, d_new) - A.effective_kernel_size(k, d_old)
        padding.append((before + extra // 2, after + extra - extra // 2))
    return cnn.Conv2d(**{**args, "padding": tuple(padding), "dilation": dilation})


def _factory(cls: type) -> Callable[[str, nn.Module, Probe], nn.Module]:
    return lambda name, conv, probe: cls(**_conv_args(conv))


def _deformable(name: str, conv: nn.Module, probe: Probe) -> nn.Module:
    return cnn.DeformConv2d(**_conv_args(conv))


def _locally_connected(name: str, conv: nn.Module, probe: Probe) -> nn.Module:
    """The conv's windows without weight sharing: a filter bank per output position of the map
    this layer sees (the probe's input size; the network then takes only that image size)."""
    args = _conv_args(conv)
    if getattr(conv, "padding_mode", "zeros") != "zeros":
        args["padding_mode"] = conv.padding_mode
    return cnn.LocallyConnected2d(**args, input_size=probe.inputs[name][2:])


def _bottleneck(name: str, conv: nn.Module, probe: Probe) -> nn.Module:
    args = _conv_args(conv)
    mid = max(1, args["out_channels"] // 4)  # ResNet's expansion of 4
    return nn.Sequential(
        cnn.Conv2d(args["in_channels"], mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
        cnn.Conv2d(mid, mid, args["kernel_size"], args["stride"], args["padding"], args["dilation"], bias=False),
        nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
        cnn.Conv2d(mid, args["out_channels"], 1, bias=args["bias"]),
    )


def _conv_bn_act_triples(model: nn.Module) -> list[tuple[nn.Sequential, str, str]]:
    """(sequential, norm slot, activation slot) for every conv, BatchNorm2d, activation run of children."""
    triples = []
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for (_, conv), (b, norm), (c, act) in zip(children, children[1:], children[2:]):
            if isinstance(conv, _CONVS) and isinstance(norm, nn.BatchNorm2d) and isinstance(act, _ACTIVATIONS):
                triples.append((seq, b, c))
    return triples


def _norm(order: str) -> Transform:
    def transform(model: nn.Module, probe: Probe) -> nn.Module:
        triples = _conv_bn_act_triples(model)
        if not triples:
            raise ValueError(
                f"ablate: norm={order}: the base network has no conv -> BatchNorm2d -> activation sequence"
            )
        for seq, b, c in triples:
            norm, act = seq.get_submodule(b), seq.get_submodule(c)
            if order == "none":
                setattr(seq, b, nn.Identity())
            else:  # same slots, swapped contents: the activation runs first, then the norm
                setattr(seq, b, act)
                setattr(seq, c, norm)
        return model

    return transform


def _feature_layer(model: nn.Module, probe: Probe) -> str:
    """The last direct child whose output is a feature map: where the classifier head starts."""
    children = [n for n in probe.order if "." not in n and len(probe.outputs[n]) == 4]
    if not children:
        raise ValueError("ablate: head: the base network has no child module that returns a feature map [N, C, H, W]")
    return children[-1]


class HeadSwap(nn.Module):
    """A base network whose classifier reads a pooled feature map: ``head`` takes child ``layer``'s output.

    The children called after ``layer`` (the base's classifier) become ``nn.Identity`` in the
    body (their copies live on in ``head``); the base's forward still runs up to ``layer``, and
    a forward hook hands ``layer``'s output to the head.
    """

    def __init__(self, model: nn.Module, layer: str, head: nn.Module, after: list[str]) -> None:
        super().__init__()
        for name in after:
            setattr(model, name, nn.Identity())
        self.body, self.layer, self.head = model, layer, head

    def forward(self, x: Tensor) -> Tensor:
        captured: list[Tensor] = []
        handle = self.body.get_submodule(self.layer).register_forward_hook(lambda m, a, out: captured.append(out))
        try:
            self.body(x)
        finally:
            handle.remove()
        return self.head(captured[0])


def _head(kind: str) -> Transform:
    def transform(model: nn.Module, probe: Probe) -> nn.Module:
        layer = _feature_layer(model, probe)
        channels = probe.outputs[layer][1]
        children = [n for n in probe.order if "." not in n]
        after = children[children.index(layer) + 1 :]
        pool: nn.Module = {
            "max": lambda: cnn.GlobalMaxPool(),
            "avg": lambda: cnn.GlobalAvgPool(),
            "spp": lambda: cnn.SpatialPyramidPool((4, 2, 1)),
        }[kind]()
        features = pool.output_features(channels) if kind == "spp" else channels
        classifier = nn.Sequential(*(model.get_submodule(n) for n in after))
        # the classifier is kept; only its first linear layer is resized to the pooled length
        first = next((n for n, m in classifier.named_modules() if isinstance(m, nn.Linear)), None)
        if first is None:
            raise ValueError(f"ablate: head={kind}: no linear layer follows the feature map {layer!r} of the base network")
        old = classifier.get_submodule(first)
        _replace(classifier, first, nn.Linear(features, old.out_features, bias=old.bias is not None))
        return HeadSwap(model, layer, nn.Sequential(pool, classifier), after)

    return transform


def _downsample(kind: str) -> Transform:
    def transform(model: nn.Module, probe: Probe) -> nn.Module:
        pools = [n for n in probe.order if isinstance(model.get_submodule(n), _MAXPOOLS)]
        if not pools:
            raise ValueError(f"ablate: downsample={kind}: the base network has no max pooling layer")
        for name in pools:
            pool = model.get_submodule(name)
            k, s, p = pool.kernel_size, pool.stride, pool.padding
            if kind == "avgpool":
                new: nn.Module = cnn.AvgPool2d(k, s, p, ceil_mode=pool.ceil_mode)
            else:
                c = probe.outputs[name][1]
                new = cnn.Conv2d(c, c, k, s, p)
            _replace(model, name, new)
        return model

    return transform


def _conv_variants() -> dict[str, Transform]:
    variants = {
        "standard": _identity,
        "depthwise_separable": _swap_convs(_factory(cnn.DepthwiseSeparableConv2d)),
        "spatially_separable": _swap_convs(_factory(cnn.SpatiallySeparableConv2d)),
        "flattened": _swap_convs(_factory(cnn.FlattenedConv2d)),
        "grouped_shuffle": _swap_convs(_grouped_shuffle),
        "dilated": _swap_convs(_dilated),
        "locally_connected": _swap_convs(_locally_connected),
        "deformable": _swap_convs(_deformable),
    }
    return variants


def axes() -> dict[str, dict[str, Transform]]:
    """Every swap axis and its variants (the first of each is the base network unchanged)."""
    return {
        "conv": _conv_variants(),
        "norm": {"conv-bn-act": _identity, "conv-act-bn": _norm("conv-act-bn"), "none": _norm("none")},
        "bottleneck": {"off": _identity, "on": _swap_convs(_bottleneck)},
        "head": {"flatten": _identity, "max": _head("max"), "avg": _head("avg"), "spp": _head("spp")},
        "downsample": {"maxpool": _identity, "avgpool": _downsample("avgpool"), "strided_conv": _downsample("strided_conv")},
        # any sizes joined by '+' (see train_sizes); these two are examples
        SIZES_AXIS: {"28": _identity, "28+20+36": _identity},
    }


SIZES_AXIS = "train_sizes"


def train_sizes(value: str) -> list[int]:
    """The sizes of a ``train_sizes`` variant: ``"28+20+36"`` -> ``[28, 20, 36]``.

    Example:
        >>> train_sizes("28"), train_sizes("28+20+36")
        ([28], [28, 20, 36])
    """
    from ..train.config import MAX_IMAGE_SIZE

    try:
        sizes = [int(v) for v in value.split("+")]
    except ValueError:
        sizes = []
    if not sizes or not all(1 <= v <= MAX_IMAGE_SIZE for v in sizes):
        raise ValueError(f"ablate: a {SIZES_AXIS} variant is image sizes in [1, {MAX_IMAGE_SIZE}] joined by '+' "
                         f"(e.g. 28 or 28+20+36), got {value!r}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"ablate: {SIZES_AXIS} variant {value!r} lists a size twice")
    return sizes


def check_variant(axis: str, value: str) -> Transform:
    """The transform of ``axis=value``; ValueError listing the choices (and the closest) otherwise."""
    table = axes()
    check_choice(axis, tuple(table), "swap axis", "ablate")
    if axis == SIZES_AXIS:  # any list of sizes: the network is the base, its training changes
        train_sizes(value)
        return _identity
    check_choice(value, table[axis], f"{axis} variant", "ablate")
    return table[axis][value]


def build_variant(base: str, axis: str, value: str, image_size: tuple[int, int] = (28, 28), **kwargs: Any) -> nn.Module:
    """The registered model ``base`` (built with ``kwargs``) with ``axis`` set to ``value``.

    Args:
        base: a registry name (``convolab.models.list_models()``).
        axis, value: one variant of :func:`axes`, e.g. ``"conv", "depthwise_separable"``.
        image_size: (H, W) of the images the network will see (the replacements keep every shape).
        kwargs: passed to the builder, e.g. ``num_classes=10, in_channels=1``.

    Returns:
        nn.Module: the variant; for the same input its output shape is the base's.

    Raises:
        ValueError: an unknown axis or variant, or a base network the variant cannot apply to.

    Example:
        >>> net = build_variant("mnist_cnn", "conv", "depthwise_separable")
        >>> type(net.layer3[0]).__name__, net(torch.zeros(2, 1, 28, 28)).shape
        ('DepthwiseSeparableConv2d', torch.Size([2, 10]))
    """
    transform = check_variant(axis, value)
    model = create_model(base, **kwargs)
    channels = kwargs.get("in_channels") or first_in_channels(model)
    if channels is None:
        raise ValueError(f"ablate: cannot tell the input channels of {base!r} (no layer has in_channels)")
    return transform(model, Probe.of(model, (1, channels, *image_size)))
