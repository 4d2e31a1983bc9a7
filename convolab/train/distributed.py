"""Data-parallel training across processes or machines, started by ``torchrun``.

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; :func:`setup`
reads them and joins the process group with NCCL when the process has a GPU and gloo
otherwise. Without those variables everything runs as a single process (world size 1).

Two machines with two processes each (run on both, ``--node_rank`` 0 on the first)::

    torchrun --nnodes=2 --nproc_per_node=2 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 \
        -m convolab train mnist_cnn --data mnist:/data/mnist --batch-size 256 --sync-bn --out /shared/run

Rank 0 writes the checkpoint; every process reads it on ``--resume``, so ``--out`` must be on
storage all machines see.

:class:`SyncBatchNorm` normalises with the statistics of the *global* batch on any device:
torch's own ``nn.SyncBatchNorm`` refuses CPU tensors, so on CPU the statistics are summed
with a differentiable all-reduce instead (:class:`_AllReduceSum`, built on the stable
``dist.all_reduce``; ``torch.distributed.nn.functional.all_reduce`` is deprecated). Its backward all-reduces the gradient of the
statistics, which together with DDP's gradient averaging gives exactly the gradient of
the mean loss over the global batch.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank among ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(timeout_s: float = 300.0) -> DistInfo:
    """Join the process group described by torchrun's environment (a no-op without it).

    Returns:
        The process's :class:`DistInfo`; backend "nccl" on CUDA, "gloo" on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        return DistInfo(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():  # pragma: no cover  (no GPU on the project's machines)
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank, world_size, local_rank, device, backend)


def teardown(info: DistInfo) -> None:
    """Leave the process group joined by :func:`setup`."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: Tensor, info: DistInfo) -> Tensor:
    """Sum ``values`` over all processes (returned on the input's device; the input is not modified)."""
    if not info.distributed:
        return values.clone()
    reduced = values.to(info.device, copy=True)  # NCCL only reduces GPU tensors
    dist.all_reduce(reduced)
    return reduced.to(values.device)


def all_gather_object(obj: object, info: DistInfo) -> list:
    """Every process's ``obj``, in rank order."""
    if not info.distributed:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over all processes, differentiable: the gradient of each input is the sum of every process's output gradient.

    Each process's output is the same sum, and the global loss is the sum of every process's
    loss, so d(global loss)/d(input) = sum over processes of d(their loss)/d(sum).
    """

    @staticmethod
    def forward(ctx: Any, values: Tensor) -> Tensor:
        reduced = values.clone()
        dist.all_reduce(reduced)
        return reduced

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of all processes, on CPU or GPU.

    Same parameters, buffers and state_dict keys as ``nn.BatchNorm{1,2,3}d``; outside
    training, or in a single process, it is exactly ``F.batch_norm``.

    Shape:
        input ``[N, C, *]`` -> output of the same shape.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input [N, C, *], got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        count = torch.tensor(float(input.numel() // input.shape[1]), device=input.device, dtype=input.dtype)
        stats = torch.cat([input.sum(dims), input.pow(2).sum(dims), count.view(1)])
        stats = _AllReduceSum.apply(stats)  # differentiable: its backward sums the gradients of all ranks
        c = input.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)
        shape = (1, c) + (1,) * (input.dim() - 2)
        out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm{1,2,3}d`` in ``module`` by :class:`SyncBatchNorm` (weights kept).

    Example:
        >>> m = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
        >>> type(m[1]).__name__
        'SyncBatchNorm'
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        sync.load_state_dict(module.state_dict())
        sync.train(module.training)
        return sync.to(next(module.buffers(), torch.empty(0)).device)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module
