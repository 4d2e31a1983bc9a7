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
    """One variant: its cost (from convolab.analysis), its accuracy over random seeds and its speed here.

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
        size_accuracies: held-out accuracy of each seed at other image sizes (``{size: (per
            seed)}``; only for a study of the ``train_sizes`` axis, else ``None``).
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
    size_accuracies: Optional[dict[int, tuple[float, ...]]] = None

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
        if self.size_accuracies is None:
            d.pop("size_accuracies")
        else:
            d["size_accuracies"] = {str(k): list(v) for k, v in sorted(self.size_accuracies.items())}
        return d


COLUMNS = ("variant", "params", "MACs", "RF", "accuracy", "s/epoch", "ms/image")


def _rf(rf: Optional[tuple[int, ...]]) -> str:
    if rf is None:
        return "?"
    return f"{rf[0]:g}" if len(set(rf)) == 1 else "x".join(f"{r:g}" for r in rf)


def _accuracy(row: AblationRow) -> str:
    std = row.accuracy_std
    return f"{row.accuracy:.2%}" + ("" if std is None else f" ± {std:.2%}")


def _mean(accuracies: Optional[dict[int, tuple[float, ...]]], size: int) -> str:
    if not accuracies or size not in accuracies:
        return "—"
    return f"{statistics.fmean(accuracies[size]):.2%}"


@dataclass(frozen=True)
class AblationTable:
    """Rows in the order the variants were asked for, and the settings every run shared."""

    base: str
    rows: tuple[AblationRow, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        """The image sizes of the ``@size`` accuracy columns (a ``train_sizes`` study), ascending."""
        return sorted({s for r in self.rows for s in (r.size_accuracies or {})})

    @property
    def columns(self) -> tuple[str, ...]:
        """Column headers: :data:`COLUMNS`, and ``acc@S`` per image size of a ``train_sizes`` study."""
        return (*COLUMNS[:5], *(f"acc@{s}" for s in self.sizes), *COLUMNS[5:])

    def cells(self) -> list[tuple[str, ...]]:
        """The rows as display strings, one per column of :attr:`columns`."""
        return [
            (r.name, f"{r.params:,}", f"{r.macs:,}", _rf(r.receptive_field), _accuracy(r),
             *(_mean(r.size_accuracies, s) for s in self.sizes), f"{r.epoch_seconds:.2f}", f"{r.latency_ms:.3f}")
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
            if r.get("size_accuracies") is not None:
                r["size_accuracies"] = {int(k): tuple(v) for k, v in r["size_accuracies"].items()}
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
                  "accuracies", "seeds", "epoch_seconds", "latency_ms", *(f"accuracy@{s}" for s in self.sizes)]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            d = r.to_dict()
            d["receptive_field"] = _rf(r.receptive_field)
            d["accuracies"] = " ".join(f"{a:.4f}" for a in r.accuracies)
            d["seeds"] = " ".join(map(str, r.seeds))
            for size in self.sizes:
                found = (r.size_accuracies or {}).get(size)
                d[f"accuracy@{size}"] = "" if found is None else statistics.fmean(found)
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
        """Save accuracy (mean, with the standard deviation over the random seeds as error bars) against MACs.

        Marker area is proportional to the parameter count; each marker is labelled with its
        variant, the label placed beside the marker where it covers no marker, error bar or
        other label (variants at the same point, e.g. the base network of several axes, share
        one label). Needs matplotlib (the ``viz`` extra). Written atomically.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..train.atomic import atomic_write

        fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
        most = max((r.params for r in self.rows), default=1)
        least = min((r.params for r in self.rows), default=1)
        axes_order = list(dict.fromkeys(r.axis for r in self.rows))
        colors = plt.get_cmap("tab10")
        several_axes = len(axes_order) > 1
        points: dict[tuple[float, float], dict[str, Any]] = {}  # one entry (and label) per position
        bars = []
        for i, r in enumerate(self.rows):
            x, y = r.macs / 1e6, 100 * r.accuracy
            color = colors(axes_order.index(r.axis) % 10) if several_axes else colors(i % 10)
            size = 30 + 600 * r.params / most  # marker area in points^2
            std = 100 * (r.accuracy_std or 0)
            ax.errorbar(x, y, yerr=std, fmt="none", ecolor="0.35", capsize=3, zorder=1)
            ax.scatter(x, y, s=size, color=color, alpha=0.6, edgecolors="black", linewidths=0.6, zorder=2)
            bars.append((x, y - std, y + std))
            point = points.setdefault((x, y), {"labels": [], "size": 0.0})
            point["labels"].append(r.name if several_axes else r.variant)
            point["size"] = max(point["size"], size)
        ax.margins(x=0.25, y=0.25)
        ax.autoscale_view()
        if several_axes:
            for i, axis in enumerate(axes_order):
                ax.scatter([], [], s=40, color=colors(i % 10), alpha=0.6, edgecolors="black", label=axis)
            ax.legend(fontsize=8, title="axis", title_fontsize=8, loc="best")
        ax.set_xlabel("MACs per image (millions)")
        ax.set_ylabel("held-out accuracy (%), mean ± std over random seeds")
        ax.set_title(f"{self.title}\nmarker area ~ parameters ({least:,} to {most:,})", fontsize=9)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        _place_labels(fig, ax, points, bars)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
        plt.close(fig)
        return path

    def save(self, out: Union[str, Path], plot: bool = True) -> dict[str, Path]:
        """Write ``table.md``, ``table.json``, ``table.csv`` (and ``accuracy_vs_macs.png``) into ``out``."""
        from ..train.atomic import atomic_write_text

        out = Path(out)
        written = {
            "markdown": atomic_write_text(out / "table.md", f"{self.title}\n\n{self.to_markdown()}"),
            "json": atomic_write_text(out / "table.json", self.to_json()),
            "csv": atomic_write_text(out / "table.csv", self.to_csv()),
        }
        if plot:
            written["plot"] = self.plot(out / "accuracy_vs_macs.png")
        return written



def _place_labels(fig: Any, ax: Any, points: dict[tuple[float, float], dict[str, Any]], bars: list[tuple[float, float, float]]) -> None:
    """Label every point beside its marker, on the first free spot of a ring of candidates.

    Greedy, in display pixels: for growing distances from the marker's edge and eight
    directions, the first label box inside the axes that overlaps no marker, error bar, legend
    or earlier label wins; a label placed away from its marker gets a leader line.
    """
    fig.canvas.draw()  # fixes the limits and gives a renderer to measure text with
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    frame = ax.get_window_extent(renderer)
    discs = []
    for (x, y), point in points.items():
        cx, cy = ax.transData.transform((x, y))
        discs.append((cx, cy, (point["size"] ** 0.5) / 2 * px_per_pt + 1.5))
    blocked = []  # (x0, y0, x1, y1) boxes: error bars, the legend, placed labels
    for x, low, high in bars:
        (x0, y0), (x1, y1) = ax.transData.transform((x, low)), ax.transData.transform((x, high))
        blocked.append((x0 - 5, min(y0, y1) - 1, x0 + 5, max(y0, y1) + 1))
    legend = ax.get_legend()
    if legend is not None:
        box = legend.get_window_extent(renderer)
        blocked.append((box.x0, box.y0, box.x1, box.y1))

    def free(box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        if x0 < frame.x0 + 2 or x1 > frame.x1 - 2 or y0 < frame.y0 + 2 or y1 > frame.y1 - 2:
            return False
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in blocked):
            return False
        # a disc overlaps the box when its centre is closer than its radius to the box
        return all((max(x0 - cx, 0, cx - x1) ** 2 + max(y0 - cy, 0, cy - y1) ** 2) >= r * r for cx, cy, r in discs)

    directions = [(1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 0), (-1, 1), (-1, -1)]
    order = sorted(zip(points.items(), discs), key=lambda item: -item[1][2])  # the biggest markers first
    for ((x, y), point), (cx, cy, r) in order:
        label = "\n".join(point["labels"])
        probe = ax.text(0, 0, label, fontsize=8)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        w, h = extent.width, extent.height
        best = None
        for gap in (3, 10, 20, 35, 55, 80, 110):
            for dx, dy in directions:
                norm = (dx * dx + dy * dy) ** 0.5
                ax_, ay_ = cx + dx / norm * (r + gap), cy + dy / norm * (r + gap)
                # the box hangs off the anchor on the side facing away from the marker
                x0 = ax_ if dx > 0 else ax_ - w if dx < 0 else ax_ - w / 2
                y0 = ay_ if dy > 0 else ay_ - h if dy < 0 else ay_ - h / 2
                box = (x0, y0, x0 + w, y0 + h)
                if free(box):
                    best = box
                    break
            if best is not None:
                break
        if best is None:  # nowhere free: right of the marker, as close as it gets
            best = (cx + r + 3, cy - h / 2, cx + r + 3 + w, cy + h / 2)
        blocked.append(best)
        far = ((best[0] + best[2]) / 2 - cx) ** 2 + ((best[1] + best[3]) / 2 - cy) ** 2 > (r + max(w, h) / 2 + 12) ** 2
        ax.annotate(
            label, (x, y), xytext=((best[0] - cx) / px_per_pt, (best[1] - cy) / px_per_pt), textcoords="offset points",
            fontsize=8, ha="left", va="bottom",
            arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5, shrinkA=0, shrinkB=r / px_per_pt) if far else None,
        )
