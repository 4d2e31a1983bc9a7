"""Every convolab.nn module and every registered model is a subject of the toolchain tests."""

from torch import nn

import convolab.nn as cnn
from convolab.models import list_models

from .subjects import KERNEL_SUBJECTS, MODEL_SUBJECTS, MODULE_SUBJECTS


def test_every_module_and_model_is_a_subject():
    modules = {n for n in cnn.__all__ if isinstance(getattr(cnn, n), type) and issubclass(getattr(cnn, n), nn.Module)}
    covered = {s.name.split("-")[0] for s in MODULE_SUBJECTS + KERNEL_SUBJECTS}
    assert modules <= covered, f"add a subject for {sorted(modules - covered)}"
    assert {s.name for s in MODEL_SUBJECTS} == set(list_models())
    names = [s.name for s in MODULE_SUBJECTS + KERNEL_SUBJECTS + MODEL_SUBJECTS]
    assert len(names) == len(set(names))  # ids are unique
