import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # bitwise comparisons between runs (and with child processes started with OMP_NUM_THREADS=1)
    # need the same thread count; one thread is also kind to the shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
