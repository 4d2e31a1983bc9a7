"""The result of an ablation: one row per variant, rendered as text, markdown, JSON, CSV or a plot.

Data and rendering are apart (as :class:`convolab.analysis.Summary`): :class:`AblationTable`
holds numbers; ``to_markdown``/``to_csv``/``to_json``/``columns``+``cells`` render them and
:meth:`AblationTable.plot` draws accuracy against MACs (marker area proportional to parameters).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union


@dataclass(frozen=True)
class AblationRow:
    """One variant: its cost (from convolab.analysis), its accuracy over seeds and its speed here.

    Attributes:
        axis, variant: what was swapped, e.g. ``"conv"``, ``"depthwise_separable"``.
        params: trainable and frozen parameters of the whole network.
        macs: multiply-accumulates of one image (convolutions and matrix products).
        receptive_field: size per spatial dim of a unit of the last feature map, in input pixels
            (``None`` when the analysis cannot tell, e.g. a layer it does not know).
        accuracies: held-out accuracy of each seed's final epoch, in seed order.
        seeds: the random seeds, in the order of ``accuracies``.
        epoch_seconds: mean wall time of one training epoch over every run of the variant.
        latency_ms: median inference time of one image (batch 1) on this machine.
    """

    axis: str
    variant: str
    params: int
    macs: int
    receptive_field: Optional[tuple[int, ...]]
    accuracies: tuple[float, ...]
    seeds: tuple[int, ...]
    epoch_seconds: float
    latency_ms: float

    @property
    def accuracy(self) -> float:
        """Mean held-out accuracy over the random seeds."""
        return statistics.fmean(self.accuracies)

    @property
    def accuracy_std(self) -> Optional[float]:
        """Sample standard deviation over the random seeds (``None`` for a single seed)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else None

    @property
    def name(self) -> str:
        return f"{self.axis}={self.variant}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["receptive_field"] = None if self.receptive_field is None else list(self.receptive_field)
        d.update(accuracies=list(self.accuracies), seeds=list(self.seeds),
                 accuracy=self.accuracy, accuracy_std=self.accuracy_std)
        return d


COLUMNS = ("variant", "params", "MACs", "RF", "accuracy", "s/epoch", "ms/image")


def _rf(rf: Optional[tuple[int, ...]]) -> str:
    if rf is None:
        return "?"
    return f"{rf[0]:g}" if len(set(rf)) == 1 else "x".join(f"{r:g}" for r in rf)


def _accuracy(row: AblationRow) -> str:
    std = row.accuracy_std
    return f"{row.accuracy:.2%}" + ("" if std is None else f" ± {std:.2%}")


@dataclass(frozen=True)
class AblationTable:
    """Rows in the order the variants were asked for, and the settings every run shared."""

    base: str
    rows: tuple[AblationRow, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    columns = COLUMNS

    def cells(self) -> list[tuple[str, ...]]:
        """The rows as display strings, one per column of :attr:`columns`."""
        return [
            (r.name, f"{r.params:,}", f"{r.macs:,}", _rf(r.receptive_field), _accuracy(r),
             f"{r.epoch_seconds:.2f}", f"{r.latency_ms:.3f}")
            for r in self.rows
        ]

    @property
    def title(self) -> str:
        s = self.settings
        seeds = s.get("seeds", ())
        return (f"Ablation of {self.base} on {s.get('data', '?')}: {s.get('epochs', '?')} epoch{'s' if s.get('epochs') != 1 else ''}, "
                f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} per variant")

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(self.columns) - 1)) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in self.cells()]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "settings": self.settings, "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AblationTable":
        """The inverse of :meth:`to_dict` (e.g. to re-render a saved ``table.json``)."""
        derived = ("accuracy", "accuracy_std")
        rows = []
        for r in d["rows"]:
            r = {k: v for k, v in r.items() if k not in derived}
            rf = r["receptive_field"]
            r.update(receptive_field=None if rf is None else tuple(rf), accuracies=tuple(r["accuracies"]),
                     seeds=tuple(r["seeds"]))
            rows.append(AblationRow(**r))
        return cls(d["base"], tuple(rows), dict(d.get("settings", {})))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "AblationTable":
        """Read a ``table.json`` written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        fields = ["axis", "variant", "params", "macs", "receptive_field", "accuracy", "accuracy_std",
                  "accuracies", "seeds", "epoch_seconds", "latency_ms"]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            d = r.to_dict()
            d["receptive_field"] = _rf(r.receptive_field)
            d["accuracies"] = " ".join(f"{a:.4f}" for a in r.accuracies)
            d["seeds"] = " ".join(map(str, r.seeds))
            writer.writerow({k: d[k] for k in fields})
        return buffer.getvalue()

    def __str__(self) -> str:
        cells = [self.columns, *self.cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [self.title]
        for row in cells:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        return "\n".join(lines)

    def plot(self, path: Union[str, Path]) -> Path:
        """Save accuracy (mean, with the standard deviation over random seeds as error bars) against MACs.

        Marker area is proportional to the parameter count; each marker is labelled with its
        variant. Needs matplotlib (the ``viz`` extra).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        most = max((r.params for r in self.rows), default=1)
        least = min((r.params for r in self.rows), default=1)
        axes_order = list(dict.fromkeys(r.axis for r in self.rows))
        colors = plt.get_cmap("tab10")
        several_axes = len(axes_order) > 1
        points = []
        for i, r in enumerate(self.rows):
            x, y = r.macs / 1e6, 100 * r.accuracy
            color = colors(axes_order.index(r.axis) % 10) if several_axes else colors(i % 10)
            ax.errorbar(x, y, yerr=100 * (r.accuracy_std or 0), fmt="none", ecolor="0.35", capsize=3, zorder=1)
            ax.scatter(x, y, s=40 + 900 * r.params / most, color=color, alpha=0.6, edgecolors="black",
                       linewidths=0.6, zorder=2)
            points.append((x, y, r.name if several_axes else r.variant))
        ax.margins(x=0.2, y=0.2)
        ax.autoscale_view()
        # labels go right of their point; one that would overlap a placed label moves to the nearest
        # free line above or below (greedy, in display pixels) with a leader line to its point
        line = 11 * fig.dpi / 72
        placed: list[tuple[float, float]] = []
        for x, y, label in sorted(points, key=lambda p: -p[1]):
            px, py = ax.transData.transform((x, y))
            for step in (0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6):
                ty = py + step * line
                if not any(abs(px - qx) < 150 and abs(ty - qy) < line for qx, qy in placed):
                    break
            placed.append((px, ty))
            leader = dict(arrowstyle="-", color="0.5", lw=0.5) if ty != py else None
            ax.annotate(label, (x, y), xytext=(10, (ty - py) * 72 / fig.dpi), textcoords="offset points",
                        fontsize=8, va="center", arrowprops=leader)
        if several_axes:
            for i, axis in enumerate(axes_order):
                ax.scatter([], [], s=40, color=colors(i % 10), alpha=0.6, edgecolors="black", label=axis)
            ax.legend(fontsize=8, title="axis", title_fontsize=8, loc="best")
        ax.set_xlabel("MACs per image (millions)")
        ax.set_ylabel("held-out accuracy (%), mean ± std over seeds")
        ax.set_title(f"{self.title}\nmarker area ~ parameters ({least:,} to {most:,})", fontsize=9)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        return path

    def save(self, out: Union[str, Path], plot: bool = True) -> dict[str, Path]:
        """Write ``table.md``, ``table.json``, ``table.csv`` (and ``accuracy_vs_macs.png``) into ``out``."""
        from ..train.checkpoint import atomic_write_text

        out = Path(out)
        written = {
            "markdown": atomic_write_text(out / "table.md", f"{self.title}\n\n{self.to_markdown()}"),
            "json": atomic_write_text(out / "table.json", self.to_json()),
            "csv": atomic_write_text(out / "table.csv", self.to_csv()),
        }
        if plot:
            written["plot"] = self.plot(out / "accuracy_vs_macs.png")
        return written

