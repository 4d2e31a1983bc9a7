"""``torch.jit.script``: scripted modules run torch's kernels, or refuse at scripting time."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_jit_script(subject):
    check("jit_script", subject)
