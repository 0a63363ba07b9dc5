"""The DynaScene sampler node (background video behind a human, camera-controlled) and the composite node.

All sampling and compositing math is :func:`dynascene_core.sampling.pipeline.generate` and
:func:`dynascene_core.compositing.composite`; this module converts ComfyUI types, validates inputs
with messages a user can act on, and reports progress (with previews) and cancellation.
"""

from __future__ import annotations

import functools

from dynascene_core.compositing import composite
from dynascene_core.conditioning import VAE_DOWNSCALE
from dynascene_core.camera import camera_condition
from dynascene_core.sampling.pipeline import (MAX_CAMERA_GUIDANCE, SamplerSettings, fit_scene_image, generate,
                                              validate_inputs)
from dynascene_core.sampling.schedule import RECOMMENDED_STEPS, SAMPLERS

from . import host
from .adapters import ProgressReporter, frames_to_image, image_to_frames, latents_to_host, mask_to_core
from .compositing import settings_with_feather
from .models import HostVAECodec, check_vae, clip_image_embeds
from .types import CAMERA, CATEGORY, COMPOSITE_SETTINGS, MODEL

GENERATE_CATEGORY = f"{CATEGORY}/Generate"
MAX_FRAMES = 4096
WORKING_BYTES_PER_LATENT_ELEMENT = 11_500
"""Sampling working memory per (batch x frame x latent pixel) and per byte of the inference dtype: the sd15 model
at 768x432, one guided window of 24 frames in fp16 peaked at 10.33 GiB on an H200 (BENCHMARKS.md, inference),
of which 4.99 GiB are the weights of all five networks (2,681 M parameters)."""


def sampling_working_memory(context_length: int, height: int, width: int, batch: int, dtype) -> int:
    """Bytes the sampler needs beyond the weights for one context window of ``batch`` guidance branches
    (given to the host's memory manager)."""
    latent_pixels = (height // VAE_DOWNSCALE) * (width // VAE_DOWNSCALE)
    return WORKING_BYTES_PER_LATENT_ELEMENT * dtype.itemsize * batch * context_length * latent_pixels


def check_frame_size(height: int, width: int, name: str = "images") -> None:
    """Frames must be a multiple of 8 pixels (the VAE's downscale); suggest the nearest size."""
    if height % VAE_DOWNSCALE or width % VAE_DOWNSCALE:
        raise ValueError(f"{name} are {width}x{height} pixels; DynaScene needs width and height divisible by "
                         f"{VAE_DOWNSCALE}. Resize (e.g. with an 'Upscale Image' node) to "
                         f"{width // VAE_DOWNSCALE * VAE_DOWNSCALE}x{height // VAE_DOWNSCALE * VAE_DOWNSCALE} first")


COMPOSITE_INPUTS = {
    "foreground": ("IMAGE", {"tooltip": "The human's own colour from 'Matte Video with RVM' (its foreground "
                                        "output). Unconnected, it is estimated from the images and the mask."}),
    "composite_settings": (COMPOSITE_SETTINGS, {"tooltip": "Light wrap, harmonization and contact shadow "
                                                           "(Composite Settings node); unconnected: the defaults."}),
}
"""Optional inputs shared by the Sampler (its composite output) and the Composite node."""


def composite_foreground(foreground, frames, name: str = "foreground"):
    """The optional ``foreground`` IMAGE as core frames matching ``frames`` (None when unconnected)."""
    if foreground is None:
        return None
    colour = image_to_frames(foreground, name)
    if colour.shape != frames.shape:
        raise ValueError(f"{name} is {colour.shape[0]} frames of {colour.shape[3]}x{colour.shape[2]} but images are "
                         f"{frames.shape[0]} frames of {frames.shape[3]}x{frames.shape[2]}: use the foreground from "
                         f"matting the same frames")
    return colour


def check_same_size(mask, frames, mask_name: str = "mask") -> None:
    if tuple(mask.shape[-2:]) != tuple(frames.shape[-2:]):
        raise ValueError(f"{mask_name} is {mask.shape[-1]}x{mask.shape[-2]} pixels but the images are "
                         f"{frames.shape[-1]}x{frames.shape[-2]}: use the mask from matting the same frames")


FIRST_STAGE_INPUTS = ("dynascene_model", "vae", "clip_vision", "scene_image", "camera", "composite_settings")
"""Inputs the sampler asks the host for once the frames passed its checks: models, scene, camera, settings."""
MATTE_INPUTS = ("mask", "foreground")
"""Asked for last, once everything else passed its checks: the outputs of matting, the costly part."""


def lazy(spec: tuple) -> tuple:
    """An input spec the host evaluates only when the node asks for it (``check_lazy_status``)."""
    kind, options = spec
    return kind, {**options, "lazy": True}


def _waiting(inputs: dict, names: tuple[str, ...]) -> list[str]:
    """The connected lazy inputs among ``names`` the host has not evaluated yet (unconnected ones are absent)."""
    return [name for name in names if name in inputs and inputs[name] is None]


class DynaSceneSampler:
    """In the host the sampler checks its inputs in stages, before the costly nodes that feed it run:
    ``images`` is its only eager input, so it is staged as soon as the frames exist; its entry point is
    ``async`` because ComfyUI stages an available async node before any other (``ux_friendly_pick_node``),
    i.e. before matting or camera estimation of the same frames. ``check_lazy_status`` then checks the
    frames and settings, asks for models, scene and camera, checks them, and only then asks for the matte."""

    DESCRIPTION = ("Generate a new background video behind the human in 'images', matching the scene image and "
                   "following the camera trajectory (DDIM). Long videos are processed in overlapping context "
                   "windows. Outputs the background, the human composited over it, and the latents. Sizes, frame "
                   "counts and settings are checked before matting or camera estimation upstream run.")
    CATEGORY = GENERATE_CATEGORY
    FUNCTION = "sample_in_host"
    RETURN_TYPES = ("IMAGE", "IMAGE", "LATENT")
    RETURN_NAMES = ("background", "composite", "latent")
    OUTPUT_TOOLTIPS = ("The generated background frames.", "The human over the generated background.",
                       "Final latents as ComfyUI's SD1.5 LATENT (frames on the batch axis, unscaled): "
                       "VAE Decode with the same VAE gives the background frames.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dynascene_model": lazy((MODEL, {})),
                "vae": lazy(("VAE", {"tooltip": "The SD1.5 VAE (sd-vae-ft-mse) from ComfyUI's Load VAE."})),
                "clip_vision": lazy(("CLIP_VISION", {"tooltip": "CLIP ViT-L/14 from ComfyUI's Load CLIP Vision."})),
                "scene_image": lazy(("IMAGE", {"tooltip": "The scene to put the human in (first image used; "
                                                          "resized to cover the video and centre-cropped)."})),
                "images": ("IMAGE", {"tooltip": "The video frames with the human (width/height divisible by 8)."}),
                "mask": lazy(("MASK", {"tooltip": "Human alpha per frame (1 = human), e.g. from Matte Video."})),
                "camera": lazy((CAMERA, {"tooltip": "Camera trajectory of the generated background."})),
                "fit_camera_to_frames": ("BOOLEAN", {
                    "default": True, "tooltip": "Resample the camera to the video's frame count when they differ "
                                                "(off: a mismatch is an error)."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 1000}),
                "guidance": ("FLOAT", {"default": 3.5, "min": 1.0, "max": 30.0, "step": 0.1,
                                       "tooltip": "Classifier-free guidance scale on the scene image (1 = off, "
                                                  "twice as fast)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
                "eta": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                  "tooltip": "DDIM eta: 0 = deterministic, 1 = DDPM-like noise."}),
                "foreground_reinjection": ("BOOLEAN", {
                    "default": False, "tooltip": "Paper eq. 4: after every step, put the (noised) human latent "
                                                 "back into its region."}),
                "context_length": ("INT", {"default": 24, "min": 1, "max": MAX_FRAMES,
                                           "tooltip": "Frames the model sees at once; longer videos use "
                                                      "overlapping windows."}),
                "context_overlap": ("INT", {"default": 4, "min": 0, "max": MAX_FRAMES,
                                            "tooltip": "Frames shared by neighbouring windows (blended)."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 256,
                                      "tooltip": "Edge softness: softens the matte edge in the composite over this "
                                                 "many pixels (as Refine Mask's feather)."}),
            },
            "optional": {
                **{name: lazy(spec) for name, spec in COMPOSITE_INPUTS.items()},
                "sampler": (list(SAMPLERS), {"default": "ddim", "tooltip": "Solver; recommended steps: " + ", ".join(
                    f"{name} {steps}" for name, steps in RECOMMENDED_STEPS.items()) + " (eta applies to ddim only)."}),
                "camera_guidance": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": MAX_CAMERA_GUIDANCE, "step": 0.1,
                    "tooltip": "Push the background further along the camera, against a still camera (beyond the "
                               "paper; 0 = off; the shipped small model: 4 with end 0.5). Costs one more U-Net "
                               "branch per step it acts on."}),
                "camera_guidance_end": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                    "tooltip": "Share of the denoising, from the noisiest step, that camera guidance acts on "
                               "(as ControlNet's end_percent): the motion is settled early, the detail late."}),
                "guidance_rescale": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                    "tooltip": "Pull the guided prediction's spread back towards the conditional prediction's by "
                               "this share (Lin et al. 2024, like the host's RescaleCFG; 0 = off, 0.7 in the paper): "
                               "against the over-contrasted look of strong guidance."}),
            },
        }

    def check_lazy_status(self, **inputs):
        """The host's question "which lazy inputs do you need now?" (unevaluated ones arrive as None).

        Checks everything known so far, then asks for the next stage: first models, scene and camera,
        then the matte. A bad size, frame count or setting thus fails before matting or estimation."""
        self.checked_inputs(**inputs)
        return _waiting(inputs, FIRST_STAGE_INPUTS) or _waiting(inputs, MATTE_INPUTS)

    def checked_inputs(self, images, fit_camera_to_frames, steps, guidance, seed, eta, foreground_reinjection,
                       context_length, context_overlap, feather, dynascene_model=None, vae=None, clip_vision=None,
                       scene_image=None, mask=None, camera=None, foreground=None, composite_settings=None,
                       sampler="ddim", camera_guidance=0.0, camera_guidance_end=1.0, guidance_rescale=0.0):
        """Validate every input that is known (None: not evaluated yet, or unconnected) with the core's rules
        (:func:`validate_inputs`); returns ``(frames, alpha, colour, scene, camera, settings)`` in core form,
        None where unknown, the camera fitted to the frame count. ``clip_vision`` is checked when sampling
        starts: only its output tells its embedding size."""
        frames = image_to_frames(images, "images")
        n, _, height, width = frames.shape
        check_frame_size(height, width)
        alpha = None if mask is None else mask_to_core(mask, n, "mask")
        if alpha is not None:
            check_same_size(alpha, frames)
        colour = composite_foreground(foreground, frames)
        scene = None if scene_image is None else image_to_frames(scene_image, "scene_image")[0]
        if camera is not None and len(camera) != n:
            if not fit_camera_to_frames:
                raise ValueError(f"the camera has {len(camera)} frames but the video has {n}: turn on "
                                 f"'fit_camera_to_frames' or use 'Resample / Trim Camera' with {n} frames")
            camera = camera.resample(n)
        settings = SamplerSettings(steps=steps, sampler=sampler, guidance_scale=guidance,
                                   camera_guidance=camera_guidance, camera_guidance_end=camera_guidance_end,
                                   guidance_rescale=guidance_rescale,
                                   eta=eta, seed=seed,
                                   context_length=context_length, context_overlap=context_overlap,
                                   foreground_reinjection=foreground_reinjection,
                                   compositing=settings_with_feather(composite_settings, feather))
        max_context = None if dynascene_model is None else dynascene_model.config.motion["motion_max_seq_length"]
        validate_inputs(frames, alpha, scene, None if camera is None else len(camera), settings, max_context)
        if vae is not None:
            check_vae(vae)
        return frames, alpha, colour, scene, camera, settings

    def sample(self, dynascene_model, vae, clip_vision, scene_image, images, mask, camera, fit_camera_to_frames,
               steps, guidance, seed, eta, foreground_reinjection, context_length, context_overlap, feather,
               foreground=None, composite_settings=None, sampler="ddim", camera_guidance=0.0,
               camera_guidance_end=1.0, guidance_rescale=0.0):
        frames, alpha, colour, scene, camera, settings = self.checked_inputs(
            images=images, fit_camera_to_frames=fit_camera_to_frames, steps=steps, guidance=guidance, seed=seed,
            eta=eta, foreground_reinjection=foreground_reinjection, context_length=context_length,
            context_overlap=context_overlap, feather=feather, dynascene_model=dynascene_model, vae=vae,
            scene_image=scene_image, mask=mask, camera=camera, foreground=foreground,
            composite_settings=composite_settings, sampler=sampler, camera_guidance=camera_guidance,
            camera_guidance_end=camera_guidance_end, guidance_rescale=guidance_rescale)
        n, _, height, width = frames.shape

        # the scene as the model sees it (fitted to the video, as in training); embedded now so a wrong
        # CLIP model is reported before any sampling work
        fitted = frames_to_image(fit_scene_image(scene, height, width)[None])
        embeds = clip_image_embeds(clip_vision, fitted, dynascene_model.cross_attention_dim)
        working = sampling_working_memory(min(context_length, n), height, width, settings.branches,
                                          next(dynascene_model.networks.parameters()).dtype)
        networks = dynascene_model.load_for_inference(working)
        codec = HostVAECodec(vae, keep_loaded=lambda: dynascene_model.load_for_inference(working))
        progress = ProgressReporter(steps)
        result = generate(networks, codec, lambda _: embeds, frames, alpha, scene,
                          camera_condition(camera, height, width), len(camera), settings, progress=progress,
                          interrupt=host.check_interrupted, foreground=colour)
        return (frames_to_image(result.background), frames_to_image(result.composite), latents_to_host(result.latents))

    # The host's entry point: sample, declared async for the host's scheduling (class docstring), with
    # sample's declared signature (functools.wraps), which the host and the registry test read.
    @functools.wraps(sample)
    async def sample_in_host(self, **inputs):
        return self.sample(**inputs)


class DynaSceneComposite:
    DESCRIPTION = ("Put the human back over a background video with its matte, matte-aware: the human's own colour "
                   "at soft edges (RVM's foreground, or estimated from the images), light wrap, harmonization and "
                   "an optional contact shadow (Composite Settings). Use it to re-composite with a refined mask, "
                   "another feather or other settings without sampling again.")
    CATEGORY = GENERATE_CATEGORY
    FUNCTION = "composite"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames with the human."}),
                "background": ("IMAGE", {"tooltip": "The background frames (same count and size)."}),
                "mask": ("MASK", {"tooltip": "Human alpha per frame (1 = human)."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 256,
                                      "tooltip": "Edge softness: softens the matte edge over this many pixels (as "
                                                 "Refine Mask's feather)."}),
            },
            "optional": COMPOSITE_INPUTS,
        }

    def composite(self, images, background, mask, feather, foreground=None, composite_settings=None):
        frames = image_to_frames(images, "images")
        back = image_to_frames(background, "background")
        if back.shape != frames.shape:
            raise ValueError(f"background is {back.shape[0]} frames of {back.shape[3]}x{back.shape[2]} but images "
                             f"are {frames.shape[0]} frames of {frames.shape[3]}x{frames.shape[2]}")
        alpha = mask_to_core(mask, len(frames), "mask")
        check_same_size(alpha, frames)
        colour = composite_foreground(foreground, frames)
        settings = settings_with_feather(composite_settings, feather)
        return (frames_to_image(composite(frames, back, alpha, colour, settings)),)


NODE_CLASS_MAPPINGS = {
    "DynaSceneSampler": DynaSceneSampler,
    "DynaSceneComposite": DynaSceneComposite,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "DynaSceneSampler": "Background Sampler (DynaScene)",
    "DynaSceneComposite": "Composite Human Over Background (DynaScene)",
}
