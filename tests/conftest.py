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


def distinguishable_tiny_models(preset: str = "tiny", seed: int = 0):
    """Tiny models whose every tensor is random and non-zero (fresh adaptors and motion ``proj_out`` are
    zero-initialised), so loaders can be checked value by value."""
    from dynascene_core.models import DynaSceneModels

    torch.manual_seed(seed)
    models = DynaSceneModels.build(preset)
    with torch.no_grad():
        for p in models.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return models
