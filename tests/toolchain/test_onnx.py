"""ONNX export with the dynamo exporter (dynamic batch), run by onnxruntime: <= 1e-4 x max|y|."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_onnx(subject):
    check("onnx", subject)
