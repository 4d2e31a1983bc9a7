"""Training: the loop, atomic verified checkpoints with exact resume, one run per output folder, data-parallel runs under torchrun."""

from .checkpoint import atomic_write, atomic_write_text, load_checkpoint, save_checkpoint
from .distributed import DistInfo, SyncBatchNorm, convert_sync_batchnorm
from .loop import Callback, NonFiniteError, TrainConfig, TrainResult, build_model, check_data, evaluate, fit, hard_example_loss
from .rundir import OutputClaim, OutputDirError, claim_output_dir

__all__ = [
    "Callback",
    "DistInfo",
    "NonFiniteError",
    "OutputClaim",
    "OutputDirError",
    "SyncBatchNorm",
    "TrainConfig",
    "TrainResult",
    "atomic_write",
    "atomic_write_text",
    "build_model",
    "check_data",
    "claim_output_dir",
    "convert_sync_batchnorm",
    "evaluate",
    "fit",
    "hard_example_loss",
    "load_checkpoint",
    "save_checkpoint",
]
