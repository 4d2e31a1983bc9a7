"""``torch.func.vmap`` over the batch and ``jacrev``: functorch transforms get torch's ops."""

import pytest

from .subjects import SUBJECTS
from .tools import check


@pytest.mark.parametrize("subject", [s.param for s in SUBJECTS])
def test_vmap(subject):
    check("vmap", subject)
