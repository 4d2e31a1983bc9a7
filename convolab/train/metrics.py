"""What a run measures: the loss it trains on, held-out loss and accuracy, the metrics files.

Under ``torchrun`` each process evaluates every ``world_size``-th held-out sample and the sums
are reduced over the processes, so every process gets the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from .atomic import atomic_write_text
from .distributed import DistInfo, all_reduce_sum
from .pipeline import InputPipeline, batches

__all__ = ["evaluate", "evaluate_sizes", "hard_example_loss", "write_metrics"]


def hard_example_loss(logits: Tensor, target: Tensor, fraction: Optional[float]) -> Tensor:
    """Mean cross-entropy over the hardest ``fraction`` of the batch (online hard example mining).

    Definition: per-sample losses, keep the ``k = ceil(fraction * N)`` largest, average them;
    the easy samples get no gradient. ``fraction=None`` or 1 is the plain mean.

    Example:
        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0], [-1.0, 1.0]])
        >>> target = torch.tensor([0, 1, 0, 0])
        >>> round(hard_example_loss(logits, target, 0.5).item(), 4)  # the two worst: 2.1269 and 0.6931
        1.41
    """
    losses = F.cross_entropy(logits, target, reduction="none")
    if fraction is None or fraction >= 1:
        return losses.mean()
    k = max(1, math.ceil(fraction * losses.numel()))
    return losses.topk(k).values.mean()


@torch.no_grad()
def evaluate(model: nn.Module, pipeline: InputPipeline, dataset: Dataset, batch_size: int, info: DistInfo = DistInfo(), workers: int = 0) -> dict[str, float]:
    """Loss and accuracy on ``dataset`` (each process takes every ``world_size``-th sample)."""
    was = model.training, pipeline.training
    model.eval()
    pipeline.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    for x, y in batches(dataset, list(range(info.rank, len(dataset), info.world_size)), batch_size, workers, False):
        x, y = x.to(info.device), y.to(info.device)
        logits = model(pipeline(x))
        totals += torch.tensor(
            [F.cross_entropy(logits, y, reduction="sum").item(), (logits.argmax(1) == y).sum().item(), y.numel()],
            dtype=torch.float64,
        )
    totals = all_reduce_sum(totals, info)
    model.train(was[0])
    pipeline.train(was[1])
    n = max(totals[2].item(), 1)
    return {"val_loss": totals[0].item() / n, "val_accuracy": totals[1].item() / n}


def evaluate_sizes(model: nn.Module, pipeline: InputPipeline, dataset: Dataset, batch_size: int, info: DistInfo,
                    workers: int, sizes: Optional[list[int]]) -> dict[str, float]:
    """:func:`evaluate` at the first training size, and the accuracy at each other one (``val_accuracy@S``)."""
    if not sizes or len(sizes) == 1:
        return evaluate(model, pipeline, dataset, batch_size, info, workers)
    out: dict[str, float] = {}
    for i, side in enumerate(sizes):
        pipeline.size = (side, side)
        metrics = evaluate(model, pipeline, dataset, batch_size, info, workers)
        if i == 0:
            out.update(metrics)
        else:
            out[f"val_accuracy@{side}"] = metrics["val_accuracy"]
    pipeline.size = (sizes[0], sizes[0])  # mining and the next evaluation see the first size
    return out


def write_metrics(history: list[dict[str, Any]], csv_path: Path, json_path: Path, summary: dict[str, Any]) -> None:
    """Write the per-epoch ``history`` as CSV, and as JSON under ``summary``'s facts (both atomically)."""
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(json_path, json.dumps({**summary, "epochs": history}, indent=2) + "\n")
