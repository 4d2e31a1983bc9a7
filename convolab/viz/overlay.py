"""Receptive-field overlay: the theoretical field of a unit and the effective (gradient) field, on an image.

Both come from :mod:`convolab.analysis`: the theoretical field from
:func:`~convolab.analysis.receptive_field` (size, jump, start per dim; the
unit's span is the first unit's ``bounds`` shifted by ``index * jump``, via
:meth:`ReceptiveField.slice`), the effective field from
:func:`~convolab.analysis.effective_receptive_field` (``|d unit / d input|``
of the centre unit, Luo et al. 2016). The data is returned first
(:class:`FieldOverlay`), the figure drawn from it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from ..analysis import effective_receptive_field, summary

__all__ = ["FieldOverlay", "receptive_field_data", "receptive_field_overlay"]


@dataclass(frozen=True)
class FieldOverlay:
    """What the overlay shows.

    Attributes:
        layer: the layer's qualified name.
        unit: spatial index of the unit in the layer's output.
        output_size: the layer's spatial output size.
        box: per spatial dim, ``(first, last)`` input coordinate the unit sees (may lie in the padding).
        fields: the layer's :class:`~convolab.arithmetic.ReceptiveField` per dim.
        heat: the effective field ``[*spatial]`` (sums to 1), a tensor.
    """

    layer: str
    unit: tuple[int, ...]
    output_size: tuple[int, ...]
    box: tuple[tuple[float, float], ...]
    fields: tuple
    heat: object


def _image(image, op: str):
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise TypeError(f"{op}: image must be a floating-point tensor [C, H, W] or [1, C, H, W], "
                        f"got {getattr(image, 'dtype', type(image).__name__)}")
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"{op}: image must be [C, H, W] or [1, C, H, W], got shape {list(image.shape)}")
    return image


def receptive_field_data(model, image, layer: str, unit: Optional[Sequence[int]] = None) -> FieldOverlay:
    """The theoretical and effective field of ``unit`` of ``layer`` for ``image``.

    ``unit`` is the spatial index in the layer's output (default: its centre); the
    effective field is measured at that same unit.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 1, 3))
        >>> d = receptive_field_data(net, torch.randn(1, 9, 9), "1")
        >>> d.unit, d.box
        ((2, 2), ((2.0, 6.0), (2.0, 6.0)))
    """
    op = "receptive_field_overlay"
    x = _image(image, op)
    try:
        row = summary(model, tuple(x.shape)).row(layer)
    except ValueError as exc:
        raise ValueError(str(exc).replace("summary:", f"{op}:", 1)) from None
    if row.fields is None:
        raise ValueError(f"{op}: the receptive field of {layer!r} is unknown: "
                         f"{row.problem or 'its output has no spatial dims'}")
    out = tuple(row.output_shapes[0][2:])
    centre = tuple(s // 2 for s in out)
    unit = centre if unit is None else tuple(unit)
    if len(unit) != len(out) or any(not isinstance(u, int) or not 0 <= u < s for u, s in zip(unit, out)):
        raise ValueError(f"{op}: unit must be {len(out)} indices inside the output {out}, got {unit!r}")
    box = tuple(tuple(float(v) for v in rf.slice(u).bounds) for rf, u in zip(row.fields, unit))
    heat = effective_receptive_field(model, x, layer, unit=unit)
    return FieldOverlay(layer, unit, out, box, tuple(row.fields), heat)


def receptive_field_overlay(
    model,
    image,
    layer: str,
    unit: Optional[Sequence[int]] = None,
    path: Optional[Union[str, Path]] = None,
    *,
    title: Optional[str] = None,
):
    """Draw the image, the effective field as a heat map over it, and the theoretical field as a box.

    ``title`` is a first line saying whose weights and which image (e.g. "trained 5 epochs, a 3").
    The PNG is cropped to what is drawn.

    Returns:
        matplotlib.figure.Figure (also written as PNG to ``path`` when given).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.Conv2d(1, 1, 3))
        >>> fig = receptive_field_overlay(net, torch.randn(1, 9, 9), "1")
        >>> [p.get_width() for p in fig.axes[0].patches]
        [5.0]
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    data = receptive_field_data(model, image, layer, unit)
    x = _image(image, "receptive_field_overlay")[0].detach().float()
    if len(data.box) != 2:
        raise ValueError(f"receptive_field_overlay: draws 2-D images, got {len(data.box)} spatial dims")
    picture = x.mean(0) if x.shape[0] != 3 else x.permute(1, 2, 0)
    picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-12)
    fig = Figure(figsize=(5.6, 5.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(picture.numpy(), cmap="gray", interpolation="nearest")
    heat = data.heat.detach().float()
    masked = heat.masked_fill(heat <= 0, float("nan"))
    shown = ax.imshow((masked / heat.max().clamp_min(1e-12)).numpy(), cmap="inferno", alpha=0.6,
                      interpolation="nearest", vmin=0, vmax=1)
    (r0, r1), (c0, c1) = data.box
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor="#00e5ff",
                           linewidth=2, linestyle="--"))
    h, w = picture.shape[:2]
    ax.set_xlim(min(-0.5, c0 - 1), max(w - 0.5, c1 + 1))
    ax.set_ylim(max(h - 0.5, r1 + 1), min(-0.5, r0 - 1))
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="effective field (|gradient|, max = 1)")
    sizes = "x".join(f"{rf.size:g}" for rf in data.fields)
    jumps = "x".join(f"{rf.jump:g}" for rf in data.fields)
    lines = [*(title.splitlines() if title else []), f"{data.layer} unit {data.unit} of {data.output_size}: theoretical "
             f"field {sizes} (dashed box, jump {jumps}), effective field (heat)"]
    ax.set_title("\n".join(textwrap.fill(line, 64) for line in lines), fontsize=9)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.08)
    return fig
