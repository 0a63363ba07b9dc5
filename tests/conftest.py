"""Shared test setup: deterministic, CPU-friendly torch."""

import pytest
import torch

# One thread per process: the suite runs under pytest-xdist with one worker per core, and
# oversubscribed torch threads slow small CPU kernels down by an order of magnitude.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
