"""DynaScene inference: DDIM with reference attention, camera control, context windows and compositing.

Given the human frames and alpha matte, a scene image and a camera trajectory, :func:`generate`
produces the background video and the composite. ReferenceNet, CLIP embedding and camera-encoder
features are computed once per call and reused at every step and window; the U-Net sees one
context window at a time, so activation memory does not grow with the video length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from ..compositing import CompositeSettings, composite
from ..conditioning import (VAE_DOWNSCALE, LatentCodec, decode_latents, denoiser_input, encode_frames,
                            foreground_pixels, generation_mask, resize_cover_crop)
from ..models.clip import zero_image_embeds_like
from .schedule import (SAMPLERS, SD15_TRAINING_SCHEDULE, STOCHASTIC_SAMPLERS, inference_scheduler,
                       predicted_clean_latent)
from .windows import context_windows, window_weights

NUM_TRAIN_TIMESTEPS = SD15_TRAINING_SCHEDULE["num_train_timesteps"]
ProgressCallback = Callable[[int, int, torch.Tensor], None]
"""``progress(step, total_steps, x0_estimate (1, 4, F, h, w))``; may raise to cancel the run."""
ImageEncoder = Callable[[torch.Tensor], torch.Tensor]
"""``scene (1, 3, H, W)`` in [0, 1] → CLIP image embedding ``(1, 1, D)``."""
InterruptCheck = Callable[[], None]
"""Called before every U-Net call (each window of each step); raises to cancel the run promptly."""


class GenerationInputError(ValueError):
    """Inputs to :func:`generate` are inconsistent; raised before any model work starts."""


class DynaSceneNetworks(Protocol):
    denoiser: torch.nn.Module
    reference_net: torch.nn.Module
    camera_encoder: torch.nn.Module


@dataclass
class SamplerSettings:
    """What a user tunes. ``guidance_scale`` 1 skips the unconditional branch entirely."""

    steps: int = 50
    sampler: str = "ddim"
    """``ddim``, ``dpmpp_2m``, ``unipc`` or ``euler`` (:data:`~.schedule.RECOMMENDED_STEPS` lists step counts)."""
    guidance_scale: float = 3.5
    camera_guidance: float = 0.0
    """Classifier-free guidance on the camera (beyond the paper; cf. Camera Motion Guidance, arXiv:2410.10802):
    one more U-Net branch sees the camera held still at each window's first pose (training never drops the
    camera, so a still camera is the in-distribution contrast), and ``camera_guidance * (cond - still)`` is
    added to the prediction, pushing the background further along the requested motion. 0 = off (the
    paper's sampler); costs one more branch per step it acts on."""
    camera_guidance_end: float = 1.0
    """Share of the noise schedule, from the noisiest end, that camera guidance acts on (as ComfyUI's
    ``end_percent``, on the timestep: it acts while ``t >= (1 - end) * 1000``). The layout and motion of
    a video are settled at high noise; stopping earlier spares the detail and the extra branch."""
    guidance_rescale: float = 0.0
    """Rescale of the guided prediction (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are
    Flawed", §3.4, with diffusers' ``rescale_noise_cfg``): pulls its standard deviation (over each context window)
    back towards the conditional branch's by this share, undoing the over-contrast strong guidance (either kind)
    gives. It works in the model's prediction space: ``v`` for the small model, as in that paper; the noise for
    SD1.5 weights, as diffusers' pipelines do. 0 = off; 0.7 in the paper."""
    eta: float = 0.0
    seed: int = 0
    context_length: int = 24
    context_overlap: int = 4
    foreground_reinjection: bool = False
    """Paper eq. 4: after each step, replace the human region of the latent by the noised foreground latent."""
    vae_chunk: int = 2
    """Frames per VAE encode/decode call: decoding 8 frames of 768x432 at once holds 5.1 GiB (the former
    peak of a whole generation), 2 frames 1.3 GiB, for about 0.03 s more per 24 frames on an H200."""
    compositing: CompositeSettings = field(default_factory=CompositeSettings)
    """How the human is put over the generated background (edges, harmonization, shadow)."""

    @property
    def branches(self) -> int:
        """Most rows of a U-Net call: [unconditional (guidance > 1)], conditional, [still camera (while
        camera guidance acts)]."""
        return (self.guidance_scale > 1) + 1 + (self.camera_guidance > 0 and self.camera_guidance_end > 0)


@dataclass
class GenerationResult:
    background: torch.Tensor
    """``(F, 3, H, W)`` generated background, float in [0, 1], on the CPU."""
    composite: torch.Tensor
    """``(F, 3, H, W)`` the human over the generated background."""
    latents: torch.Tensor
    """``(1, 4, F, h, w)`` final latents (scaled), on the CPU."""
    windows: list[range] = field(default_factory=list)


MAX_SEED = 2**64 - 1
MAX_CAMERA_GUIDANCE = 10.0


def validate_inputs(frames: torch.Tensor, alpha: torch.Tensor | None, scene_image: torch.Tensor | None,
                    num_camera_frames: int | None, settings: SamplerSettings, max_context: int | None = None) -> None:
    """Check shapes, ranges, counts and settings, with messages that name the input and both numbers.

    ``alpha``, ``scene_image``, ``num_camera_frames`` or ``max_context`` given as None are not known yet and
    their checks are skipped: a host checks the video and the settings first, before it computes the matte
    or the camera, with these same rules. ``max_context``: the motion modules' maximum frame count
    (``denoiser.max_frames``); a context window longer than that is refused here rather than deep inside
    the U-Net."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise GenerationInputError(f"frames must be (F, 3, H, W), got {tuple(frames.shape)}")
    n, _, height, width = frames.shape
    if n == 0:
        raise GenerationInputError("frames: the video is empty (0 frames)")
    if alpha is not None:
        if alpha.ndim != 4 or alpha.shape[1] != 1:
            raise GenerationInputError(f"mask must be (F, 1, H, W), got {tuple(alpha.shape)}")
        if alpha.shape[0] != n:
            raise GenerationInputError(f"frame count mismatch: {n} frames but {alpha.shape[0]} mask frames")
        if alpha.shape[2:] != frames.shape[2:]:
            raise GenerationInputError(f"mask size {tuple(alpha.shape[2:])} differs from frame size {(height, width)}")
    if num_camera_frames is not None and num_camera_frames != n:
        raise GenerationInputError(f"frame count mismatch: {n} frames but the camera trajectory has "
                                   f"{num_camera_frames} (resample the trajectory to {n} frames)")
    if height % VAE_DOWNSCALE or width % VAE_DOWNSCALE:
        raise GenerationInputError(f"frame size {width}x{height} must be a multiple of {VAE_DOWNSCALE} "
                                   f"(e.g. {width // 8 * 8}x{height // 8 * 8})")
    for name, t in (("frames", frames), ("mask", alpha), ("scene image", scene_image)):
        if t is None:
            continue
        if not torch.is_floating_point(t):
            raise GenerationInputError(f"{name} must be a float tensor in [0, 1], got {t.dtype}")
        lo, hi = float(t.min()), float(t.max())
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi > 1:
            raise GenerationInputError(f"{name} values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    if scene_image is not None and (scene_image.ndim != 3 or scene_image.shape[0] != 3):
        raise GenerationInputError(f"scene image must be (3, H, W), got {tuple(scene_image.shape)}")
    if not 1 <= settings.steps <= NUM_TRAIN_TIMESTEPS:
        raise GenerationInputError(f"steps must be between 1 and {NUM_TRAIN_TIMESTEPS}, got {settings.steps}")
    if not 0 <= settings.seed <= MAX_SEED:
        raise GenerationInputError(f"seed must be between 0 and 2**64-1, got {settings.seed}")
    if settings.sampler not in SAMPLERS:
        raise GenerationInputError(f"unknown sampler {settings.sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if settings.eta > 0 and settings.sampler not in STOCHASTIC_SAMPLERS:
        raise GenerationInputError(f"eta {settings.eta} needs a stochastic sampler ({', '.join(STOCHASTIC_SAMPLERS)}); "
                                   f"{settings.sampler} is deterministic here: set eta to 0")
    if settings.guidance_scale < 1:
        raise GenerationInputError(f"guidance scale must be >= 1, got {settings.guidance_scale}")
    if not 0 <= settings.camera_guidance <= MAX_CAMERA_GUIDANCE:
        raise GenerationInputError(f"camera guidance must be between 0 and {MAX_CAMERA_GUIDANCE:g}, "
                                   f"got {settings.camera_guidance:g}")
    if not 0 <= settings.guidance_rescale <= 1:
        raise GenerationInputError(f"guidance rescale must be between 0 and 1, got {settings.guidance_rescale:g}")
    if not 0 <= settings.camera_guidance_end <= 1:
        raise GenerationInputError(f"camera guidance end must be between 0 and 1 (a share of the noise "
                                   f"schedule), got {settings.camera_guidance_end:g}")
    try:
        windows = context_windows(n, settings.context_length, settings.context_overlap)
        settings.compositing.validate()
    except ValueError as exc:
        raise GenerationInputError(str(exc)) from None
    if max_context is not None and len(windows[0]) > max_context:
        raise GenerationInputError(f"context length {len(windows[0])} exceeds the motion modules' maximum of "
                                   f"{max_context} frames (motion_max_seq_length): use a context length of at "
                                   f"most {max_context}")


def fit_scene_image(scene_image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize ``(3, h, w)`` to cover ``height × width`` (aspect kept) and centre-crop to it."""
    return resize_cover_crop(scene_image[None], height, width)[0]


@torch.no_grad()
def generate(
    networks: DynaSceneNetworks,
    codec: LatentCodec,
    encode_image: ImageEncoder,
    frames: torch.Tensor,
    alpha: torch.Tensor,
    scene_image: torch.Tensor,
    plucker: Callable[[range], torch.Tensor],
    num_camera_frames: int,
    settings: SamplerSettings = SamplerSettings(),
    progress: ProgressCallback | None = None,
    device: torch.device | str | None = None,
    interrupt: InterruptCheck | None = None,
    decode_progress: Callable[[int, int], None] | None = None,
    foreground: torch.Tensor | None = None,
) -> GenerationResult:
    """Generate the background video behind a human.

    Args:
        networks: denoiser, reference_net and camera_encoder, already on ``device`` in their dtype.
        codec: VAE encode/decode (pixels in [0, 1] ⇄ scaled latents).
        encode_image: CLIP image embedding of the scene, ``(1, 3, H, W)`` in [0, 1] → ``(1, 1, D)``; it is
            given the scene as fitted to the video (as in training), not the raw image.
        frames: ``(F, 3, H, W)`` original video in [0, 1]; alpha: ``(F, 1, H, W)`` human matte (1 = human).
        scene_image: ``(3, h, w)`` in [0, 1]; resized to cover and centre-cropped to ``H × W``.
        plucker: ``(frame indices, device) -> (len, 6, H, W)`` Plücker embedding of those frames relative to
            the reference camera (:func:`dynascene_core.camera.camera_condition`), made on ``device``.
        num_camera_frames: frames in the trajectory (must equal F).
        foreground: ``(F, 3, H, W)`` the matting network's foreground colour for the composite (RVM's
            ``fgr``); ``None`` estimates it from ``frames`` and ``alpha``.
        decode_progress: ``(frames_decoded, F)`` during VAE decoding (after every chunk).
    """
    denoiser, reference_net, camera_encoder = networks.denoiser, networks.reference_net, networks.camera_encoder
    validate_inputs(frames, alpha, scene_image, num_camera_frames, settings, denoiser.max_frames)
    if foreground is not None and foreground.shape != frames.shape:
        raise GenerationInputError(f"foreground colour {tuple(foreground.shape)} differs from frames "
                                   f"{tuple(frames.shape)}")
    param = next(denoiser.parameters())
    device = torch.device(device) if device is not None else param.device
    dtype = param.dtype
    n, _, height, width = frames.shape
    windows = context_windows(n, settings.context_length, settings.context_overlap)
    weights = window_weights(windows, n).to(device)
    guided = settings.guidance_scale > 1

    # Conditions, computed once per call.
    fg_latent = encode_frames(codec, foreground_pixels(frames, alpha), settings.vae_chunk).to(device)
    fg_latent = fg_latent.permute(1, 0, 2, 3)[None]                          # (1, C, F, h, w)
    latent_size = tuple(fg_latent.shape[-2:])  # the codec's: H/8 for SD1.5's VAE, H/p for a patch codec
    gen_mask = generation_mask(alpha, latent_size).to(device).permute(1, 0, 2, 3)[None]  # (1, 1, F, h, w)
    scene = fit_scene_image(scene_image.float(), height, width)
    scene_latent = encode_frames(codec, scene[None]).to(device, dtype)       # (1, 4, h, w)
    image_embeds = encode_image(scene[None]).to(device, dtype).reshape(1, 1, -1)
    bank = denoiser.project_reference(reference_net(scene_latent, image_embeds))  # once, not per step

    zero_embeds = zero_image_embeds_like(image_embeds)
    camera_from = (1 - settings.camera_guidance_end) * NUM_TRAIN_TIMESTEPS  # camera guidance while t >= this
    if settings.guidance_rescale > 0:
        from diffusers.guiders.guider_utils import rescale_noise_cfg

    def branch_conditions(still: bool) -> tuple[torch.Tensor, tuple[bool, ...]]:
        """CLIP embeddings ``(rows, 1, D)`` and reference flags of the rows [uncond], cond, [still camera]."""
        embeds = torch.cat([zero_embeds] * guided + [image_embeds] * (1 + still))
        return embeds, (False,) * guided + (True,) * (1 + still)

    conditions = {still: branch_conditions(still) for still in (False, True)}

    def window_camera(window: range, still: bool) -> list[torch.Tensor]:
        """Camera features per level ``(1 or rows, C, len(window), h, w)``: the requested camera, and with
        ``still`` the camera held at the window's first pose in the last row."""
        features = camera_encoder(plucker(window, device).to(dtype)[None])
        if not still:
            return features
        held = camera_encoder(plucker([window.start] * len(window), device).to(dtype)[None])
        return [torch.cat([f] * (guided + 1) + [h]) for f, h in zip(features, held)]

    # Camera features of one window at 768x432 take ~145 MB: with several windows they are recomputed
    # at every use (a few % of a step) instead of held for all windows, so memory stays flat in length.
    single_window: dict[bool, list[torch.Tensor]] = {}

    def camera_features(window: range, still: bool) -> list[torch.Tensor]:
        if len(windows) > 1:
            return window_camera(window, still)
        if still not in single_window:
            single_window.clear()  # camera guidance only ever stops: the still rows are not needed again
            single_window[still] = window_camera(window, still)
        return single_window[still]

    prediction_type = denoiser.config.prediction_type  # "epsilon" (SD1.5) or "v_prediction": the schedulers convert
    scheduler = inference_scheduler(settings.steps, settings.sampler, prediction_type=prediction_type)
    # one CPU generator for the initial noise and then the eta > 0 step noise: the same on every device
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    noise = torch.randn((1, fg_latent.shape[1], n, *latent_size), generator=generator).to(device)
    latents = noise * scheduler.init_noise_sigma

    timesteps = scheduler.timesteps.tolist()  # host ints: no device sync per step
    for step, t in enumerate(timesteps):
        pred = torch.zeros_like(latents)
        model_latents = scheduler.scale_model_input(latents, t)  # identity except for Euler's sigma scaling
        still = settings.camera_guidance > 0 and t >= camera_from
        embeds, reference_mask = conditions[still]
        rows = len(reference_mask)  # [uncond], cond, [still camera]
        for window, w in zip(windows, weights):
            if interrupt is not None:
                interrupt()
            sl = slice(window.start, window.stop)
            x = denoiser_input(model_latents[:, :, sl], gen_mask[:, :, sl], fg_latent[:, :, sl]).to(dtype)
            if rows > 1:
                x = x.repeat(rows, 1, 1, 1, 1)
            out = denoiser(x, t, embeds, reference=bank, reference_mask=reference_mask,
                           camera_features=camera_features(window, still)).float()
            if rows > 1:
                branches = out.chunk(rows)
                cond = branches[guided]
                out = cond
                if guided:
                    out = branches[0] + settings.guidance_scale * (cond - branches[0])
                if still:
                    out = out + settings.camera_guidance * (cond - branches[-1])
                if settings.guidance_rescale > 0:
                    out = rescale_noise_cfg(out, cond, settings.guidance_rescale)
            pred[:, :, sl] += out * w[sl].view(1, 1, -1, 1, 1)
        if settings.sampler == "ddim":
            step_noise = None
            if settings.eta > 0:
                step_noise = torch.randn(latents.shape, generator=generator).to(device)
            result = scheduler.step(pred, t, latents, eta=settings.eta, variance_noise=step_noise)
        else:
            result = scheduler.step(pred, t, latents)
        x0 = getattr(result, "pred_original_sample", None)
        if x0 is None and progress is not None:  # multistep solvers keep DDPM-space latents
            x0 = predicted_clean_latent(latents, pred, scheduler.alphas_cumprod[int(t)].item(), prediction_type)
        latents = result.prev_sample
        if settings.foreground_reinjection:
            if step + 1 < len(timesteps):
                fg_t = scheduler.add_noise(fg_latent, noise, torch.tensor(timesteps[step + 1:step + 2]))
            else:
                fg_t = fg_latent
            latents = latents * gen_mask + fg_t * (1 - gen_mask)
        if progress is not None:
            progress(step + 1, len(timesteps), x0)

    background = decode_latents(codec, latents[0].permute(1, 0, 2, 3), settings.vae_chunk, device="cpu",
                                progress=decode_progress)
    comp = composite(frames.float().cpu(), background, alpha.float().cpu(),
                     None if foreground is None else foreground.float().cpu(), settings.compositing)
    return GenerationResult(background=background, composite=comp, latents=latents.cpu(), windows=windows)
