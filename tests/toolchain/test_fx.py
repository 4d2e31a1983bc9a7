"""``torch.fx.symbolic_trace`` (feature extractors, graph rewriters): convolab's ops are single graph nodes."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_fx(subject):
    check("fx", subject)
