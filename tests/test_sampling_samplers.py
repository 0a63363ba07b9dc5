"""Samplers: every solver sits on the training schedule, runs end to end, and DDIM stays diffusers' DDIM."""

import pytest
import torch

from dynascene_core.sampling.pipeline import GenerationInputError, SamplerSettings
from dynascene_core.sampling.schedule import (RECOMMENDED_STEPS, SAMPLERS, inference_scheduler,
                                              training_scheduler)
from test_sampling_pipeline import Spy, _run, models  # noqa: F401  (module-scoped tiny models)

# SD1.5's scaled-linear betas, beta_i = (sqrt(0.00085) + i/999 (sqrt(0.012) - sqrt(0.00085)))^2, written out.
SD15_BETAS = {0: 0.00085, 1: 0.0008546986554056862, 500: 0.00481495414171188, 999: 0.012}
SD15_FINAL_ALPHA_CUMPROD = 0.004660098513077236  # prod(1 - beta_i): sqrt = 0.068, the known SD1.5 terminal value


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_uses_the_training_schedule(sampler):
    scheduler, training = inference_scheduler(sampler=sampler), training_scheduler()
    assert torch.equal(scheduler.betas, training.betas) and torch.equal(scheduler.alphas_cumprod,
                                                                       training.alphas_cumprod)
    for index, beta in SD15_BETAS.items():
        assert scheduler.betas[index].item() == pytest.approx(beta, rel=1e-6)
    assert scheduler.alphas_cumprod[-1].item() == pytest.approx(SD15_FINAL_ALPHA_CUMPROD, rel=1e-4)
    assert scheduler.config.prediction_type == "epsilon"
    scheduler.set_timesteps(RECOMMENDED_STEPS[sampler])
    assert len(scheduler.timesteps) == RECOMMENDED_STEPS[sampler]


def test_ddim_is_diffusers_ddim_with_sd15_settings():
    from diffusers import DDIMScheduler

    reference = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1, prediction_type="epsilon")
    ours = inference_scheduler(sampler="ddim")
    assert type(ours) is DDIMScheduler
    for s in (ours, reference):
        s.set_timesteps(50)
    assert torch.equal(ours.timesteps, reference.timesteps)
    g = torch.Generator().manual_seed(0)
    sample, eps, noise = (torch.randn(1, 4, 3, 4, 4, generator=g) for _ in range(3))
    for t in ours.timesteps[:3]:
        a = ours.step(eps, t, sample, eta=0.5, variance_noise=noise).prev_sample
        b = reference.step(eps, t, sample, eta=0.5, variance_noise=noise).prev_sample
        assert torch.equal(a, b)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_runs_end_to_end(models, sampler):  # noqa: F811
    settings = SamplerSettings(steps=3, sampler=sampler, context_length=4, context_overlap=2)
    den = Spy(models.denoiser)
    seen = []
    try:
        result = _run(models, settings, progress=lambda s, t, x0: seen.append(x0))
    finally:
        den.restore()
    assert torch.isfinite(result.latents).all() and torch.isfinite(result.composite).all()
    assert len(seen) == 3 and all(torch.isfinite(x0).all() for x0 in seen)
    assert torch.equal(result.latents, _run(models, settings).latents)  # deterministic
    # the U-Net sees unit-variance inputs: Euler's sigma-space latents are scaled down before it
    first_latent = den.calls[0][0][0][:, :4]
    assert 0.5 < first_latent.std().item() < 2.0


def test_samplers_differ_and_bad_sampler_settings_are_refused(models):  # noqa: F811
    results = {s: _run(models, SamplerSettings(steps=3, sampler=s)).latents for s in SAMPLERS}
    assert not torch.equal(results["ddim"], results["dpmpp_2m"])
    with pytest.raises(GenerationInputError, match="unknown sampler 'heun'"):
        _run(models, SamplerSettings(steps=3, sampler="heun"))
    with pytest.raises(GenerationInputError, match="eta 0.5 needs a stochastic sampler"):
        _run(models, SamplerSettings(steps=3, sampler="dpmpp_2m", eta=0.5))
