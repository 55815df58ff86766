"""Training tests run torch on one thread: on a small, shared CPU, intra-op threads contend and run 10-20x slower
for these millisecond-sized models."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
