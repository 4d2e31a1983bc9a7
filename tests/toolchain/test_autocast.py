"""``torch.autocast('cpu', torch.bfloat16)``: forward and backward run, close to float32."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_autocast(subject):
    check("autocast", subject)
