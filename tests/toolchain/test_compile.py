"""``torch.compile(fullgraph=True)``: one graph without a break, the eager output (AOTAutograd's eager backend; inductor is in test_compile_inductor below and in benchmarks/compile.py)."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_compile(subject):
    check("compile", subject)
