"""The denoiser U-Net is one torch.compile graph (no breaks) and computes what the eager one does.

Tracing the tiny U-Net takes minutes on a 2-core CPU, so this runs only with DYNASCENE_COMPILE_TESTS=1
(the GPU benchmark compiles the full-size U-Net with ``fullgraph=True`` and fails on any graph break).
"""

import copy
import os

import pytest
import torch

from dynascene_core.models import DynaSceneModels

from test_models import randomize_adaptors

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.environ.get("DYNASCENE_COMPILE_TESTS") != "1",
                                                   reason="set DYNASCENE_COMPILE_TESTS=1 (traces the U-Net: minutes)")]


def test_denoiser_compiles_to_one_graph_with_reference_camera_and_cfg_mask():
    torch.manual_seed(0)
    models = DynaSceneModels.build("tiny").eval()
    for name, p in models.denoiser.named_parameters():  # adaptors and motion proj_out act like trained ones
        if ".qkv_merge." in name or (".motion_modules." in name and ".proj_out." in name):
            torch.nn.init.normal_(p, std=0.5)
    g = torch.Generator().manual_seed(1)
    sample, emb = torch.randn(2, 9, 4, 8, 8, generator=g), torch.randn(2, 1, 32, generator=g)
    with torch.no_grad():
        bank = models.denoiser.project_reference(models.reference_net(torch.randn(1, 4, 8, 8, generator=g), emb[:1]))
        camera = models.camera_encoder(torch.randn(1, 4, 6, 64, 64, generator=g))
        kwargs = dict(reference=bank, reference_mask=(False, True), camera_features=camera)
        eager = models.denoiser(sample, torch.tensor(500), emb, **kwargs)
        compiled = copy.deepcopy(models.denoiser)
        compiled.compile_unet(backend="eager")  # dynamo capture only: graph breaks raise with fullgraph=True
        out = compiled(sample, torch.tensor(500), emb, **kwargs)
        again = compiled(sample, torch.tensor(300), emb, **kwargs)  # a new timestep value reuses the graph
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    assert not torch.equal(again, out)


def test_generate_with_compiled_unet_compiles_once_across_steps_windows_samplers_and_calls(monkeypatch):
    """A compiled U-Net is traced once: every step, context window, sampler (DDIM's integer and Euler's
    fractional timesteps) and a second generation with another scene (a new reference bank) reuse the graph
    (dynamo's ``error_on_recompile`` turns any recompile into an error), and the results equal eager ones."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from dynascene_core.camera import camera_condition, make_preset
    from dynascene_core.sampling.pipeline import SamplerSettings, generate

    torch.manual_seed(0)
    models = DynaSceneModels.build("tiny").eval()
    randomize_adaptors(models.denoiser)
    g = torch.Generator().manual_seed(1)
    frames, alpha = torch.rand(6, 3, 32, 32, generator=g), (torch.rand(6, 1, 32, 32, generator=g) > 0.5).float()
    scenes = torch.rand(2, 3, 32, 32, generator=g)
    camera = camera_condition(make_preset("pan_right", 6), 32, 32)

    def run(scene, sampler):  # 6 frames in windows of 4 overlapping by 2: two windows per step
        settings = SamplerSettings(steps=2, sampler=sampler, context_length=4, context_overlap=2)
        return generate(models, models.latent_codec(), models.image_encoder, frames, alpha, scene, camera, 6,
                        settings, foreground=frames).latents

    eager = [run(scenes[0], "ddim"), run(scenes[1], "euler")]
    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    models.denoiser.compile_unet(backend="eager")
    compiled = [run(scenes[0], "ddim"), run(scenes[1], "euler")]
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    for c, e in zip(compiled, eager):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-5)
    assert not torch.equal(eager[0], eager[1])
