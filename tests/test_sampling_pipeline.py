"""End-to-end sampling with the tiny models on CPU."""

import pytest
import torch

from dynascene_core.camera import camera_condition, make_preset
from dynascene_core.compositing import CompositeSettings, composite
from dynascene_core.conditioning import DiffusersVAECodec, encode_frames, foreground_pixels, generation_mask
from dynascene_core.models import DynaSceneModels
from dynascene_core.sampling.pipeline import GenerationInputError, SamplerSettings, fit_scene_image, generate

H = W = 32
N = 6


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return DynaSceneModels.build("tiny").eval()


def _inputs(n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(n, 3, H, W, generator=g)
    alpha = torch.zeros(n, 1, H, W)
    alpha[:, :, 8:24, 8:16] = 1  # aligned to 8-px latent cells: the generation mask is exactly 0/1
    scene = torch.rand(3, 40, 56, generator=g)
    return frames, alpha, scene, make_preset("pan_right", n)


class Spy:
    """Wraps a module's forward to record calls (and optionally the inputs)."""

    def __init__(self, module):
        self.module, self.calls, self.orig = module, [], module.forward

        def forward(*args, **kwargs):
            self.calls.append((args, kwargs))
            return self.orig(*args, **kwargs)

        module.forward = forward

    def restore(self):
        self.module.forward = self.orig


def _run(models, settings, inputs=None, **kw):
    frames, alpha, scene, traj = inputs or _inputs()
    return generate(models, DiffusersVAECodec(models.vae), models.image_encoder, frames, alpha, scene,
                    camera_condition(traj, H, W), len(traj), settings, **kw)


def test_shapes_and_determinism(models):
    settings = SamplerSettings(steps=2, context_length=4, context_overlap=2, eta=0.5)
    a, b = _run(models, settings), _run(models, settings)
    assert a.background.shape == a.composite.shape == (N, 3, H, W)
    assert a.latents.shape == (1, 4, N, H // 8, W // 8)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.composite, b.composite)
    assert not torch.equal(a.latents, _run(models, SamplerSettings(steps=2, context_length=4, context_overlap=2,
                                                                   eta=0.5, seed=1)).latents)


def test_reference_once_per_call_camera_per_window_and_windows_bounded(models):
    ref, den, cam = Spy(models.reference_net), Spy(models.denoiser), Spy(models.camera_encoder)
    try:
        result = _run(models, SamplerSettings(steps=50, context_length=4, context_overlap=1))
    finally:
        ref.restore(), den.restore(), cam.restore()
    assert len(result.windows) == 2
    assert len(ref.calls) == 1                     # once, reused by 50 steps x 2 windows
    assert len(cam.calls) == 50 * 2                # per window use: never all windows' features at once
    assert len(den.calls) == 50 * 2
    assert max(args[0].shape[2] for args, _ in den.calls) == 4  # the U-Net never sees more than a window
    sample, _, embeds = den.calls[0][0]
    assert sample.shape[0] == 2 and torch.equal(embeds[0], torch.zeros_like(embeds[0]))  # CFG: uncond first
    assert den.calls[0][1]["reference_mask"] == (False, True)


def test_a_video_in_one_window_encodes_its_camera_once(models):
    cam = Spy(models.camera_encoder)
    try:
        _run(models, SamplerSettings(steps=5))
    finally:
        cam.restore()
    assert len(cam.calls) == 1


def test_guidance_one_skips_the_unconditional_branch(models):
    den = Spy(models.denoiser)
    try:
        _run(models, SamplerSettings(steps=2, guidance_scale=1.0))
    finally:
        den.restore()
    assert all(args[0].shape[0] == 1 for args, _ in den.calls)
    assert den.calls[0][1]["reference_mask"] == (True,)


def test_video_within_one_window_equals_single_window_result(models):
    single = _run(models, SamplerSettings(steps=3, context_length=N))
    longer_window = _run(models, SamplerSettings(steps=3, context_length=16, context_overlap=4))
    assert torch.equal(single.latents, longer_window.latents)


def test_window_fusion_of_a_frame_local_model_matches_one_window(models):
    # Fresh motion modules and adaptors are zero-initialised (identity), so the tiny denoiser is frame-local:
    # every window predicts the same noise for a frame, and weights summing to 1 must reproduce it.
    single = _run(models, SamplerSettings(steps=3, context_length=N))
    windowed = _run(models, SamplerSettings(steps=3, context_length=3, context_overlap=1))
    assert len(windowed.windows) == 3
    torch.testing.assert_close(windowed.latents, single.latents, rtol=1e-4, atol=1e-4)


def test_foreground_reinjection_keeps_the_human_latent(models):
    frames, alpha, scene, traj = inputs = _inputs()
    result = _run(models, SamplerSettings(steps=3, foreground_reinjection=True), inputs)
    fg = encode_frames(DiffusersVAECodec(models.vae), foreground_pixels(frames, alpha)).permute(1, 0, 2, 3)[None]
    keep = 1 - generation_mask(alpha, (H // 8, W // 8)).permute(1, 0, 2, 3)[None]
    assert keep.sum() > 0
    torch.testing.assert_close(result.latents * keep, fg * keep)
    plain = _run(models, SamplerSettings(steps=3), inputs)
    assert not torch.allclose(plain.latents * keep, fg * keep)


def test_composite_keeps_the_human_pixels(models):
    frames, alpha, scene, traj = inputs = _inputs()
    plain = CompositeSettings(light_wrap=0.0, harmonize=0.0)
    result = _run(models, SamplerSettings(steps=1, compositing=plain), inputs, foreground=frames)
    human = alpha.expand_as(frames) > 0.5
    assert torch.equal(result.composite[human], frames[human])
    assert torch.equal(result.composite[~human], result.background[~human])
    default = _run(models, SamplerSettings(steps=1), inputs)         # matte-aware, harmonized: the composite call
    torch.testing.assert_close(default.composite, composite(frames, default.background, alpha))


def test_progress_reports_every_step_and_can_cancel(models):
    seen = []
    _run(models, SamplerSettings(steps=3), progress=lambda s, t, x0: seen.append((s, t, tuple(x0.shape))))
    assert seen == [(1, 3, (1, 4, N, 4, 4)), (2, 3, (1, 4, N, 4, 4)), (3, 3, (1, 4, N, 4, 4))]

    class Cancelled(Exception):
        pass

    def cancel(step, total, x0):
        raise Cancelled

    with pytest.raises(Cancelled):
        _run(models, SamplerSettings(steps=3), progress=cancel)


@pytest.mark.parametrize("mutate,message", [
    (lambda f, a, s, t: (f, a[:-1], s, t), "5 mask frames"),
    (lambda f, a, s, t: (f, a, s, t[:4]), "trajectory has 4"),
    (lambda f, a, s, t: (f, a * 2, s, t), r"mask values must lie in \[0, 1\]"),
    (lambda f, a, s, t: (f[:0], a[:0], s, t[:0]), None),
    (lambda f, a, s, t: (f[:, :, :30], a[:, :, :30], s, t), "multiple of 8"),
    (lambda f, a, s, t: (f[:, :1], a, s, t), r"frames must be \(F, 3, H, W\)"),
    (lambda f, a, s, t: (f, a[:, :, :16], s, t), "mask size"),
])
def test_bad_inputs_fail_before_any_model_work(models, mutate, message):
    frames, alpha, scene, traj = _inputs()
    if message is None:  # an empty trajectory cannot even be built
        with pytest.raises(ValueError):
            mutate(frames, alpha, scene, traj)
        return
    ref, vae = Spy(models.reference_net), Spy(models.vae.encoder)
    try:
        with pytest.raises(GenerationInputError, match=message):
            _run(models, SamplerSettings(steps=2), mutate(frames, alpha, scene, traj))
    finally:
        ref.restore(), vae.restore()
    assert not ref.calls and not vae.calls


def test_empty_video_is_refused(models):
    frames, alpha, scene, traj = _inputs()
    with pytest.raises(GenerationInputError, match="empty"):
        generate(models, DiffusersVAECodec(models.vae), models.image_encoder, frames[:0], alpha[:0], scene,
                 camera_condition(traj, H, W), 0, SamplerSettings(steps=1))


def test_scene_image_is_fitted_by_cover_and_centre_crop():
    scene = torch.zeros(3, 10, 40)
    scene[:, :, 18:22] = 1  # a bright vertical band in the centre
    fitted = fit_scene_image(scene, 16, 16)
    assert fitted.shape == (3, 16, 16)
    assert fitted[:, :, 8].mean() > 0.9 and fitted[:, :, 0].mean() < 0.1


def test_interrupt_is_checked_before_every_window(models):
    calls = []

    class Cancelled(Exception):
        pass

    def interrupt():
        calls.append(1)
        if len(calls) == 3:  # step 2, first window
            raise Cancelled

    den = Spy(models.denoiser)
    try:
        with pytest.raises(Cancelled):
            _run(models, SamplerSettings(steps=5, context_length=4, context_overlap=2), interrupt=interrupt)
    finally:
        den.restore()
    assert len(den.calls) == 2  # cancelled between windows, no further U-Net work


def test_bad_composite_inputs_fail_before_sampling(models, monkeypatch):
    frames, alpha, scene, traj = inputs = _inputs()
    monkeypatch.setattr(models.denoiser, "forward", lambda *a, **k: pytest.fail("sampling started"))
    with pytest.raises(GenerationInputError, match="foreground colour \\(6, 3, 16, 32\\) differs from frames"):
        _run(models, SamplerSettings(steps=1), inputs, foreground=frames[:, :, :16])
    with pytest.raises(GenerationInputError, match="light_wrap must be in \\[0, 1\\], got 2"):
        _run(models, SamplerSettings(steps=1, compositing=CompositeSettings(light_wrap=2)), inputs)
