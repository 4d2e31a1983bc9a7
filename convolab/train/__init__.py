"""Training: the loop, atomic checkpoints with exact resume, data-parallel runs under torchrun."""

from .checkpoint import atomic_write, atomic_write_text, load_checkpoint, save_checkpoint
from .distributed import DistInfo, SyncBatchNorm, convert_sync_batchnorm
from .loop import Callback, TrainConfig, TrainResult, build_model, evaluate, fit, hard_example_loss

__all__ = [
    "Callback",
    "DistInfo",
    "SyncBatchNorm",
    "TrainConfig",
    "TrainResult",
    "atomic_write",
    "atomic_write_text",
    "build_model",
    "convert_sync_batchnorm",
    "evaluate",
    "fit",
    "hard_example_loss",
    "load_checkpoint",
    "save_checkpoint",
]
