"""What units respond to: for each channel of a layer, the input patches that excite it most.

Zeiler and Fergus's "top-9" view of a trained network: run it over a dataset, keep for each
channel the images where some unit of that channel fires hardest, and show the part of the
input that unit sees: its receptive field, from :mod:`convolab.analysis` (size, jump and start
per dim; unit ``i`` sees ``start + i*jump +- (size - 1)/2``), so a patch is exactly what the
unit depends on, not a guess. Early layers answer to strokes and edges at one orientation;
later layers, whose fields cover a good part of a digit, to digit parts (loops, crossings,
line ends). The data comes first (:class:`TopPatches`), the figure is drawn from it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .._args import positive_int
from ..analysis import summary
from .grids import find_layer, save_figure

__all__ = ["TopPatches", "top_patch_grid", "top_patches"]


@dataclass(frozen=True)
class TopPatches:
    """The most exciting patches of some channels of one layer.

    Attributes:
        layer: the layer's qualified name.
        channels: the channels shown, in order.
        fields: the layer's :class:`~convolab.arithmetic.ReceptiveField` per spatial dim.
        patches: ``Tensor[channels, top, C, ph, pw]``: the input patch each unit sees, in the
            images' own scale ([0, 1]); NaN where the field reaches past the image (the padding).
        activations: ``Tensor[channels, top]``: the unit's activation, highest first.
        where: ``Tensor[channels, top, 1 + nd]``: image index and the unit's position in the layer.
        searched: how many images were searched.
    """

    layer: str
    channels: tuple[int, ...]
    fields: tuple
    patches: Any
    activations: Any
    where: Any
    searched: int


def _check(model: Any, images: Any, top: int, op: str) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{op}: model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{op}: images must be a float tensor [N, C, H, W] in [0, 1], got {shape}")
    if len(images) == 0:
        raise ValueError(f"{op}: images must hold at least one image, got none")
    positive_int(top, "top", op)


def top_patches(
    model: Any,
    images: Any,
    layer: str,
    *,
    channels: Union[int, Sequence[int]] = 8,
    top: int = 9,
    pipeline: Optional[Any] = None,
    batch_size: int = 256,
) -> TopPatches:
    """Find, for each of ``channels`` of ``layer``, the ``top`` images whose strongest unit fires hardest.

    Each image counts once per channel (at its strongest unit), so a channel's patches come
    from ``top`` different images.

    Args:
        model (nn.Module): the network (evaluated in eval mode, without gradients).
        images (Tensor[N, C, H, W]): the images to search, in [0, 1].
        layer (str): a name from ``model.named_modules()`` whose output is ``[N, C, h, w]``.
        channels (int or sequence of int): the first ``channels`` channels, or these channels.
        top (int): patches per channel.
        pipeline (nn.Module, optional): turns the images into the model's input (normalisation,
            channels, size; :class:`convolab.train.loop.InputPipeline`); the patches are cut
            from the images at the size the model sees. Default: the images as they are.
        batch_size (int): images per forward pass.

    Returns:
        TopPatches: the patches, their activations and where they are.

    Raises:
        ValueError: an unknown layer (with the closest names), a layer without spatial output
            or whose receptive field is unknown, channels out of range, bad ``top``/``images``.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
        >>> found = top_patches(net, torch.rand(20, 1, 12, 12), "2", channels=2, top=3)
        >>> found.patches.shape, [int(f.size) for f in found.fields]
        (torch.Size([2, 3, 1, 5, 5]), [5, 5])
    """
    op = "top_patches"
    _check(model, images, top, op)
    module = find_layer(model, layer, "any", op)
    was = model.training
    model.eval()
    if pipeline is not None:
        pipeline.eval()
    to_input = pipeline if pipeline is not None else (lambda x: x)
    with torch.no_grad():
        probe = to_input(images[:1])
    try:
        row = summary(model, tuple(probe.shape)).row(layer)
    except ValueError as exc:
        raise ValueError(str(exc).replace("summary:", f"{op}:", 1)) from None
    shape = row.output_shapes[0] if row.output_shapes else ()
    if len(shape) != 4:
        raise ValueError(f"{op}: layer {layer!r} must output [N, C, H, W] feature maps, got {list(shape)}")
    if row.fields is None:
        raise ValueError(f"{op}: the receptive field of {layer!r} is unknown ({row.problem or 'no spatial dims'}); "
                         f"its units' patches cannot be cut")
    width = shape[1]
    chosen = tuple(range(min(channels, width))) if isinstance(channels, int) and not isinstance(channels, bool) \
        else tuple(channels)
    if not chosen or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < width for c in chosen) \
            or (isinstance(channels, int) and channels < 1):
        raise ValueError(f"{op}: channels must be a count >= 1 or channel indices in [0, {width - 1}] "
                         f"(layer {layer!r} has {width}), got {channels!r}")

    captured: list = []
    handle = module.register_forward_hook(lambda m, a, out: captured.append(out))
    best_value = torch.full((len(chosen), 0), float("-inf"))
    best_where = torch.zeros((len(chosen), 0, 3), dtype=torch.long)
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = images[start:start + batch_size]
                captured.clear()
                model(to_input(batch))
                act = captured[0][:, list(chosen)].float()  # [B, k, h, w]
                b, k, h, w = act.shape
                value, flat = act.reshape(b, k, h * w).max(2)  # each image's strongest unit per channel
                where = torch.stack([torch.arange(b).view(b, 1).expand(b, k) + start, flat // w, flat % w], -1)
                value = torch.cat([best_value, value.t()], 1)
                where = torch.cat([best_where, where.transpose(0, 1)], 1)
                order = value.argsort(dim=1, descending=True, stable=True)[:, :top]
                best_value = value.gather(1, order)
                best_where = where.gather(1, order.unsqueeze(-1).expand(-1, -1, 3))
    finally:
        handle.remove()
        model.train(was)

    # the images at the size the model sees, in their own scale: that is where the fields lie
    size = tuple(probe.shape[2:])
    shown = images if tuple(images.shape[2:]) == size else F.interpolate(
        images, size=size, mode="bilinear", align_corners=False)
    rf_h, rf_w = row.fields
    ph, pw = round(rf_h.size), round(rf_w.size)
    patches = torch.full((len(chosen), best_value.shape[1], images.shape[1], ph, pw), float("nan"))
    for ci in range(len(chosen)):
        for t in range(best_value.shape[1]):
            n, i, j = best_where[ci, t].tolist()
            top_h = round(rf_h.slice(i).bounds[0])
            left = round(rf_w.slice(j).bounds[0])
            # the part of the field inside the image; the rest (the padding) stays NaN
            y0, y1 = max(top_h, 0), min(top_h + ph, size[0])
            x0, x1 = max(left, 0), min(left + pw, size[1])
            if y0 < y1 and x0 < x1:
                patches[ci, t, :, y0 - top_h:y1 - top_h, x0 - left:x1 - left] = shown[n, :, y0:y1, x0:x1]
    return TopPatches(layer, chosen, tuple(row.fields), patches, best_value, best_where, len(images))


def top_patch_grid(data: TopPatches, path: Optional[Union[str, Path]] = None, *, title: Optional[str] = None):
    """Draw :class:`TopPatches`: one row per channel, its patches left to right, strongest first.

    Gray patches in the images' own scale (black 0, white 1); the part of a field that lies in
    the padding is drawn light red. Each tile is titled with the unit's activation.

    Args:
        data: what :func:`top_patches` found.
        path: write a PNG there when given.
        title: a line above the grid (e.g. whose weights).

    Returns:
        matplotlib.figure.Figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = data.patches.shape[:2]
    size = "x".join(f"{f.size:g}" for f in data.fields)
    head = (f"{data.layer}: the {cols} strongest patches of {rows} channel{'s' * (rows != 1)} over "
            f"{data.searched:,} images (each cut to the unit's {size} receptive field; light red: padding)")
    text = f"{title}\n{head}" if title else head
    tile = 0.75 if cols > 6 else 0.95
    fig = Figure(figsize=(cols * tile + 0.8, rows * tile + 0.9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle("\n".join(textwrap.fill(line, max(int((cols * tile + 0.8) * 13), 40)) for line in text.splitlines()),
                 fontsize=8)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            patch = data.patches[r, c].numpy()
            if not np.isfinite(data.activations[r, c].item()):
                ax.set_visible(False)
                continue
            picture = patch.mean(0) if patch.shape[0] != 3 else np.transpose(patch, (1, 2, 0))
            pad = ~np.isfinite(picture if picture.ndim == 2 else picture[..., 0])
            if picture.ndim == 2:
                rgb = np.repeat(np.nan_to_num(picture, nan=0.0)[..., None], 3, -1)
            else:
                rgb = np.nan_to_num(picture, nan=0.0)
            rgb[pad] = (1.0, 0.85, 0.85)
            ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
            ax.set_title(f"{data.activations[r, c].item():.2g}", fontsize=6, pad=1)
            if c == 0:
                ax.set_ylabel(f"ch {data.channels[r]}", fontsize=7)
    return save_figure(fig, path)
