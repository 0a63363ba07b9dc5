"""Speed changes of inference that must not change results, on the tiny config, and the benchmark's
failure handling."""

import gc
import json
import weakref

import pytest
import torch

from dynascene_core.models import DynaSceneModels


def test_host_timestep_gives_the_output_of_an_integer_tensor_timestep():
    """Host timesteps become one float32 device tensor for every sampler (one compiled graph for DDIM's
    integer and Euler's fractional steps); diffusers embeds timesteps in float32, so integer steps give
    bit-identical output to the int64 tensor a caller may pass."""
    torch.manual_seed(0)
    denoiser = DynaSceneModels.build("tiny").eval().denoiser
    g = torch.Generator().manual_seed(1)
    sample, emb = torch.randn(2, 9, 3, 8, 8, generator=g), torch.randn(2, 1, 32, generator=g)
    with torch.no_grad():
        host = denoiser(sample, 981, emb)
        tensor = denoiser(sample, torch.tensor(981), emb)
        other = denoiser(sample, 980.5, emb)
    assert torch.equal(host, tensor)
    assert not torch.equal(other, host)


def test_bypassed_motion_modules_are_freed():
    """The feed-forward slicing keeps a list of the motion modules' blocks; bypassing the motion modules
    (stage I) must not leave their parameters alive through it."""
    torch.manual_seed(0)
    denoiser = DynaSceneModels.build("tiny").denoiser
    block = weakref.ref(denoiser._motion_blocks[0][0])
    assert denoiser.bypass_motion_modules() > 0
    gc.collect()
    assert block() is None
    with torch.no_grad():
        out = denoiser(torch.randn(2, 9, 1, 8, 8), 500, torch.randn(2, 1, 32))
    assert out.shape == (2, 4, 1, 8, 8)


def test_benchmark_records_a_failed_part_and_writes_the_json(tmp_path):
    """Each part runs in its own process: one that fails is recorded with its error and the merged JSON is
    still written (a part after it would run); unknown part names are refused before anything runs."""
    from benchmarks import bench_inference

    with pytest.raises(SystemExit, match="--runs: unknown nonsense; expected eager"):
        bench_inference.main(["--runs", "eager,nonsense", "--out", str(tmp_path)])
    assert not (tmp_path / "bench_inference.json").exists()
    bench_inference.main(["--device", "cpu", "--config", "no-such-preset", "--runs", "scaling", "--out", str(tmp_path)])
    run = json.loads((tmp_path / "bench_inference.json").read_text())["runs"]["scaling"]
    assert run["status"].startswith("failed (exit 1)") and "no-such-preset" in run["status"], run["status"]
