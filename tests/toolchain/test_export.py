"""``torch.export`` with a dynamic batch dim; the exported program runs at another batch size."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_export(subject):
    check("export", subject)
