"""Receptive fields: the value object :class:`ReceptiveField` and the recursion over a chain of windows.

Per spatial dim, a unit sees ``size`` input pixels (``r``), neighbouring units are ``jump``
input pixels apart (``j``) and the first unit's field is centred at ``start`` (``s``).
A window with ``k_eff = dilation*(kernel - 1) + 1`` gives::

    j_out = j_in * stride
    r_out = r_in + (k_eff - 1) * j_in
    s_out = s_in + ((k_eff - 1)/2 - before) * j_in

Every other op (transposed conv, interpolation, adaptive pooling) follows one general rule,
:meth:`ReceptiveField.resample`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

from .._args import DimPadding, padding_pair, positive_int
from .sizes import effective_kernel_size

__all__ = ["ReceptiveField", "interpolation_rate", "receptive_fields"]


def interpolation_rate(
    in_size: int, out_size: int, align_corners: bool = False, scale: Optional[float] = None
) -> Fraction:
    """Input units per output unit of PyTorch's interpolation grid (exact, as a fraction).

    ``(in - 1)/(out - 1)`` with ``align_corners``; else ``1/scale`` when a scale
    factor was given (PyTorch samples with it, not with the rounded sizes), else ``in/out``.

    >>> interpolation_rate(7, 14), interpolation_rate(7, 13, align_corners=True)
    (Fraction(1, 2), Fraction(1, 2))
    >>> interpolation_rate(10, 15, scale=1.5)
    Fraction(2, 3)
    """
    op = "interpolation_rate"
    n = positive_int(in_size, "input size", op)
    m = positive_int(out_size, "output size", op)
    if align_corners:
        return Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
    if scale is not None and scale > 0:
        return 1 / Fraction(scale).limit_denominator(1 << 20)
    return Fraction(n, m)


def _num(x: Union[Fraction, float, int]) -> Union[int, float]:
    """An exact value as an int when whole, else a float (fields print as 212, not 212.0)."""
    return int(x) if x == int(x) else float(x)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one unit along one dim, in input coordinates.

    Attributes:
        size: how many input pixels the unit sees (``r``).
        jump: distance in input pixels between adjacent units (the effective stride, ``j``).
        start: input coordinate of the centre of the first unit's field (``s``);
            negative values mean the field starts in the padding.
    """

    size: float = 1
    jump: float = 1
    start: float = 0.0

    def conv(
        self, kernel_size: int, stride: int = 1, padding: DimPadding = 0, dilation: int = 1
    ) -> "ReceptiveField":
        """Field after a conv/pool window (one line of the recursion)."""
        op = "receptive_field"
        k = effective_kernel_size(kernel_size, dilation)
        s = positive_int(stride, "stride", op)
        before, _ = padding_pair(padding, op)
        return ReceptiveField(
            size=self.size + (k - 1) * self.jump,
            jump=self.jump * s,
            start=self.start + ((k - 1) / 2 - before) * self.jump,
        )

    @property
    def effective_padding(self) -> float:
        """How far the first unit's field reaches before input pixel 0: ``(size - 1)/2 - start``.

        For a chain of windows it equals Araujo et al.'s ``sum_l p_l * prod_{i<l} s_i``.

        >>> receptive_fields([(3, 1, 1), (3, 2, 1)])[-1].effective_padding
        2.0
        """
        return (self.size - 1) / 2 - self.start

    @property
    def bounds(self) -> tuple[float, float]:
        """Input coordinates of the first and last pixel centre the first unit sees."""
        half = (self.size - 1) / 2
        return (self.start - half, self.start + half)

    def transposed_conv(
        self, kernel_size: int, stride: int = 1, padding: DimPadding = 0, dilation: int = 1
    ) -> "ReceptiveField":
        """Field after a transposed convolution: a conv of stride 1 on the zero-inserted input.

        The jump becomes ``j/stride``. Output unit ``o`` sees the inputs ``i`` with
        ``o = i*stride - before + t*dilation`` for a tap ``t``; the field follows
        :meth:`resample` (centres on the line fitted through the phases, size the
        smallest that holds every phase's inputs). For stride 1 it is the conv rule
        with padding ``dilation*(kernel - 1) - before``; for the common kernel 4,
        stride 2, padding 1 it adds ``1.5*j_in`` (the span of the kernel in input units).

        >>> ReceptiveField().transposed_conv(4, stride=2, padding=1)
        ReceptiveField(size=2.5, jump=0.5, start=-0.25)
        >>> ReceptiveField(size=4, jump=2, start=0.5).transposed_conv(2, stride=2)
        ReceptiveField(size=5, jump=1, start=0)
        """
        op = "receptive_field"
        k = positive_int(kernel_size, "kernel_size", op)
        s = positive_int(stride, "stride", op)
        d = positive_int(dilation, "dilation", op)
        before, _ = padding_pair(padding, op)

        def taps(o: int) -> list[int]:
            return [(o + before - t * d) // s for t in range(k) if (o + before - t * d) % s == 0]

        return self.resample(Fraction(1, s), taps, period=s)

    def resample(
        self, rate: Union[Fraction, int], taps: "Callable[[int], Sequence[Union[int, Fraction]]]", period: int
    ) -> "ReceptiveField":
        """Field after any op whose output unit ``o`` reads input units ``taps(o)``.

        The one rule behind transposed conv, interpolation and adaptive pooling.
        ``rate`` is input units per output unit (``a``); ``taps`` repeats with
        ``period`` (``taps(o + period) = taps(o) + a*period``). The centre of unit
        ``o`` is ``a*o + b`` (``b`` averages the phases, so centres are exact on
        average); the size is the smallest that holds every phase's inputs:

            j_out = a * j_in;  s_out = s_in + b * j_in;  r_out = r_in + 2*h * j_in
            b = mean_o(mid(taps(o)) - a*o);  h = max_o max(hi - (a*o + b), (a*o + b) - lo)

        For a conv window (``taps(o) = [o*s - before, o*s - before + k_eff - 1]``,
        period 1) it is exactly :meth:`conv`.

        >>> rf = ReceptiveField(size=3, jump=1, start=0)
        >>> rf.resample(2, lambda o: [2 * o - 1, 2 * o + 1], period=1) == rf.conv(3, 2, 1)
        True
        """
        a = Fraction(rate)
        spans = [(o, min(t), max(t)) for o in range(positive_int(period, "period", "resample"))
                 if (t := [Fraction(v) for v in taps(o)])]
        if not spans:
            raise ValueError("resample: no output unit reads any input unit (every phase has no taps)")
        b = sum((lo + hi) / 2 - a * o for o, lo, hi in spans) / len(spans)
        h = max(max(hi - (a * o + b), (a * o + b) - lo) for o, lo, hi in spans)
        return ReceptiveField(
            size=_num(self.size + 2 * h * Fraction(self.jump)),
            jump=_num(a * Fraction(self.jump)),
            start=_num(Fraction(self.start) + b * Fraction(self.jump)),
        )

    def adaptive_pool(self, in_size: int, out_size: int) -> "ReceptiveField":
        """Field after adaptive pooling from ``in_size`` to ``out_size`` units (PyTorch's windows).

        Unit ``o`` pools ``[floor(o*in/out), ceil((o+1)*in/out) - 1]``; ``out_size = 1``
        is global pooling (the field covers every unit).

        >>> ReceptiveField(size=3, jump=2, start=0).adaptive_pool(7, 1)
        ReceptiveField(size=15, jump=14, start=6)
        >>> ReceptiveField().adaptive_pool(8, 4) == ReceptiveField().conv(2, 2)
        True
        """
        n = positive_int(in_size, "input size", "adaptive_pool")
        m = positive_int(out_size, "output size", "adaptive_pool")

        def taps(o: int) -> list[int]:
            return [o * n // m, -(-(o + 1) * n // m) - 1]

        return self.resample(Fraction(n, m), taps, period=m // math.gcd(n, m))

    def interpolate(
        self, in_size: int, out_size: int, mode: str = "nearest", align_corners: bool = False,
        scale: Optional[float] = None,
    ) -> "ReceptiveField":
        """Field after ``torch.nn.functional.interpolate`` along one dim (PyTorch's sampling grid).

        The source coordinate of output unit ``o`` is ``x = o*a`` (nearest),
        ``(o + 0.5)*a`` (nearest-exact, floored) or ``(o + 0.5)*a - 0.5`` (linear,
        cubic), or ``o*a`` with ``a = (in - 1)/(out - 1)`` when ``align_corners``;
        ``a = 1/scale`` when the scale factor is given, else ``in/out`` (see
        :func:`interpolation_rate`). Linear reads 2 neighbours, cubic 4; borders
        (where PyTorch clamps) do not change the field, as padding does not.

        >>> ReceptiveField().interpolate(4, 8, "nearest")
        ReceptiveField(size=1.5, jump=0.5, start=-0.25)
        >>> ReceptiveField().interpolate(4, 8, "bilinear") == ReceptiveField().transposed_conv(4, 2, 1)
        True
        """
        op = "interpolate"
        n = positive_int(in_size, "input size", op)
        m = positive_int(out_size, "output size", op)
        a = interpolation_rate(n, m, align_corners, scale)
        base = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
        if base not in ("nearest", "nearest-exact", "linear", "cubic"):
            raise ValueError(
                f"{op}: mode must be nearest, nearest-exact, (bi/tri)linear or bicubic, got {mode!r}"
            )
        shift = Fraction(0) if align_corners or base == "nearest" else Fraction(1, 2)

        def taps(o: int) -> list[Fraction]:
            x = (o + shift) * a - (shift if base in ("linear", "cubic") else 0)
            lo = math.floor(x)
            if base.startswith("nearest"):
                return [lo]
            if base == "linear":
                return [lo, lo + 1] if x != lo else [lo]
            return [lo - 1, lo + 2]

        return self.resample(a, taps, period=min(a.denominator, m))

    def slice(self, begin: int = 0, step: int = 1) -> "ReceptiveField":
        """Field of ``x[begin::step]`` along this dim (cropping and subsampling).

        >>> ReceptiveField(size=5, jump=2, start=1).slice(2, 3)
        ReceptiveField(size=5, jump=6, start=5)
        """
        return ReceptiveField(self.size, self.jump * step, self.start + begin * self.jump)

    def aligned_with(self, other: "ReceptiveField", tol: float = 1e-9) -> bool:
        """Same jump and same centres: units of two branches see fields centred at the same pixel."""
        return abs(self.jump - other.jump) <= tol * max(1, abs(self.jump)) and abs(
            self.start - other.start
        ) <= tol * max(1, abs(self.start))

    def union(self, *others: "ReceptiveField") -> "ReceptiveField":
        """Field of a merge (add, concat) of branches: the union of their regions.

        Branches must have the same jump (else units do not correspond and there
        is no single field: ``ValueError``). Centres that differ are *misaligned*
        (Araujo et al.): the union is still well defined and returned, and the
        caller should report the offset (:meth:`aligned_with`).

        >>> ReceptiveField(3, 1, 0).union(ReceptiveField(5, 1, 0))
        ReceptiveField(size=5, jump=1, start=0)
        >>> ReceptiveField(3, 2, 1).union(ReceptiveField(3, 2, 0))
        ReceptiveField(size=4, jump=2, start=0.5)
        """
        lo, hi = self.bounds
        for other in others:
            if abs(self.jump - other.jump) > 1e-9 * max(1, abs(self.jump)):
                raise ValueError(
                    f"receptive_field: branches with different jumps ({_num(self.jump)} and "
                    f"{_num(other.jump)}) cannot be merged: their units do not correspond"
                )
            olo, ohi = other.bounds
            lo, hi = min(lo, olo), max(hi, ohi)
        if all(o.aligned_with(self) for o in others):
            return ReceptiveField(max([self.size, *(o.size for o in others)]), self.jump, self.start)
        return ReceptiveField(_num(hi - lo + 1), self.jump, _num((lo + hi) / 2))


LayerSpec = Union[Sequence[int], dict]


def receptive_fields(
    layers: Sequence[LayerSpec], input_field: ReceptiveField = ReceptiveField()
) -> list[ReceptiveField]:
    """Receptive field after each layer of a chain of windows along one dim.

    Each layer is ``(kernel, stride, padding[, dilation])`` or a dict with those keys.
    The recursion is ``R_i = (k_i - 1) * prod(strides of layers 1..i-1) + R_{i-1}``: the product runs
    over the *previous* layers' strides (a layer's own stride spaces its outputs, it does not widen
    what one output sees).

    >>> [(rf.size, rf.jump) for rf in receptive_fields([(3, 1, 1), (2, 2, 0), (3, 1, 1)])]
    [(3, 1), (4, 2), (8, 2)]
    """
    out = []
    rf = input_field
    for i, layer in enumerate(layers):
        if isinstance(layer, dict):
            rf = rf.conv(
                layer["kernel"], layer.get("stride", 1), layer.get("padding", 0), layer.get("dilation", 1)
            )
        elif isinstance(layer, Sequence) and 1 <= len(layer) <= 4:
            rf = rf.conv(*layer)
        else:
            raise ValueError(
                f"receptive_fields: layer {i} must be (kernel, stride, padding[, dilation]) "
                f"or a dict, got {layer!r}"
            )
        out.append(rf)
    return out
