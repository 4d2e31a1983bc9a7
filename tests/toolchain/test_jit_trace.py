"""``torch.jit.trace``: the traced module gives the eager output."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_jit_trace(subject):
    check("jit_trace", subject)
