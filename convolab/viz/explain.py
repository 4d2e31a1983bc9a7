"""Worked arithmetic as text, checkable by hand: a conv layer, a receptive field, parameters.

``explain_conv`` is CS231n's conv-layer demo: the output-size
formula with the numbers filled in, the input volume (padded), the filters,
and for every output element the element-wise products per channel, their
sums and the bias. The values come from :func:`convolab.functional.conv`;
the windows from convolab's windowing primitive; every size from
:mod:`convolab.arithmetic`.

``explain_receptive_field`` and ``explain_params`` take a layer list written as
``KIND:key=value,...`` strings, e.g. ``conv:c=32,k=3,p=1 pool:k=2 fc:n=10``:

- ``conv``: ``k`` kernel (required), ``s`` stride (1), ``p`` padding (int,
  ``same`` or ``valid``; 0), ``d`` dilation (1), ``c`` out channels (required
  for params), ``g`` groups (1), ``bias`` (1 or 0).
- ``pool`` (or ``maxpool``, ``avgpool``): ``k`` (required), ``s`` (= k), ``p`` (0), ``d`` (1).
- ``fc``: ``n`` out features (required), ``bias`` (1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from .. import arithmetic
from .._args import positive_int, suggest
from ..functional import conv2d
from ..functional._windows import pad_pairs
from .frames.cells import window_cells
from .frames.example import generator, sample_ints
from .frames.text import fmt, term

__all__ = ["Layer", "explain_conv", "explain_params", "explain_receptive_field", "parse_layer", "parse_layers"]

KINDS = {"conv": "conv", "pool": "pool", "maxpool": "pool", "avgpool": "pool", "fc": "fc"}
KEYS = {"conv": ("k", "s", "p", "d", "c", "g", "bias"), "pool": ("k", "s", "p", "d"), "fc": ("n", "bias")}


@dataclass(frozen=True)
class Layer:
    """One layer of a layer list (see the module docstring for the syntax)."""

    kind: str
    text: str
    kernel: int = 1
    stride: int = 1
    padding: Union[int, str] = 0
    dilation: int = 1
    channels: int | None = None
    groups: int = 1
    bias: bool = True


def _int(value: str, key: str, text: str, minimum: int) -> int:
    try:
        v = int(value)
    except ValueError:
        raise ValueError(f"explain: layer '{text}': {key} must be an int, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"explain: layer '{text}': {key} must be >= {minimum}, got {v}")
    return v


def parse_layer(text: str) -> Layer:
    """Parse one ``KIND:key=value,...`` layer.

    Example:
        >>> parse_layer("conv:c=64,k=3,s=2,p=same")
        Layer(kind='conv', text='conv:c=64,k=3,s=2,p=same', kernel=3, stride=2, padding='same', dilation=1, channels=64, groups=1, bias=True)
        >>> parse_layer("pool:k=2").stride
        2
    """
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if name not in KINDS:
        raise ValueError(
            f"explain: layer '{text}': kind must be one of {', '.join(KINDS)}, got {name!r}{suggest(name, KINDS)}"
        )
    kind = KINDS[name]
    values: dict[str, str] = {}
    for item in filter(None, (t.strip() for t in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"explain: layer '{text}': expected key=value, got {item!r}")
        if key not in KEYS[kind]:
            raise ValueError(
                f"explain: layer '{text}': key {key!r} does not apply to {kind} "
                f"(keys: {', '.join(KEYS[kind])}){suggest(key, KEYS[kind])}"
            )
        values[key] = value
    if kind == "fc":
        if "n" not in values:
            raise ValueError(f"explain: layer '{text}': fc needs n=<out features>")
        return Layer("fc", text, channels=_int(values["n"], "n", text, 1),
                     bias=bool(_int(values.get("bias", "1"), "bias", text, 0)))
    if "k" not in values:
        raise ValueError(f"explain: layer '{text}': {kind} needs k=<kernel size>")
    k = _int(values["k"], "k", text, 1)
    p_text = values.get("p", "0")
    padding: Union[int, str] = p_text.lower() if p_text.lower() in ("same", "valid") else _int(p_text, "p", text, 0)
    return Layer(
        kind,
        text,
        kernel=k,
        stride=_int(values.get("s", str(k) if kind == "pool" else "1"), "s", text, 1),
        padding=padding,
        dilation=_int(values.get("d", "1"), "d", text, 1),
        channels=_int(values["c"], "c", text, 1) if "c" in values else None,
        groups=_int(values.get("g", "1"), "g", text, 1),
        bias=bool(_int(values.get("bias", "1"), "bias", text, 0)),
    )


def parse_layers(texts: Sequence[str]) -> list[Layer]:
    """Parse a layer list (strings, or one string with layers separated by spaces or ';')."""
    items = [t for text in texts for t in text.replace(";", " ").split()]
    if not items:
        raise ValueError("explain: the layer list is empty; give layers like conv:k=3 pool:k=2")
    return [parse_layer(t) for t in items]


def _pads(layer: Layer, size: int | None) -> tuple[int, int]:
    """(before, after) padding of a window layer along one dim."""
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding == "same":
        if size is None:
            raise ValueError(f"explain: layer '{layer.text}': padding 'same' needs the input size (--input)")
        return arithmetic.same_padding(size, layer.kernel, layer.stride, layer.dilation)
    return (int(layer.padding), int(layer.padding))


def _out(layer: Layer, size: int) -> int:
    pads = _pads(layer, size)
    if layer.kind == "pool":
        return arithmetic.pool_output_size(size, layer.kernel, layer.stride, pads, layer.dilation, op=f"explain {layer.text}")
    return arithmetic.conv_output_size(size, layer.kernel, layer.stride, pads, layer.dilation, op=f"explain {layer.text}")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def explain_receptive_field(layers: Sequence[Union[str, Layer]], input_size: int | None = None) -> str:
    """The receptive field after every layer, with the recursion written out.

    ``r_out = r_in + (k_eff - 1) * j_in``, ``j_out = j_in * stride``,
    ``start_out = start_in + ((k_eff - 1)/2 - pad_before) * j_in`` (from
    :class:`convolab.arithmetic.ReceptiveField`). ``fc`` layers end the chain.

    Example:
        >>> print(explain_receptive_field(["conv:k=3", "conv:k=3", "conv:k=3"]).splitlines()[-1])
        3  conv:k=3  3  1  0  1  3  1  7 = 5 + (3-1)*1  3
    """
    parsed = [layer if isinstance(layer, Layer) else parse_layer(layer) for layer in layers]
    if input_size is not None:
        input_size = positive_int(input_size, "input size", "explain receptive-field")
    rf = arithmetic.ReceptiveField()
    size = input_size
    rows = []
    for i, layer in enumerate(parsed, 1):
        if layer.kind == "fc":
            raise ValueError(
                f"explain receptive-field: layer {i} '{layer.text}' is fully connected: its field is the whole input"
            )
        pads = _pads(layer, size)
        new = rf.conv(layer.kernel, layer.stride, pads, layer.dilation)
        k_eff = arithmetic.effective_kernel_size(layer.kernel, layer.dilation)
        size = _out(layer, size) if size is not None else None
        rows.append([
            str(i), layer.text, str(layer.kernel), str(layer.stride), _pad_str(pads), str(layer.dilation), str(k_eff),
            fmt(new.jump), f"{fmt(new.size)} = {fmt(rf.size)} + ({k_eff}-1)*{fmt(rf.jump)}", fmt(new.start),
        ] + ([str(size)] if size is not None else []))
        rf = new
    header = ["#", "layer", "k", "s", "pad", "d", "k_eff", "jump", "field size", "start"] + (
        ["out size"] if input_size is not None else [])
    intro = (
        "receptive field per layer (one spatial dim): size r = r_prev + (k_eff - 1) * jump_prev, "
        "jump = jump_prev * stride, k_eff = d*(k - 1) + 1; start = centre of the first unit's field "
        "(input pixel coordinates, negative = in the padding)"
    )
    return intro + "\n" + _table(header, rows)


def _pad_str(pads: tuple[int, int]) -> str:
    return str(pads[0]) if pads[0] == pads[1] else f"{pads[0]},{pads[1]}"


def _parse_volume(size: Union[str, Sequence[int]], op: str) -> tuple[int, int, int]:
    """``HxWxC`` as (H, W, C); all three are required (``3x224`` is not guessed to mean 3x224x1)."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{op}: input must look like HxWxC (e.g. 5x5x3), got {size!r}") from None
    else:
        dims = tuple(size)
    if len(dims) != 3 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{op}: input must be HxWxC, three positive ints (e.g. 5x5x3 or 28x28x1), got {size!r}")
    return dims  # type: ignore[return-value]


def explain_params(layers: Sequence[Union[str, Layer]], input_size: Union[str, Sequence[int]]) -> str:
    """Output shape, parameters and MACs of every layer, with the formulas filled in.

    Example:
        >>> print(explain_params(["conv:c=32,k=3", "pool:k=2", "fc:n=10"], "28x28x1").splitlines()[-1])
        total parameters: 54,410   total MACs: 248,768
    """
    op = "explain params"
    parsed = [layer if isinstance(layer, Layer) else parse_layer(layer) for layer in layers]
    h, w, c = _parse_volume(input_size, op)
    flat: int | None = None
    rows = []
    total_p = total_m = 0
    for i, layer in enumerate(parsed, 1):
        if layer.kind == "fc":
            features = flat if flat is not None else h * w * c
            p = arithmetic.linear_params(features, layer.channels, layer.bias)
            m = arithmetic.linear_macs(features, layer.channels)
            formula = f"{features}*{layer.channels}" + (f" + {layer.channels}" if layer.bias else "")
            macs = f"{features}*{layer.channels}"
            flat = layer.channels
            shape = str(flat)
        elif flat is not None:
            raise ValueError(f"{op}: layer {i} '{layer.text}' comes after a fully connected layer; put fc layers last")
        else:
            oh, ow = _out(layer, h), _out(layer, w)
            if layer.kind == "conv":
                if layer.channels is None:
                    raise ValueError(f"{op}: layer {i} '{layer.text}' needs c=<out channels>")
                if c % layer.groups or layer.channels % layer.groups:
                    raise ValueError(
                        f"{op}: layer {i} '{layer.text}': groups ({layer.groups}) must divide in channels ({c}) "
                        f"and out channels ({layer.channels})"
                    )
                p = arithmetic.conv_params(c, layer.channels, layer.kernel, layer.groups, layer.bias)
                m = arithmetic.conv_macs(c, layer.channels, layer.kernel, (oh, ow), layer.groups)
                cin = f"({c}/{layer.groups})" if layer.groups > 1 else str(c)
                formula = f"{layer.channels}*{cin}*{layer.kernel}*{layer.kernel}" + (
                    f" + {layer.channels}" if layer.bias else "")
                macs = f"{oh}*{ow}*{layer.channels}*{cin}*{layer.kernel}*{layer.kernel}"
                c = layer.channels
            else:
                p, m, formula, macs = 0, 0, "", ""  # no weights; comparisons/adds are not MACs
            h, w = oh, ow
            shape = f"{h}x{w}x{c}"
        total_p += p
        total_m += m
        rows.append([str(i), layer.text, shape, f"{formula} = {p:,}" if formula else "0",
                     f"{macs} = {m:,}" if macs else "0"])
    table = _table(["#", "layer", "output HxWxC", "parameters", "MACs"], rows)
    return (
        f"input {'x'.join(map(str, _parse_volume(input_size, op)))}; conv params = C_out*(C_in/groups)*k*k + C_out, "
        f"MACs = H_out*W_out*C_out*(C_in/groups)*k*k; fc params = M*N + N\n"
        f"{table}\ntotal parameters: {total_p:,}   total MACs: {total_m:,}"
    )


def explain_conv(
    input_size: Union[str, Sequence[int]] = "5x5x3",
    filters: int = 2,
    kernel_size: int = 3,
    stride: int = 1,
    padding: Union[int, str] = 0,
    dilation: int = 1,
    *,
    seed: int = 0,
) -> str:
    """A conv layer computed by hand: CS231n's demo (``5x5x3``, 2 filters 3x3, stride 2, padding 1).

    Input values are integers in [0, 2], weights in [-1, 1], biases in [0, 1]
    (seeded), so every line can be checked by hand; the output values are those
    of :func:`convolab.functional.conv2d`.

    Example:
        >>> text = explain_conv("5x5x3", 2, 3, stride=2, padding=1)
        >>> print(text.splitlines()[1])
        output size: W_out = floor((W + P_before + P_after - D*(K - 1) - 1) / S) + 1 = floor((5 + 1 + 1 - 1*(3 - 1) - 1) / 2) + 1 = 3
    """
    op = "explain conv"
    h, w, c = _parse_volume(input_size, op)
    for name, v in (("filters", filters), ("kernel", kernel_size), ("stride", stride), ("dilation", dilation)):
        positive_int(v, name, op)
    if h * w * c > 4096 or filters > 16:
        raise ValueError(f"{op}: keep it checkable by hand: at most 4096 input values and 16 filters, "
                         f"got {h}x{w}x{c} and {filters}")
    pads = arithmetic.resolve_padding(padding, (h, w), kernel_size, stride, dilation, op=op)
    oh, ow = arithmetic.conv_output_shape((h, w), kernel_size, stride, pads, dilation, op=op)
    gen = generator(seed)
    x = sample_ints((1, c, h, w), 0, 2, gen)
    wt = sample_ints((filters, c, kernel_size, kernel_size), -1, 1, gen)
    b = sample_ints((filters,), 0, 1, gen)
    y = conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation)[0]
    xp = pad_pairs(x[0], pads)
    cells = window_cells(tuple(xp.shape[1:]), (kernel_size,) * 2, (stride,) * 2, (dilation,) * 2)
    (pt, pb), (pl, pr) = pads

    lines = [
        f"conv layer: input {h}x{w}x{c} (H x W x C), {filters} filters {kernel_size}x{kernel_size}x{c}, "
        f"stride {stride}, padding {_pad_label(padding, pads)}, dilation {dilation}, seed {seed}",
        f"output size: W_out = floor((W + P_before + P_after - D*(K - 1) - 1) / S) + 1 = "
        f"floor(({w} + {pl} + {pr} - {dilation}*({kernel_size} - 1) - 1) / {stride}) + 1 = {ow}",
    ]
    if (h, pt, pb) != (w, pl, pr):
        lines.append(f"             H_out = floor(({h} + {pt} + {pb} - {dilation}*({kernel_size} - 1) - 1) / {stride}) + 1 = {oh}")
    lines.append(f"output volume: {oh}x{ow}x{filters}   (CS231n form for P each side, D = 1: (W - F + 2P)/S + 1)")
    lines.append(f"parameters: {filters}*({kernel_size}*{kernel_size}*{c}) + {filters} = "
                 f"{arithmetic.conv_params(c, filters, kernel_size)}")
    lines.append("")
    lines.append(f"input volume (padded with zeros: top {pt}, bottom {pb}, left {pl}, right {pr}):")
    for ch in range(c):
        lines.append(f"x[:, :, {ch}]")
        lines += _matrix(xp[ch])
    for f in range(filters):
        lines.append("")
        lines.append(f"filter w{f} ({kernel_size}x{kernel_size}x{c}), bias b{f} = {fmt(float(b[f]))}")
        for ch in range(c):
            lines.append(f"w{f}[:, :, {ch}]")
            lines += _matrix(wt[f, ch])
    lines.append("")
    lines.append("output volume (convolab.functional.conv2d):")
    for f in range(filters):
        lines.append(f"o[:, :, {f}]")
        lines += _matrix(y[f])
    lines.append("")
    lines.append("every output element by hand: for each channel, the window's values times the filter's weights")
    flat_x = xp.reshape(c, -1)
    for f in range(filters):
        for i in range(oh):
            for j in range(ow):
                idx = cells[i, j].tolist()
                r0, c0 = divmod(idx[0], xp.shape[2])
                r1, c1 = divmod(idx[-1], xp.shape[2])
                lines.append(f"o[{i},{j},{f}]  (window rows {r0}-{r1}, cols {c0}-{c1} of the padded input)")
                sums = []
                for ch in range(c):
                    vals = flat_x[ch, idx].tolist()
                    taps = wt[f, ch].flatten().tolist()
                    s = sum(v * t for v, t in zip(vals, taps))
                    sums.append(s)
                    terms = " + ".join(f"{term(v)}*{term(t)}" for v, t in zip(vals, taps))
                    lines.append(f"  channel {ch}: {terms} = {fmt(s)}")
                lines.append(
                    f"  sum: {' + '.join(term(s) for s in sums)} + b{f} ({fmt(float(b[f]))}) "
                    f"= {fmt(float(y[f, i, j]))}"
                )
    return "\n".join(lines)


def _pad_label(padding: Union[int, str], pads) -> str:
    return f"'{padding}' -> {pads}" if isinstance(padding, str) else str(padding)


def _matrix(t) -> list[str]:
    rows = [[fmt(float(v)) for v in row] for row in t.tolist()]
    width = max(len(v) for row in rows for v in row)
    return ["  " + " ".join(v.rjust(width) for v in row) for row in rows]
