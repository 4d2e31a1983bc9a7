"""Offline hard-example mining: train, run the model over a pool, add its mistakes, retrain.

The procedure of the detectors of the 2000s and of R-CNN (bootstrapping): a pool of examples
is held back from training; after each round the model is run over the pool, the examples it
gets wrong with the highest confidence (its false positives, the hard negatives of the class it
wrongly claims) are added to the training set, each ``weight`` times (oversampling), and the
model is trained again from the same initial weights. For the control, ``select="random"``
adds as many pool examples drawn at random: the difference between the two is what hardness
buys, apart from having more data.

:func:`convolab.train.fit` runs the rounds (``TrainConfig.mining_rounds``); these are its parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from ..data import ImageTensors
from ..data import _labels as labels_of
from ..data import stratified_split
from .config import MINING_SELECT
from .pipeline import batches

__all__ = ["MINING_SELECT", "MinedRound", "confusion_matrix", "mine", "split_pool", "with_examples"]


def split_pool(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold back ``fraction`` of each class of ``dataset`` as the mining pool (seeded).

    Returns:
        (training part, pool).
    """
    train_idx, pool_idx = stratified_split(labels_of(dataset), fraction, seed)
    return _subset(dataset, train_idx), _subset(dataset, pool_idx)


def _subset(dataset: Dataset, index: Tensor) -> Dataset:
    if isinstance(dataset, ImageTensors):
        return dataset.subset(index)
    return Subset(dataset, index.tolist())


def with_examples(base: Dataset, pool: Dataset, mined: Sequence[Sequence[int]], weight: int) -> Dataset:
    """``base`` plus the mined pool examples of every round so far, each repeated ``weight`` times."""
    index = [i for chosen in mined for i in chosen for _ in range(weight)]
    if not index:
        return base
    extra = _subset(pool, torch.tensor(index, dtype=torch.long))
    if isinstance(base, ImageTensors) and isinstance(extra, ImageTensors):
        return ImageTensors(torch.cat([base.images, extra.images]), torch.cat([base.labels, extra.labels]))
    return ConcatDataset([base, extra])


@dataclass(frozen=True)
class MinedRound:
    """What one mining pass over the pool found and took.

    Attributes:
        indices: pool indices taken, hardest first.
        pool: pool images not taken in earlier rounds (the candidates).
        errors: candidates the model got wrong (its false positives).
        false_positives_by_class: per class, candidates wrongly assigned to it.
    """

    indices: tuple[int, ...]
    pool: int
    errors: int
    false_positives_by_class: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"added": len(self.indices), "pool": self.pool, "pool_errors": self.errors,
                "false_positives_by_class": list(self.false_positives_by_class)}


@torch.no_grad()
def _predict(model: nn.Module, pipeline: nn.Module, dataset: Dataset, batch_size: int,
             device: torch.device) -> tuple[Tensor, Tensor]:
    """(probabilities [N, classes], labels [N]) of the model in eval mode, in dataset order."""
    was = model.training, pipeline.training
    model.eval()
    pipeline.eval()
    probs, labels = [], []
    for x, y in batches(dataset, list(range(len(dataset))), batch_size, 0, False):
        probs.append(model(pipeline(x.to(device))).float().softmax(1).cpu())
        labels.append(y.cpu())
    model.train(was[0])
    pipeline.train(was[1])
    return torch.cat(probs), torch.cat(labels)


def mine(
    model: nn.Module,
    pipeline: nn.Module,
    pool: Dataset,
    taken: Sequence[int],
    count: int,
    select: str,
    seed: int,
    num_classes: int,
    batch_size: int = 256,
    device: torch.device = torch.device("cpu"),
) -> MinedRound:
    """Pick up to ``count`` pool examples not in ``taken``.

    ``select="hard"``: the model's mistakes, most confident first (a false positive the model
    is sure of is the hardest negative of the class it claims); fewer when it makes fewer.
    ``select="random"``: ``count`` candidates drawn with ``seed`` (the control).
    """
    probs, labels = _predict(model, pipeline, pool, batch_size, device)
    candidate = torch.ones(len(labels), dtype=torch.bool)
    candidate[list(taken)] = False
    confidence, predicted = probs.max(1)
    wrong = candidate & (predicted != labels)
    by_class = torch.bincount(predicted[wrong], minlength=num_classes)
    if select == "hard":
        order = torch.argsort(confidence[wrong], descending=True, stable=True)
        chosen = wrong.nonzero().flatten()[order][:count]
    else:
        g = torch.Generator().manual_seed(seed)
        pick = candidate.nonzero().flatten()
        chosen = pick[torch.randperm(len(pick), generator=g)][:count]
    return MinedRound(tuple(int(i) for i in chosen), int(candidate.sum()), int(wrong.sum()),
                      tuple(int(c) for c in by_class))


def confusion_matrix(model: nn.Module, pipeline: nn.Module, dataset: Dataset, num_classes: int,
                     batch_size: int = 256, device: torch.device = torch.device("cpu")) -> Tensor:
    """``[true class, predicted class]`` counts of the model (eval mode) on ``dataset``.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> data = ImageTensors(torch.zeros(5, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2, 2, 1]))
        >>> confusion_matrix(model, nn.Identity(), data, 3).sum(1).tolist()   # one row per true class
        [1, 2, 2]
    """
    probs, labels = _predict(model, pipeline, dataset, batch_size, device)
    return torch.bincount(labels * num_classes + probs.argmax(1), minlength=num_classes**2).view(num_classes, num_classes)
