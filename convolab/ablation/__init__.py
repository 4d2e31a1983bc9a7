"""Ablation studies: train a base network once per variant of one component, everything else fixed.

``ablate("mnist_cnn", "conv=standard,depthwise_separable", out="runs/ablate")`` returns an
:class:`AblationTable` (params, MACs, receptive field, accuracy mean ± std over random seeds, time per
epoch, latency per image) and saves it as markdown, JSON, CSV and a plot. The command line is
``convolab ablate``.
"""

from .runner import ablate, parse_swaps
from .table import AblationRow, AblationTable
from .variants import HeadSwap, Probe, axes, build_variant, group_count

__all__ = [
    "AblationRow",
    "AblationTable",
    "HeadSwap",
    "Probe",
    "ablate",
    "axes",
    "build_variant",
    "group_count",
    "parse_swaps",
]
