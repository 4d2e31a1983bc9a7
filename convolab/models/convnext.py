"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s").

A ResNet modernised step by step towards a vision transformer's design:

- a "patchify" stem, a 4×4 conv at stride 4, followed by a layer norm;
- four stages of :class:`ConvNeXtBlock`: a 7×7 **depthwise** conv (large
  spatial mixing, one filter per channel), a layer norm, then an inverted MLP
  (pointwise ×4, GELU, pointwise back) — the transformer's FFN — with a
  learnable per-channel **layer scale** (initialised to 1e-6) on the branch
  and **stochastic depth** whose drop rate grows linearly with depth;
- between stages, a layer norm and a 2×2 conv at stride 2 (separate
  downsampling layers, as Swin's patch merging);
- global average pooling, a layer norm and a linear classifier.

Layout and state_dict keys are those of the common model zoo
(torchvision's ``features.*`` / ``classifier.*``): ``features`` =
``[stem, stage 1, downsample, stage 2, downsample, stage 3, downsample, stage 4]``,
each block ``layer_scale`` (``[C, 1, 1]``) + ``block.{0: dw conv, 2: LayerNorm,
3: Linear, 5: Linear}``. ConvNeXt-T has 28,589,128 parameters at 1000
classes, the published figure. The original release's layout
(``downsample_layers.*`` / ``stages.*`` / ``norm`` / ``head``, block
``dwconv`` / ``norm`` / ``pwconv1`` / ``pwconv2`` / ``gamma``) converts with
:func:`convert_reference_state_dict`.

The pointwise layers are ``nn.Linear`` on a channels-last view, as both
reference implementations do (a 1×1 conv is a matrix product either way, and
the zoo's weights are ``[4C, C]``); the 7×7 depthwise conv is convolab's
:class:`~convolab.nn.Conv2d` with ``algorithm="auto"``, where torch's own
depthwise kernels are slowest in training.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from .._args import positive_int
from ..nn import Conv2d
from ._registry import register_model
from .blocks import AdaptiveAvgPool2d, ConvNormAct, LayerNorm2d, StochasticDepth

__all__ = ["ConvNeXt", "ConvNeXtBlock", "Permute", "convert_reference_state_dict"]

# (depths, dims) per variant: the paper's T; timm's atto (below the paper's sizes, for fast runs)
_CONFIGS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
}
_LN_EPS = 1e-6  # both reference implementations use 1e-6, not torch's default 1e-5


class Permute(nn.Module):
    """Reorder the dims of a tensor (``input.permute(dims)``): NCHW <-> NHWC inside a ConvNeXt block.

    Args:
        dims (sequence of int): the new order of the dims.

    Shape:
        ``[d_0, ..., d_k] -> [d_dims[0], ..., d_dims[k]]``.
    """

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)

    def forward(self, input: Tensor) -> Tensor:
        return input.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


def _check_rate(value: object, name: str, op: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{op}: {name} must be a number in [0, 1], got {value!r}")
    return float(value)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: ``x + drop_path(layer_scale * pw2(gelu(pw1(ln(dwconv(x))))))``.

    The 7×7 depthwise conv runs on NCHW; the layer norm and the two pointwise
    layers (``C -> mlp_ratio·C -> C``) run on a channels-last view, so the norm
    is over channels and the pointwise layers are plain matrix products.
    Children: ``block`` (0: depthwise conv, 1: to NHWC, 2: LayerNorm, 3: Linear,
    4: GELU, 5: Linear, 6: to NCHW), ``layer_scale`` ``[C, 1, 1]``,
    ``stochastic_depth``.

    Args:
        dim (int): channels ``C``.
        layer_scale (float): initial value of the per-channel branch scale
            (default 1e-6: each block starts close to the identity).
        drop_path (float): stochastic-depth drop probability of the branch (default 0).
        kernel_size (int): odd size of the depthwise kernel (default 7).
        mlp_ratio (int): expansion of the inverted MLP (default 4).

    Shape:
        ``[N, dim, H, W] -> [N, dim, H, W]``.

    Raises:
        ValueError: ``dim``, ``mlp_ratio`` < 1; ``kernel_size`` not an odd int >= 1;
            ``layer_scale`` not a number > 0; ``drop_path`` outside [0, 1].

    Example:
        >>> import torch
        >>> m = ConvNeXtBlock(8)
        >>> m(torch.randn(2, 8, 5, 5)).shape, m.block[0].weight.shape, m.block[3].weight.shape
        (torch.Size([2, 8, 5, 5]), torch.Size([8, 1, 7, 7]), torch.Size([32, 8]))
    """

    def __init__(
        self,
        dim: int,
        layer_scale: float = 1e-6,
        drop_path: float = 0.0,
        kernel_size: int = 7,
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        op = "ConvNeXtBlock"
        positive_int(dim, "dim", op)
        positive_int(mlp_ratio, "mlp_ratio", op)
        if positive_int(kernel_size, "kernel_size", op) % 2 == 0:
            raise ValueError(f"{op}: kernel_size must be odd (the block keeps the size), got {kernel_size}")
        if not isinstance(layer_scale, (int, float)) or isinstance(layer_scale, bool) or not layer_scale > 0:
            raise ValueError(f"{op}: layer_scale must be a number > 0, got {layer_scale!r}")
        hidden = mlp_ratio * dim
        self.block = nn.Sequential(
            Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim),
            Permute((0, 2, 3, 1)),
            nn.LayerNorm(dim, eps=_LN_EPS),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
            Permute((0, 3, 1, 2)),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), float(layer_scale)))
        self.stochastic_depth = StochasticDepth(_check_rate(drop_path, "drop_path", op))

    def forward(self, input: Tensor) -> Tensor:
        return input + self.stochastic_depth(self.layer_scale * self.block(input))


class ConvNeXt(nn.Module):
    """ConvNeXt in the zoo's layout: ``features`` (stem, stages, downsamplings), ``avgpool``, ``classifier``.

    Args:
        depths (sequence of int): blocks per stage (ConvNeXt-T: ``(3, 3, 9, 3)``).
        dims (sequence of int): channels per stage (ConvNeXt-T: ``(96, 192, 384, 768)``).
        num_classes (int): outputs (default 1000).
        in_channels (int): image channels (default 3).
        drop_path_rate (float): stochastic-depth rate of the last block; block
            ``i`` of ``n`` drops with ``drop_path_rate * i / (n - 1)`` (default 0).
        layer_scale (float): initial layer scale (default 1e-6).
        kernel_size (int): depthwise kernel size (default 7).

    Shape:
        ``[N, in_channels, H, W] -> [N, num_classes]`` for ``H, W >= 4·2^(stages-1)``
        (32 for four stages; every downsampling needs a 2×2 map); 224×224 canonical.

    Raises:
        ValueError: ``depths``/``dims`` empty, of different lengths or with entries < 1;
            ``drop_path_rate`` outside [0, 1]; bad block arguments (from the block).
    """

    default_input_size = (224, 224)
    min_input_size = (32, 32)
    head_names: tuple[str, ...] = ("classifier",)

    def __init__(
        self,
        depths: Sequence[int] = _CONFIGS["tiny"][0],
        dims: Sequence[int] = _CONFIGS["tiny"][1],
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_path_rate: float = 0.0,
        layer_scale: float = 1e-6,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        op = "ConvNeXt"
        depths, dims = tuple(depths), tuple(dims)
        if not depths or len(depths) != len(dims):
            raise ValueError(
                f"{op}: depths and dims must be non-empty and of equal length (one per stage), "
                f"got depths={depths!r}, dims={dims!r}"
            )
        for name, values in (("depths", depths), ("dims", dims)):
            for v in values:
                positive_int(v, f"{name} entry", op)
        rate = _check_rate(drop_path_rate, "drop_path_rate", op)
        total = sum(depths)
        layers: list[nn.Module] = [
            ConvNormAct(
                in_channels, dims[0], 4, stride=4, padding=0, bias=True,
                norm_layer=partial(LayerNorm2d, eps=_LN_EPS), act_layer=None,
            )
        ]  # fmt: skip
        index = 0
        for stage, (depth, dim) in enumerate(zip(depths, dims)):
            if stage:
                prev = dims[stage - 1]
                layers.append(nn.Sequential(LayerNorm2d(prev, eps=_LN_EPS), Conv2d(prev, dim, 2, stride=2)))
            blocks = []
            for _ in range(depth):
                # linear in depth over the whole network, as both references schedule it
                p = rate * index / (total - 1) if total > 1 else 0.0
                blocks.append(ConvNeXtBlock(dim, layer_scale, p, kernel_size))
                index += 1
            layers.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(dims[-1], eps=_LN_EPS), nn.Flatten(1), nn.Linear(dims[-1], num_classes)
        )
        self.num_features = dims[-1]
        self.min_input_size = (4 * 2 ** (len(dims) - 1),) * 2
        self._init_weights()

    def _init_weights(self) -> None:
        # both references: truncated normal (std 0.02) weights and zero biases for convs and linears
        for m in self.modules():
            if isinstance(m, (Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's map ``[N, dims[-1], H/32, W/32]`` (four stages)."""
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


_REFERENCE_BLOCK = {"dwconv": "block.0", "norm": "block.2", "pwconv1": "block.3", "pwconv2": "block.5"}


def convert_reference_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a state_dict of the original ConvNeXt release to this module's (the zoo's) layout.

    ``downsample_layers.0.{0,1}`` (stem conv, norm) -> ``features.0.{0,1}``;
    ``downsample_layers.i.{0,1}`` (norm, conv) -> ``features.{2i}.{0,1}``;
    ``stages.i.j.{dwconv,norm,pwconv1,pwconv2}`` -> ``features.{2i+1}.j.block.{0,2,3,5}``;
    ``stages.i.j.gamma`` ``[C]`` -> ``features.{2i+1}.j.layer_scale`` ``[C, 1, 1]``;
    ``norm`` -> ``classifier.0``; ``head`` -> ``classifier.2``. A ``{"model": ...}``
    wrapper, as the release saves it, is unwrapped.

    Args:
        state (mapping of str to Tensor): the original state_dict.

    Returns:
        A new dict with the zoo's keys, in the same order (tensors shared, except the reshaped gammas).

    Raises:
        ValueError: a key that belongs to neither layout.

    Example:
        >>> import torch
        >>> state = {"stages.2.4.gamma": torch.ones(384), "head.bias": torch.zeros(5)}
        >>> {k: tuple(v.shape) for k, v in convert_reference_state_dict(state).items()}
        {'features.5.4.layer_scale': (384, 1, 1), 'classifier.2.bias': (5,)}
    """
    if "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if m := re.fullmatch(r"downsample_layers\.(\d+)\.([01])\.(\w+)", key):
            stage, child, leaf = int(m[1]), m[2], m[3]
            new = f"features.{2 * stage}.{child}.{leaf}"
        elif m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.gamma", key):
            new, value = f"features.{2 * int(m[1]) + 1}.{m[2]}.layer_scale", value.reshape(-1, 1, 1)
        elif m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.(dwconv|norm|pwconv1|pwconv2)\.(\w+)", key):
            new = f"features.{2 * int(m[1]) + 1}.{m[2]}.{_REFERENCE_BLOCK[m[3]]}.{m[4]}"
        elif m := re.fullmatch(r"(norm|head)\.(weight|bias)", key):
            new = f"classifier.{0 if m[1] == 'norm' else 2}.{m[2]}"
        else:
            raise ValueError(
                f"convert_reference_state_dict: key {key!r} is not in the original ConvNeXt layout "
                "(downsample_layers.*, stages.*, norm.*, head.*)"
            )
        out[new] = value
    return out


def _convnext(variant: str, num_classes: int, in_channels: int, **kwargs) -> ConvNeXt:
    depths, dims = _CONFIGS[variant]
    return ConvNeXt(depths, dims, num_classes, in_channels, **kwargs)


@register_model
def convnext_tiny(
    num_classes: int = 1000, in_channels: int = 3, drop_path_rate: float = 0.1, **kwargs
) -> ConvNeXt:
    """ConvNeXt-T, "A ConvNet for the 2020s" (Liu et al., CVPR 2022)."""
    return _convnext("tiny", num_classes, in_channels, drop_path_rate=drop_path_rate, **kwargs)


@register_model
def convnext_atto(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ConvNeXt:
    """ConvNeXt-Atto, timm's smallest width of "A ConvNet for the 2020s" (Liu et al., CVPR 2022)."""
    return _convnext("atto", num_classes, in_channels, **kwargs)
