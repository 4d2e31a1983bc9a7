"""ONNX export with the TorchScript exporter (``dynamo=False``, dynamic batch axis), run by onnxruntime."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_onnx_ts(subject):
    check("onnx_ts", subject)
