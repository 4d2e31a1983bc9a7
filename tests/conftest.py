import os

import pytest
import torch

# Each xdist worker gets one thread: two workers on two cores, no oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_algorithm_picks():
    """A test may monkeypatch the chooser's internals: the ops' memoised picks must not outlive it."""
    yield
    from convolab.functional.algorithms import choices_changed

    choices_changed()
