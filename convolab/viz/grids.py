"""Kernel grids and feature-map grids of a model's layers (matplotlib, Agg canvas, no pyplot state)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Optional, Union

import torch

from .._args import check_choice, positive_int

__all__ = ["feature_map_grid", "find_layer", "kernel_grid", "layer_names", "save_figure"]


def layer_names(model, kind: str = "any") -> list[str]:
    """Names of ``model``'s sub-modules (``kind="conv"``: only those with a 4-D ``weight``)."""
    names = []
    for name, module in model.named_modules():
        if not name:
            continue
        weight = getattr(module, "weight", None)
        if kind == "any" or (weight is not None and getattr(weight, "dim", lambda: 0)() in (3, 4)):
            names.append(name)
    return names


def find_layer(model: torch.nn.Module, layer: str, kind: str, op: str) -> torch.nn.Module:
    """The sub-module ``layer`` of ``model`` (``kind`` as in :func:`layer_names`).

    Raises:
        ValueError: the model has no such layers, or ``layer`` is not one of them (with the closest names).
    """
    names = layer_names(model, kind)
    if not names:
        raise ValueError(f"{op}: the model has no {'conv ' if kind == 'conv' else ''}layers")
    check_choice(layer, names, "layer", op)
    return dict(model.named_modules())[layer]


def _figure(tiles: int, cols: int, tile_inches: float, title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = math.ceil(tiles / cols)
    # room on the right for the colour bar; the saved PNG is cropped to what is drawn
    width = cols * tile_inches + 1.2
    fig = Figure(figsize=(width, rows * tile_inches + 0.9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle("\n".join(textwrap.fill(line, max(int(width * 13), 40)) for line in title.splitlines()), fontsize=9)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_visible(False)
    return fig, axes


def _colorbar(fig, image, axes, label: str) -> None:
    """One colour bar for all tiles (they share one scale), beside the tiles actually drawn."""
    bar = fig.colorbar(image, ax=[ax for ax in axes.flat if ax.get_visible()], shrink=0.9, aspect=30)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def save_figure(fig: Any, path: Optional[Union[str, Path]]) -> Any:
    """Write ``fig`` as a PNG cropped to what is drawn (when ``path`` is given, creating its folder); return it."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.08)  # no empty margins
    return fig


def kernel_grid(
    model,
    layer: str | None = None,
    path: Optional[Union[str, Path]] = None,
    *,
    max_tiles: int = 64,
    annotate: bool | None = None,
    title: str | None = None,
):
    """Every (output filter, input channel) slice of a conv layer's weight as a tile.

    A first layer with 3 input channels is shown as one RGB tile per filter (the
    classic picture of learned edge/colour detectors, each scaled to its own range);
    otherwise rows are output filters, columns input channels, on one symmetric
    blue-red scale (white is 0, the colour bar gives the values). Small kernels
    carry their numbers.

    Args:
        model (nn.Module or Tensor): a model (then ``layer`` names a conv layer) or a
            weight tensor ``[C_out, C_in/groups, kH, kW]``.
        layer (str): name from ``model.named_modules()``.
        path: write a PNG there when given.
        max_tiles (int): at most this many tiles (the first filters/channels).
        annotate (bool): print the weights on the cells (default: kernels up to 5x5 and <= 16 tiles).
        title (str): a line above the grid saying whose weights these are (e.g. "trained 5 epochs").

    Returns:
        matplotlib.figure.Figure (the colour bar is its last axes).

    Example:
        >>> import torch
        >>> fig = kernel_grid(torch.nn.Conv2d(2, 3, 3), layer=None)
        >>> sum(ax.get_visible() for ax in fig.axes[:-1]), fig.axes[-1].get_ylabel()
        (6, 'weight (white = 0)')
    """
    op = "kernel_grid"
    if isinstance(model, torch.Tensor):
        weight, name = model, "weight"
    elif isinstance(model, torch.nn.Module) and layer is None and getattr(model, "weight", None) is not None:
        weight, name = model.weight, type(model).__name__
    elif isinstance(model, torch.nn.Module):
        if layer is None:
            raise ValueError(f"{op}: layer is required for a model; choices: {', '.join(layer_names(model, 'conv'))}")
        weight, name = find_layer(model, layer, "conv", op).weight, layer
    else:
        raise TypeError(f"{op}: expected an nn.Module or a weight tensor, got {type(model).__name__}")
    if weight.dim() != 4:
        raise ValueError(f"{op}: expected a 2-D conv weight [C_out, C_in/groups, kH, kW], got shape {list(weight.shape)}")
    max_tiles = positive_int(max_tiles, "max_tiles", op)
    w = weight.detach().float().cpu()
    c_out, c_in, kh, kw = w.shape
    if c_in == 3:
        n = min(c_out, max_tiles)
        cols = min(n, 8)
        fig, axes = _figure(n, cols, 1.0, _title(title, f"{name}: {n} of {c_out} filters as RGB ({kh}x{kw}), "
                                                        f"each scaled to its own range"))
        for i, ax in enumerate(axes.flat[:n]):
            f = w[i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-12)
            ax.set_visible(True)
            ax.imshow(f.permute(1, 2, 0).numpy(), interpolation="nearest")
        return save_figure(fig, path)
    tiles = [(o, i) for o in range(c_out) for i in range(c_in)][:max_tiles]
    # one row per filter when the input channels fit on a row, else a plain 8-wide grid
    cols = c_in if 1 < c_in <= 8 else min(8, len(tiles))
    limit = max(float(w[o, i].abs().max()) for o, i in tiles) or 1.0  # the scale of what is shown
    annotate = (kh <= 5 and kw <= 5 and len(tiles) <= 16) if annotate is None else annotate
    shown = f"all {len(tiles)}" if len(tiles) == c_out * c_in else f"{len(tiles)} of {c_out * c_in}"
    fig, axes = _figure(len(tiles), cols, 1.2, _title(title, f"{name}: {shown} kernel slices ({c_out} filters x "
                                                             f"{c_in} input channel{'s' * (c_in != 1)}, {kh}x{kw})"))
    for ax, (o, i) in zip(axes.flat, tiles):
        ax.set_visible(True)
        image = ax.imshow(w[o, i].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"filter {o}" + (f", in {i}" if c_in > 1 else ""), fontsize=7, pad=2)
        if annotate:
            for (r, c), v in _cells(w[o, i]):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * limit else "black")
    _colorbar(fig, image, axes, "weight (white = 0)")
    return save_figure(fig, path)


def _title(first: str | None, rest: str) -> str:
    return f"{first}\n{rest}" if first else rest


def _cells(t):
    return (((i, j), float(v)) for i, row in enumerate(t) for j, v in enumerate(row))


def feature_map_grid(
    model,
    input,
    layer: str,
    path: Optional[Union[str, Path]] = None,
    *,
    max_maps: int = 32,
    show_input: bool = False,
    title: str | None = None,
):
    """The feature maps one layer outputs for ``input`` (first sample), one tile per channel.

    The maps are captured with a forward hook during one ``model(input)`` call
    (no gradients). All maps share one colour scale (the colour bar), so a bright
    map responds more than a dark one.

    Args:
        model (nn.Module): the model.
        input (Tensor[N, C, H, W]): what the model is run on.
        layer (str): name from ``model.named_modules()``.
        path: write a PNG there when given.
        max_maps (int): at most this many maps (the first channels).
        show_input (bool): draw the input (first sample, gray) as the first tile, for reference.
        title (str): a line above the grid (e.g. whose weights, which image).

    Returns:
        matplotlib.figure.Figure (the colour bar is its last axes).

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
        >>> fig = feature_map_grid(m, torch.randn(1, 1, 8, 8), "0")
        >>> sum(ax.get_visible() for ax in fig.axes[:-1]), fig.axes[-1].get_ylabel()
        (4, 'activation')
    """
    op = "feature_map_grid"
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{op}: expected an nn.Module, got {type(model).__name__}")
    max_maps = positive_int(max_maps, "max_maps", op)
    module = find_layer(model, layer, "any", op)
    captured = []
    handle = module.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        with torch.no_grad():
            model(input)
    finally:
        handle.remove()
    out = captured[0] if captured else None
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{op}: layer {layer!r} must output [N, C, H, W] feature maps, got {shape}")
    maps = out[0].float().cpu()
    n = min(maps.shape[0], max_maps)
    extra = 1 if show_input else 0
    cols = min(n + extra, 8)
    shown = f"all {n}" if n == maps.shape[0] else f"{n} of {maps.shape[0]}"
    fig, axes = _figure(n + extra, cols, 1.1, _title(title, f"{layer}: {shown} feature maps "
                                                            f"({maps.shape[1]}x{maps.shape[2]})"))
    tiles = list(axes.flat)
    if show_input:
        picture = input[0].detach().float().cpu().mean(0)
        tiles[0].set_visible(True)
        tiles[0].imshow(picture.numpy(), cmap="gray", interpolation="nearest")
        tiles[0].set_title("input", fontsize=7, pad=2, fontweight="bold")
    low, high = float(maps[:n].min()), float(maps[:n].max())
    for i, ax in enumerate(tiles[extra:extra + n]):
        ax.set_visible(True)
        image = ax.imshow(maps[i].numpy(), cmap="viridis", interpolation="nearest", vmin=low, vmax=high)
        ax.set_title(str(i), fontsize=7, pad=2)
    _colorbar(fig, image, axes, "activation")
    return save_figure(fig, path)
