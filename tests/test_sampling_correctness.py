"""Sampling correctness where users run it: device-clean on any device, guidance and camera control checked
against hand computations, every declared setting runs, memory flat in video length."""

import math
import weakref
from types import SimpleNamespace

import pytest
import torch

from dynascene_core.camera import CameraTrajectory, camera_condition, make_preset
from dynascene_core.conditioning import DiffusersVAECodec, foreground_pixels
from dynascene_core.models import DynaSceneModels
from dynascene_core.sampling.pipeline import GenerationInputError, SamplerSettings, generate
from dynascene_core.sampling.schedule import inference_scheduler
from dynascene_core.sampling.windows import context_windows

from test_sampling_pipeline import H, N, W, Spy, _inputs, models  # noqa: F401  (shared tiny models and clip)


def _run(models, settings, inputs=None, codec=None, device=None):
    frames, alpha, scene, traj = inputs or _inputs()
    return generate(models, codec or DiffusersVAECodec(models.vae), models.image_encoder, frames, alpha, scene,
                    camera_condition(traj, H, W), len(traj), settings, device=device)


# --- device-clean ----------------------------------------------------------------------------------

def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _check_device(module, args, kwargs):
    own = next((p.device for p in module.parameters(recurse=False)), None)
    if own is None:
        return
    for t in _tensors((args, kwargs)):
        if t.device != own:
            raise AssertionError(f"{type(module).__name__} on {own} was given a tensor on {t.device} "
                                 f"{tuple(t.shape)}")


class _MetaDecode:
    """The real VAE decode on the meta device, then CPU placeholders of the same shape (meta tensors
    hold no data to copy back); counts the decoded frames."""

    def __init__(self, codec):
        self.codec, self.decoded = codec, 0

    def encode(self, pixels):
        return self.codec.encode(pixels)

    def decode(self, latents):
        out = self.codec.decode(latents)
        assert out.device.type == "meta"
        self.decoded += len(out)
        return torch.zeros(out.shape)


def test_every_network_on_another_device_sees_only_tensors_on_its_device():
    """The whole job with every network on ``meta``, a device no input starts on: a tensor that reaches a
    module from the wrong device fails (the GPU crash: the scene image reached CLIP on the CPU), and so
    does any host sync (``.item()``, ``bool(tensor)``) in the sampling loop. The run gets through
    sampling and decoding; only handing the final latents back to the CPU is impossible on ``meta``."""
    torch.manual_seed(0)
    models = DynaSceneModels.build("tiny").eval().to("meta")
    handles = [m.register_forward_pre_hook(_check_device, with_kwargs=True) for m in models.modules()]
    codec = _MetaDecode(DiffusersVAECodec(models.vae))
    try:
        with pytest.raises(NotImplementedError, match="meta tensor"):
            _run(models, SamplerSettings(steps=2, context_length=4, context_overlap=2, eta=0.5,
                                         foreground_reinjection=True), codec=codec, device="meta")
    finally:
        for h in handles:
            h.remove()
    assert codec.decoded == N  # every frame was decoded: the run reached its very end


def test_image_encoder_moves_its_input_to_its_device():
    torch.manual_seed(0)
    encoder = DynaSceneModels.build("tiny").image_encoder.to("meta")
    handle = encoder.model.register_forward_pre_hook(_check_device, with_kwargs=True)
    embeds = encoder(torch.rand(1, 3, 40, 56))
    handle.remove()
    assert embeds.device.type == "meta" and embeds.shape[:2] == (1, 1)


# --- guidance and camera, by hand ------------------------------------------------------------------

def _sd15_alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


def test_guided_step_equals_uncond_plus_scale_times_difference(models):
    """One guided DDIM step: the latent equals the DDIM update (written out) of ``u + g·(c − u)`` from the
    denoiser's own conditional and unconditional outputs."""
    calls = []
    orig = models.denoiser.forward

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        calls.append((args, out))
        return out

    models.denoiser.forward = spy
    try:
        g = 4.0
        result = _run(models, SamplerSettings(steps=1, guidance_scale=g, seed=3))
    finally:
        models.denoiser.forward = orig
    (args, out), = calls
    sample, t = args[0], args[1]
    assert sample.shape[0] == 2 and t == 1  # one step of SD1.5's DDIM-1 schedule sits at t = 1
    uncond, cond = out.float().chunk(2)
    torch.testing.assert_close(result.latents.double(), _one_ddim_step(uncond + g * (cond - uncond), seed=3),
                               rtol=1e-5, atol=1e-5)
    assert not torch.allclose(uncond, cond)  # the branches differ: guidance is not vacuous


def _one_ddim_step(eps: torch.Tensor, seed: int) -> torch.Tensor:
    """The latent after one DDIM step (SD1.5's 1-step schedule, t = 1) from the seed's noise, written out."""
    x_t = torch.randn((1, 4, N, H // 8, W // 8), generator=torch.Generator().manual_seed(seed))
    ac = _sd15_alphas_cumprod()
    a_t, a_prev = ac[1], ac[0]  # the step before t=1 is "t = -999": set_alpha_to_one=False -> alphas_cumprod[0]
    x0 = (x_t.double() - (1 - a_t).sqrt() * eps.double()) / a_t.sqrt()
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps.double()


def _camera_trained_models():
    torch.manual_seed(1)
    models = DynaSceneModels.build("tiny").eval()
    with torch.no_grad():
        for name, p in models.denoiser.named_parameters():
            if ".qkv_merge." in name or (".motion_modules." in name and ".proj_out." in name):
                p.normal_(std=0.5)
    return models


def test_camera_changes_the_background_when_the_adaptor_is_trained():
    trained = _camera_trained_models()
    frames, alpha, scene, _ = _inputs()
    settings = SamplerSettings(steps=2)
    pan = _run(trained, settings, (frames, alpha, scene, make_preset("pan_right", N)))
    dolly = _run(trained, settings, (frames, alpha, scene, make_preset("dolly_in", N)))
    assert (pan.latents - dolly.latents).abs().max() > 1e-3
    with torch.no_grad():  # the same models with zero adaptors: the camera cannot matter
        for name, p in trained.denoiser.named_parameters():
            if ".qkv_merge." in name:
                p.zero_()
    pan0 = _run(trained, settings, (frames, alpha, scene, make_preset("pan_right", N)))
    dolly0 = _run(trained, settings, (frames, alpha, scene, make_preset("dolly_in", N)))
    assert torch.equal(pan0.latents, dolly0.latents)


def _denoiser_calls(models, settings, inputs):
    """Run one generation; returns ``[(args, kwargs, output)]`` of every denoiser call."""
    calls, orig = [], models.denoiser.forward

    def spy(*args, **kwargs):
        out = orig(*args, **kwargs)
        calls.append((args, kwargs, out.float()))
        return out

    models.denoiser.forward = spy
    try:
        result = _run(models, settings, inputs)
    finally:
        models.denoiser.forward = orig
    return result, calls


def test_camera_guided_step_adds_scale_times_requested_minus_still_camera():
    """One step with camera guidance: the latent is the DDIM update of ``u + g·(c − u) + k·(c − s)``, and the
    still row ``s`` is what the model predicts, alone, for a camera that never moves (an independent run)."""
    trained = _camera_trained_models()
    frames, alpha, scene, pan = _inputs()
    g, k = 3.0, 2.0
    result, ((args, kwargs, out),) = _denoiser_calls(
        trained, SamplerSettings(steps=1, guidance_scale=g, camera_guidance=k, seed=3), (frames, alpha, scene, pan))
    assert args[0].shape[0] == 3 and kwargs["reference_mask"] == (False, True, True)
    embeds = args[2]
    assert torch.equal(embeds[0], torch.zeros_like(embeds[0])) and torch.equal(embeds[1], embeds[2])
    uncond, cond, still = out.chunk(3)
    torch.testing.assert_close(result.latents.double(),
                               _one_ddim_step(uncond + g * (cond - uncond) + k * (cond - still), seed=3),
                               rtol=1e-5, atol=1e-5)

    static = CameraTrajectory.static(N, intrinsics=pan.intrinsics[0])  # pan_right starts at the identity pose
    _, ((_, _, alone),) = _denoiser_calls(trained, SamplerSettings(steps=1, guidance_scale=1.0, seed=3),
                                          (frames, alpha, scene, static))
    torch.testing.assert_close(still, alone, rtol=1e-4, atol=1e-5)
    assert (cond - still).abs().max() > 1e-3  # the camera matters to these weights: the guidance is not vacuous


@pytest.mark.parametrize("g,k", [(3.0, 2.0), (1.0, 2.0), (3.0, 0.0)])
def test_guidance_rescale_pulls_the_guided_prediction_to_the_conditional_spread(g, k):
    """Lin et al. 2024, eq. 15-16 written out, with both guidances, camera guidance alone and scene guidance alone:
    ``x = u + g·(c − u) + k·(c − s)``, ``x_r = x · std(c) / std(x)``, the step takes ``φ·x_r + (1 − φ)·x``
    (std over the window, here the whole video)."""
    trained = _camera_trained_models()
    phi = 0.7
    result, ((_, _, out),) = _denoiser_calls(
        trained, SamplerSettings(steps=1, guidance_scale=g, camera_guidance=k, guidance_rescale=phi, seed=3),
        _inputs())
    branches = list(out.chunk(out.shape[0]))
    uncond = branches.pop(0) if g > 1 else None
    cond = branches.pop(0)
    guided = cond if uncond is None else uncond + g * (cond - uncond)
    if k:
        guided = guided + k * (cond - branches.pop(0))
    rescaled = guided * (cond.std() / guided.std())
    torch.testing.assert_close(result.latents.double(), _one_ddim_step(phi * rescaled + (1 - phi) * guided, seed=3),
                               rtol=1e-5, atol=1e-5)
    # not vacuous: without the rescale the step lands elsewhere
    assert not torch.allclose(result.latents.double(), _one_ddim_step(guided, seed=3), rtol=1e-5, atol=1e-5)


def test_camera_guidance_holds_each_window_at_its_first_pose(models):
    """With several context windows the still row of a window is its first frame's pose, repeated."""
    cam = Spy(models.camera_encoder)
    try:
        _run(models, SamplerSettings(steps=1, guidance_scale=1.0, camera_guidance=1.0, context_length=4,
                                     context_overlap=1))
    finally:
        cam.restore()
    window = context_windows(N, 4, 1)[1]
    assert window.start > 0
    plucker = camera_condition(_inputs()[3], H, W)
    requested, still = cam.calls[2][0][0], cam.calls[3][0][0]  # the second window's two encoder calls
    torch.testing.assert_close(requested[0], plucker(window))
    torch.testing.assert_close(still[0], plucker([window.start] * len(window)))
    assert not torch.allclose(requested, still)


def test_camera_guidance_acts_down_to_its_end_of_the_noise_schedule():
    """DDIM 2 steps sit at t = 501 and 1: ``end`` 0.5 (t >= 500) guides the first step only (three rows, then
    two), ``end`` 0 never (the same latents as no camera guidance), ``end`` 1 both."""
    trained = _camera_trained_models()
    inputs = _inputs()
    settings = dict(steps=2, guidance_scale=2.0, seed=3)
    off = _run(trained, SamplerSettings(**settings), inputs).latents
    results = {}
    for end in (0.0, 0.5, 1.0):
        result, calls = _denoiser_calls(trained, SamplerSettings(**settings, camera_guidance=2.0,
                                                                 camera_guidance_end=end), inputs)
        results[end] = result.latents
        assert [args[1] for args, _, _ in calls] == [501, 1]
        assert [args[0].shape[0] for args, _, _ in calls] == {0.0: [2, 2], 0.5: [3, 2], 1.0: [3, 3]}[end]
    assert torch.equal(results[0.0], off)
    assert not torch.allclose(results[0.5], off) and not torch.allclose(results[0.5], results[1.0])
    assert SamplerSettings(camera_guidance=2.0, camera_guidance_end=0.0).branches == 2


@pytest.mark.parametrize("settings,message", [
    (dict(camera_guidance=-1.0), "camera guidance must be between 0 and 10, got -1"),
    (dict(camera_guidance=1.0, camera_guidance_end=1.5), r"camera guidance end must be between 0 and 1 .*got 1.5"),
    (dict(guidance_rescale=1.2), "guidance rescale must be between 0 and 1, got 1.2"),
])
def test_camera_guidance_out_of_range_is_refused(models, settings, message):
    with pytest.raises(GenerationInputError, match=message):
        _run(models, SamplerSettings(**settings))


# --- every declared value runs ---------------------------------------------------------------------

def test_every_step_count_has_timesteps_inside_the_table():
    for steps in range(1, 1001):
        ts = inference_scheduler(steps).timesteps
        assert len(ts) == steps and int(ts.max()) <= 999 and int(ts.min()) >= 0, steps
    assert inference_scheduler(50).timesteps[[0, -1]].tolist() == [981, 1]  # SD1.5's usual schedule is kept
    assert inference_scheduler(1000).timesteps[[0, -1]].tolist() == [999, 0]


@pytest.mark.parametrize("seed", [0, 2**64 - 1])
def test_one_step_and_edge_seeds_run(models, seed):
    frames, alpha, scene, traj = _inputs(n=2)
    result = generate(models, DiffusersVAECodec(models.vae), models.image_encoder, frames, alpha, scene,
                      camera_condition(traj, H, W), 2, SamplerSettings(steps=1, seed=seed, eta=1.0))
    assert torch.isfinite(result.latents).all()


class _ZeroNoise(torch.nn.Module):
    """A denoiser predicting zero noise, recording the timesteps it is called at (1000 tiny-U-Net calls
    would take minutes on a CI core; the U-Net's own edges are covered by the test above)."""

    max_frames = 32
    config = SimpleNamespace(prediction_type="epsilon")

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.timesteps = []

    def project_reference(self, bank):
        return bank

    def forward(self, sample, timestep, *args, **kwargs):
        self.timesteps.append(timestep)
        return torch.zeros_like(sample[:, :4])


def test_thousand_steps_and_the_largest_seed_run_to_the_end(models):
    frames, alpha, scene, traj = _inputs(n=2)
    networks = type("Networks", (), {"denoiser": _ZeroNoise(), "reference_net": models.reference_net,
                                     "camera_encoder": models.camera_encoder})()
    result = generate(networks, DiffusersVAECodec(models.vae), models.image_encoder, frames, alpha, scene,
                      camera_condition(traj, H, W), 2, SamplerSettings(steps=1000, seed=2**64 - 1, eta=1.0,
                                                                       foreground_reinjection=True))
    assert networks.denoiser.timesteps == list(range(999, -1, -1))
    assert torch.isfinite(result.latents).all()


@pytest.mark.parametrize("settings,message", [
    (SamplerSettings(steps=0), "steps must be between 1 and 1000, got 0"),
    (SamplerSettings(steps=1001), "steps must be between 1 and 1000, got 1001"),
    (SamplerSettings(seed=2**64), r"seed must be between 0 and 2\*\*64-1"),
    (SamplerSettings(seed=-1), r"seed must be between 0 and 2\*\*64-1"),
    (SamplerSettings(context_length=40), "context length 40 exceeds the motion modules' maximum of 32"),
    (SamplerSettings(context_length=8, context_overlap=8), "overlap"),
])
def test_bad_settings_are_refused_before_any_model_work(models, settings, message):
    calls = []
    handle = models.vae.register_forward_pre_hook(lambda *a: calls.append(1))
    enc = models.vae.encoder.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(GenerationInputError, match=message):
            _run(models, settings, _inputs(n=40))
    finally:
        handle.remove(), enc.remove()
    assert not calls


# --- memory flat in video length -------------------------------------------------------------------

def test_camera_features_of_at_most_one_window_are_alive(models):
    """Memory probe: weak references to every camera-encoder output; when a new window's features are
    made, those of earlier windows must already be freed."""
    alive, peak = [], []
    orig = models.camera_encoder.forward

    def probe(*args, **kwargs):
        peak.append(sum(ref() is not None for refs in alive for ref in refs))
        out = orig(*args, **kwargs)
        alive.append([weakref.ref(t) for t in out])
        return out

    models.camera_encoder.forward = probe
    try:
        result = _run(models, SamplerSettings(steps=3, context_length=4, context_overlap=2), _inputs(n=12))
    finally:
        models.camera_encoder.forward = orig
    assert len(result.windows) == 5 and len(peak) == 3 * 5
    assert max(peak) == 0


# --- the masked-image convention -------------------------------------------------------------------

def test_masked_pixels_are_mid_grey_zero_in_vae_range():
    frames = torch.rand(2, 3, 8, 8)
    alpha = torch.zeros(2, 1, 8, 8)
    alpha[:, :, :4] = 1
    alpha[:, :, 4] = 0.25
    vae_range = foreground_pixels(frames, alpha) * 2 - 1  # what DiffusersVAECodec feeds the VAE
    assert torch.equal(vae_range[:, :, 5:], torch.zeros_like(vae_range[:, :, 5:]))  # background: 0 in [-1, 1]
    torch.testing.assert_close(vae_range[:, :, :4], frames[:, :, :4] * 2 - 1)     # human kept
    torch.testing.assert_close(vae_range[:, :, 4], (frames[:, :, 4] * 2 - 1) * 0.25)  # SD-inpainting's image·keep


def test_training_and_inference_use_the_same_foreground_convention():
    import training.step as step
    import dynascene_core.sampling.pipeline as pipeline

    assert step.foreground_pixels is foreground_pixels and pipeline.foreground_pixels is foreground_pixels
    assert math.isclose(float(foreground_pixels(torch.ones(1, 3, 1, 1), torch.zeros(1, 1, 1, 1)).mean()), 0.5)


# --- prediction types, against an oracle denoiser ------------------------------------------------------

def exact_prediction(noisy, x0, alpha_bar, answers: str):
    """The exact denoiser output for ``x_t`` of clean latent ``x0``: ``ε = (x_t − √ᾱ·x₀) / √(1−ᾱ)``, or
    ``v = √ᾱ·ε − √(1−ᾱ)·x₀`` for ``answers == "v_prediction"`` (formulas written out here)."""
    eps = (noisy - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
    return eps if answers == "epsilon" else alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0


class _OracleDenoiser(_ZeroNoise):
    """Knows the clean latent ``x0 (1, C, F, h, w)`` and answers each noisy latent exactly in ``answers``'
    parameterisation; its config declares ``declared``."""

    def __init__(self, x0: torch.Tensor, answers: str, declared: str):
        super().__init__()
        from dynascene_core.sampling.schedule import training_scheduler

        self.x0, self.answers = x0, answers
        self.alphas = training_scheduler().alphas_cumprod.double()
        self.config = SimpleNamespace(prediction_type=declared)

    def forward(self, x, t, *args, **kwargs):
        noisy = x[:, :self.x0.shape[1]].double()
        return exact_prediction(noisy, self.x0, self.alphas[int(t)], self.answers).float()


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m", "unipc", "euler"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_every_sampler_reaches_the_clean_latent_of_an_exact_prediction_of_the_models_type(sampler, prediction_type):
    from dynascene_core.models.codec import PatchCodec

    n, height, width = 4, 16, 24
    x0 = torch.randn(1, 12, n, height // 2, width // 2, generator=torch.Generator().manual_seed(1)).double()
    frames, alpha = torch.rand(n, 3, height, width), torch.zeros(n, 1, height, width)
    first = {}
    for declared in ("epsilon", "v_prediction"):  # the model's config says `declared`; the oracle answers truly
        denoiser = _OracleDenoiser(x0, prediction_type, declared)
        networks = SimpleNamespace(denoiser=denoiser, reference_net=lambda latent, embeds: None,
                                   camera_encoder=lambda plucker: None)
        previews = []
        result = generate(networks, PatchCodec(2, 2.0), lambda image: torch.zeros(1, 1, 8), frames, alpha,
                          torch.rand(3, 16, 24), lambda window, device: torch.zeros(len(window), 6, height, width), n,
                          SamplerSettings(steps=20, sampler=sampler, guidance_scale=1.0),
                          progress=lambda step, total, x: previews.append(x))
        if declared == prediction_type:
            final = float((result.latents.double() - x0).abs().mean())
        first[declared] = float((previews[0].double() - x0).abs().mean())  # the x0 shown after the first step
    wrong = {"epsilon": "v_prediction", "v_prediction": "epsilon"}[prediction_type]
    # DDIM's last step lands on ᾱ = 0.99915 (SD1.5's set_alpha_to_one=False): √(1−ᾱ)·E|ε| ≈ 0.023 from x0
    assert final < (0.03 if sampler == "ddim" else 1e-5), final
    assert first[prediction_type] < 1e-4 and first[wrong] > 1.0, first
