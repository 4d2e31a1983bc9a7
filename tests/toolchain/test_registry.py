"""Every convolab.nn module and every registered model is a subject of the toolchain tests."""

from torch import nn

import convolab.nn as cnn
from convolab.models import list_models

from .subjects import MODEL_SUBJECTS, MODULE_SUBJECTS

# convolab's own kernels (issue 15's custom ops) are put through the tools by their own tests
# until their subjects join this registry
OWN_KERNELS = {
    "DeformConv1d", "DeformConv2d", "DeformConv3d", "ModulatedDeformConv1d", "ModulatedDeformConv2d",
    "ModulatedDeformConv3d", "PlainDeformConv1d", "PlainDeformConv2d", "PlainDeformConv3d", "RoIAlign", "RoIPool",
}


def test_every_module_and_model_is_a_subject():
    modules = {n for n in cnn.__all__ if isinstance(getattr(cnn, n), type) and issubclass(getattr(cnn, n), nn.Module)}
    covered = {s.name.split("-")[0] for s in MODULE_SUBJECTS}
    assert modules - OWN_KERNELS <= covered, f"add a subject for {sorted(modules - OWN_KERNELS - covered)}"
    assert {s.name for s in MODEL_SUBJECTS} == set(list_models())
