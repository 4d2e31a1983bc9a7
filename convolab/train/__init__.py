"""Training: the loop, atomic verified checkpoints with exact resume, one run per output folder, data-parallel runs under torchrun.

- :mod:`.config`: :class:`TrainConfig`, the settings of a run and their checks.
- :mod:`.pipeline`: the model built for the data, the input pipeline, batches.
- :mod:`.metrics`: the training loss, held-out evaluation, the metrics files.
- :mod:`.checkpoint`: what a checkpoint holds, writing and reading it, whether a run can resume it.
- :mod:`.loop`: :func:`fit`, the run itself; :mod:`.mining`: the hard-example mining rounds it runs.
- :mod:`.atomic`, :mod:`.rundir`, :mod:`.distributed`: atomic files, one run per folder, torchrun.
"""

from .atomic import atomic_write, atomic_write_text
from .checkpoint import NonFiniteError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, SyncBatchNorm, convert_sync_batchnorm
from .loop import Callback, TrainResult, fit
from .metrics import evaluate, hard_example_loss
from .pipeline import build_model, check_data
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
