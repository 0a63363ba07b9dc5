"""Sampler, composite and matting nodes executed without a host, on tiny models and small frames."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from dynascene_core.camera import make_preset
from dynascene_core.compositing import CompositeSettings, composite
from dynascene_core.conditioning import DiffusersVAECodec
from dynascene_core.matting import RobustVideoMatting, matte_video
from dynascene_core.models import DynaSceneModels
from dynascene_core.camera import camera_condition
from dynascene_core.sampling.pipeline import SamplerSettings, generate
from nodes import compositing as nodes_compositing
from nodes import host, matting, sampler
from nodes.models import DynaSceneModel
from nodes_fixtures import TinyHostCLIPVision, TinyHostVAE, model_folder, standalone_dirs

F, H, W = 6, 32, 32


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(5)
    return DynaSceneModels.build("tiny").eval()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    return standalone_dirs(tmp_path, monkeypatch)


def _inputs():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(F, H, W, 3, generator=g)
    mask = torch.zeros(F, H, W)
    mask[:, 8:24, 10:20] = 1
    scene = torch.rand(1, 40, 48, 3, generator=g)
    return images, mask, scene


def _run(tiny, images, mask, scene, camera, **overrides):
    args = dict(fit_camera_to_frames=True, steps=2, guidance=2.0, seed=7, eta=0.0, foreground_reinjection=True,
                context_length=4, context_overlap=2, feather=1)
    args.update(overrides)
    model = DynaSceneModel.wrap(tiny, [])
    return sampler.DynaSceneSampler().sample(model, TinyHostVAE(tiny.vae), TinyHostCLIPVision(tiny.image_encoder),
                                             scene, images, mask, camera, **args)


def test_sampler_matches_the_core_pipeline(tiny):
    images, mask, scene = _inputs()
    camera = make_preset("pan_left", F)
    background, comp, latent = _run(tiny, images, mask, scene, camera)
    assert background.shape == comp.shape == (F, H, W, 3)
    # the host's SD1.5 LATENT convention: frames on the batch axis, not scaled by 0.18215
    assert latent["samples"].shape == (F, 4, H // 8, W // 8)

    frames, alpha, scene_chw = images.permute(0, 3, 1, 2), mask[:, None], scene[0].permute(2, 0, 1)
    settings = SamplerSettings(steps=2, guidance_scale=2.0, seed=7, context_length=4, context_overlap=2,
                               foreground_reinjection=True, compositing=CompositeSettings(feather=1))
    want = generate(tiny, DiffusersVAECodec(tiny.vae), tiny.image_encoder, frames, alpha, scene_chw,
                    camera_condition(camera, H, W), F, settings)
    assert torch.allclose(latent["samples"] * 0.18215, want.latents[0].permute(1, 0, 2, 3), atol=1e-5)
    decoded = tiny.vae.decode(latent["samples"]).sample.add(1).div(2).clamp(0, 1)  # diffusers VAE: unscaled in
    assert torch.allclose(decoded.permute(0, 2, 3, 1), background, atol=1e-4)
    assert torch.allclose(background, want.background.permute(0, 2, 3, 1), atol=1e-5)
    assert torch.allclose(comp, want.composite.permute(0, 2, 3, 1), atol=1e-5)

    # the camera is resampled to the frame count when it differs (default on)
    _, _, longer = _run(tiny, images, mask, scene, make_preset("pan_left", 11))
    resampled = make_preset("pan_left", 11).resample(F)
    _, _, direct = _run(tiny, images, mask, scene, resampled)
    assert torch.equal(longer["samples"], direct["samples"])


def test_camera_guidance_reaches_the_core_and_the_memory_estimate(tiny, monkeypatch):
    """The optional camera_guidance and guidance_rescale inputs become the core settings, and the memory asked of
    the host counts the third U-Net branch (3/2 of guidance alone)."""
    settings_seen, working_seen = [], []
    real_generate = sampler.generate
    monkeypatch.setattr(sampler, "generate", lambda *a, **k: settings_seen.append(a[8]) or real_generate(*a, **k))
    model = DynaSceneModel.wrap(tiny, [])
    real_load = model.load_for_inference
    monkeypatch.setattr(model, "load_for_inference", lambda working: working_seen.append(working) or real_load(working))
    images, mask, scene = _inputs()
    for camera_guidance, end, rescale in ((0.0, 1.0, 0.0), (1.5, 0.6, 0.7)):
        sampler.DynaSceneSampler().sample(model, TinyHostVAE(tiny.vae), TinyHostCLIPVision(tiny.image_encoder), scene,
                                          images, mask, make_preset("pan_left", F), True, 2, 2.0, 7, 0.0, False, 4,
                                          2, 0, camera_guidance=camera_guidance, camera_guidance_end=end,
                                          guidance_rescale=rescale)
    assert [(s.camera_guidance, s.camera_guidance_end, s.guidance_rescale) for s in settings_seen] == [
        (0.0, 1.0, 0.0), (1.5, 0.6, 0.7)]
    assert working_seen[-1] * 2 == working_seen[0] * 3
    with pytest.raises(ValueError, match="camera guidance must be between 0 and 10, got 11"):
        _run(tiny, images, mask, scene, make_preset("pan_left", F), camera_guidance=11.0)


def test_composite_node_is_the_core_composite():
    images, mask, _ = _inputs()
    background = torch.rand(F, H, W, 3)
    node = sampler.DynaSceneComposite()
    (out,) = node.composite(images, background, mask, 2)
    frames, back = images.permute(0, 3, 1, 2), background.permute(0, 3, 1, 2)
    want = composite(frames, back, mask[:, None], settings=CompositeSettings(feather=2))
    assert torch.allclose(out, want.permute(0, 2, 3, 1))
    fgr = torch.rand(F, H, W, 3)                                        # RVM's foreground colour, when connected
    (settings,) = nodes_compositing.CompositeSettingsNode().settings(0.0, 0.0, 8, 0.0, 30.0, 0.35)
    (single,) = node.composite(images, background, mask[:1], 0, foreground=fgr, composite_settings=settings)
    assert torch.allclose(single[3], fgr[3] * mask[0, ..., None] + background[3] * (1 - mask[0, ..., None]))
    (shadowed,) = node.composite(images, background, mask, 0, fgr, nodes_compositing.CompositeSettingsNode().settings(
        0.0, 0.0, 8, 0.8, 0.0, 0.35)[0])
    below_feet = (slice(None), slice(24, 27), slice(10, 20))
    assert (shadowed <= single + 1e-6).all()
    assert float((single - shadowed)[below_feet].mean()) > 0.2        # the node's shadow setting reaches the core
    with pytest.raises(ValueError, match="background is 5 frames of 32x32 but images are 6 frames"):
        node.composite(images, background[:5], mask, 0)
    with pytest.raises(ValueError, match="foreground is 6 frames of 16x32 but images are 6 frames of 32x32"):
        node.composite(images, background, mask, 0, foreground=fgr[:, :, :16])


@pytest.mark.parametrize("change,message", [
    (lambda a: a.update(images=a["images"][:, :30]), r"images are 32x30 pixels.*divisible by 8.*32x24"),
    (lambda a: a.update(mask=a["mask"][:4]), r"mask: has 4 frames but the video has 6"),
    (lambda a: a.update(mask=a["mask"][:, :16]), r"mask is 32x16 pixels but the images are 32x32"),
    (lambda a: a.update(camera=make_preset("pan_left", 9), fit_camera_to_frames=False),
     r"camera has 9 frames but the video has 6: turn on 'fit_camera_to_frames' or use 'Resample / Trim Camera'"),
    (lambda a: a.update(context_length=8, context_overlap=8), r"overlap"),
    (lambda a: a.update(clip=TinyHostCLIPVision(lambda x: torch.zeros(len(x), 1, 768))),
     r"CLIP vision model gives 768-d image embeddings but the DynaScene model expects 32-d"),
])
def test_bad_inputs_fail_before_sampling_with_clear_messages(tiny, monkeypatch, change, message):
    images, mask, scene = _inputs()
    args = {"images": images, "mask": mask, "camera": make_preset("pan_left", F), "fit_camera_to_frames": True,
            "context_length": 4, "context_overlap": 2, "clip": TinyHostCLIPVision(tiny.image_encoder)}
    change(args)
    monkeypatch.setattr(sampler, "generate", lambda *a, **k: pytest.fail("sampling started"))
    model = DynaSceneModel.wrap(tiny, [])
    with pytest.raises(ValueError, match=message):
        sampler.DynaSceneSampler().sample(model, TinyHostVAE(tiny.vae), args["clip"], scene, args["images"],
                                          args["mask"], args["camera"], args["fit_camera_to_frames"], 2, 2.0, 0, 0.0,
                                          False, args["context_length"], args["context_overlap"], 0.0)


def test_cancel_stops_sampling_at_the_next_step(tiny, monkeypatch):
    calls = []

    class Interrupted(Exception):
        pass

    def check():
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted

    monkeypatch.setattr(host, "check_interrupted", check)
    images, mask, scene = _inputs()
    with pytest.raises(Interrupted):
        _run(tiny, images, mask, scene, make_preset("pan_left", F), steps=20)
    assert len(calls) == 2  # step 1 ran, step 2 raised: 18 steps never ran


# -- matting ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rvm_state():
    torch.manual_seed(11)
    return {k: v.clone() for k, v in RobustVideoMatting("mobilenetv3").state_dict().items()}


def test_matting_nodes_match_the_core(dirs, rvm_state):
    save_file(rvm_state, os.path.join(model_folder(dirs, "rvm"), "rvm_tiny.safetensors"))
    assert matting.LoadMattingModel.INPUT_TYPES()["required"]["model_name"][0] == ["rvm_tiny.safetensors"]
    (model,) = matting.LoadMattingModel().load("rvm_tiny.safetensors")
    images = torch.rand(5, 32, 32, 3, generator=torch.Generator().manual_seed(2))
    foreground, mask = matting.MatteVideo().matte(model, images, 2, 0.0)
    want = matte_video(model.network, images.permute(0, 3, 1, 2), chunk=5)
    assert foreground.shape == (5, 32, 32, 3) and mask.shape == (5, 32, 32)
    assert torch.allclose(mask, want.alpha[:, 0], atol=1e-5)
    assert torch.allclose(foreground, want.foreground.permute(0, 2, 3, 1), atol=1e-5)  # RVM's fgr colour
    with pytest.raises(FileNotFoundError, match="'rvm' model folder.*rvm_mobilenetv3.pth"):
        matting.LoadMattingModel().load("missing.pth")


def test_refine_mask_steps_in_order():
    mask = torch.zeros(3, 20, 20)
    mask[:, 4:16, 4:16] = 0.8
    mask[:, 8:10, 8:10] = 0.0        # a hole
    mask[:, 0, 19] = 1.0             # a one-pixel island
    mask[1] = 0                       # one empty frame: flicker
    refine = matting.RefineMask().refine
    (same,) = refine(mask, 0.0, False, 0, 0, 0, 0)
    assert torch.equal(same, mask)
    (clean,) = refine(mask, 0.5, True, 2, 0, 0, 0)
    assert torch.equal(clean[0, 4:16, 4:16], torch.ones(12, 12)) and clean[0, 0, 19] == 0
    assert clean[0].sum() == 144
    (grown,) = refine(mask, 0.5, True, 2, 1, 0, 0)
    (shrunk,) = refine(mask, 0.5, True, 2, -1, 0, 0)
    assert grown[0].sum() > 144 > shrunk[0].sum()
    (smooth,) = refine(mask, 0.5, True, 2, 0, 1, 0)
    assert torch.allclose(smooth[1, 10, 10], torch.tensor(2 / 3))
    (soft,) = refine(mask, 0.5, True, 2, 0, 0, 2)
    assert 0 < soft[0, 4, 10] < 1 and soft[0, 10, 10] == pytest.approx(1.0)


def test_lazy_inputs_are_asked_for_in_stages_after_the_checks(tiny):
    """The host's lazy protocol: unevaluated inputs arrive as None, unconnected optional ones are absent."""
    images, mask, scene = _inputs()
    widgets = dict(fit_camera_to_frames=False, steps=2, guidance=2.0, seed=0, eta=0.0, foreground_reinjection=False,
                   context_length=4, context_overlap=2, feather=0)
    lazy = dict(dynascene_model=None, vae=None, clip_vision=None, scene_image=None, camera=None, mask=None)
    node = sampler.DynaSceneSampler()
    assert sorted(node.check_lazy_status(images=images, **widgets, **lazy, foreground=None)) == sorted(
        ["dynascene_model", "vae", "clip_vision", "scene_image", "camera"])
    # the frames alone already fail on their size, and settings on the frame count
    with pytest.raises(ValueError, match=r"images are 32x30 pixels.*divisible by 8"):
        node.check_lazy_status(images=images[:, :30], **widgets, **lazy)
    with pytest.raises(ValueError, match=r"0 <= overlap < length \(got length=4, overlap=4\)"):
        node.check_lazy_status(images=images, **{**widgets, "context_overlap": 4}, **lazy)

    first = dict(lazy, dynascene_model=DynaSceneModel.wrap(tiny, []), vae=TinyHostVAE(tiny.vae),
                 clip_vision=TinyHostCLIPVision(tiny.image_encoder), scene_image=scene, camera=make_preset("pan_left", F))
    assert node.check_lazy_status(images=images, **widgets, **first, foreground=None) == ["mask", "foreground"]
    assert node.check_lazy_status(images=images, **widgets, **first) == ["mask"]   # foreground unconnected
    # camera and model known: their mismatches fail before the matte is asked for
    with pytest.raises(ValueError, match="the camera has 9 frames but the video has 6"):
        node.check_lazy_status(images=images, **widgets, **dict(first, camera=make_preset("pan_left", 9)))
    max_frames = tiny.config.motion["motion_max_seq_length"]
    long_video = images[:1].expand(max_frames + 2, -1, -1, -1)
    with pytest.raises(ValueError, match=f"exceeds the motion modules' maximum of {max_frames} frames"):
        node.check_lazy_status(images=long_video, **{**widgets, "context_length": max_frames + 1},
                               **dict(first, camera=make_preset("pan_left", max_frames + 2)))
    assert node.check_lazy_status(images=images, **widgets, **dict(first, mask=mask)) == []
    with pytest.raises(ValueError, match="mask: has 4 frames but the video has 6"):
        node.check_lazy_status(images=images, **widgets, **dict(first, mask=mask[:4]))
