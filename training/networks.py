"""Building the models for a training stage and the trainable forward pass that accelerate wraps.

Weights come only from files named in the config (nothing is downloaded): ``model.init_from``
(SD1.5-inpainting single files / diffusers folders and DynaScene files, applied in order),
``model.motion_module`` (AnimateDiff v2, stage II), ``model.clip_vision``, ``model.vae``. Anything not
named keeps its random initialisation (the tiny default trains from scratch).
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from dynascene_core.models import DynaSceneConfig, DynaSceneModels, set_trainable, zero_image_embeds_like

logger = logging.getLogger("dynascene.training")


class _SkipMotionModule(nn.Module):
    """Stands in for a motion module in stage I: returns its input (no temporal mixing, no parameters)."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def bypass_motion_modules(denoiser: nn.Module) -> int:
    """Stage I trains the denoiser as an image model (paper: "we do not use the temporal module"):
    every motion module of ``denoiser.unet`` is replaced by an identity for the whole run. Returns the
    number replaced. The parameter groups trained and saved in stage I do not include motion modules."""
    replaced = 0
    for module in denoiser.unet.modules():
        motion = getattr(module, "motion_modules", None)
        if isinstance(motion, nn.ModuleList):
            for i in range(len(motion)):
                motion[i] = _SkipMotionModule()
                replaced += 1
    return replaced


def _is_dynascene_file(path: str) -> bool:
    if not path.lower().endswith((".safetensors", ".sft")) or not os.path.isfile(path):
        return False
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        return (handle.metadata() or {}).get("format") == "dynascene"


def build_models(model_cfg: dict) -> DynaSceneModels:
    """Models for the ``model`` config section, with the named weight files loaded (fp32, CPU).

    The architecture is the first DynaScene file's stored config if ``init_from`` has one, else
    ``model.preset``.
    """
    from dynascene_core.checkpoints.dynascene_format import load_dynascene, read_dynascene

    files = list(model_cfg["init_from"] or [])
    config = None
    for path in files:
        if _is_dynascene_file(path):
            config = read_dynascene(path)[0]
            break
    models = DynaSceneModels(config or DynaSceneConfig.preset(model_cfg["preset"]))
    for path in files:
        if _is_dynascene_file(path):
            _, report = load_dynascene(path, models)
        else:
            from dynascene_core.checkpoints.sd15 import load_sd15_inpainting

            report = load_sd15_inpainting(path, denoiser_unet=models.denoiser.unet,
                                          reference_unet=models.reference_net.unet,
                                          vae=None if model_cfg["vae"] else models.vae)
        logger.info("loaded %s: %s", path, report)
    if model_cfg["motion_module"]:
        from dynascene_core.checkpoints.motion import load_motion_module

        logger.info("loaded %s", load_motion_module(model_cfg["motion_module"], models.denoiser.unet))
    if model_cfg["clip_vision"]:
        from dynascene_core.checkpoints.clip_vision import load_image_encoder

        logger.info("loaded %s", load_image_encoder(model_cfg["clip_vision"], models.image_encoder))
    if model_cfg["vae"]:
        from dynascene_core.checkpoints.sd15 import load_vae

        logger.info("loaded %s", load_vae(model_cfg["vae"], models.vae))
    return models


def prepare_stage(models: DynaSceneModels, stage: int, gradient_checkpointing: bool) -> dict[str, nn.Parameter]:
    """Freeze everything but the stage's parameter groups (stage I also bypasses motion modules);
    returns ``{name: parameter}`` of the trainable ones."""
    if stage == 1:
        bypass_motion_modules(models.denoiser)
    trainable = set_trainable(models, stage)
    models.vae.eval()
    models.image_encoder.eval()
    if gradient_checkpointing:
        models.enable_gradient_checkpointing()
    return trainable


class TrainingNetworks(nn.Module):
    """The trainable forward pass (the module accelerate wraps for DDP/FSDP).

    ``forward(sample (B,9,F,h,w), timesteps (B,), image_embeds (B,1,D), dropped (B,) bool,
    scene_latent (B,4,h,w), plucker (B,F,6,H,W) or None) -> noise prediction (B,4,F,h,w)``.

    Unconditional dropout is exactly the sampler's CFG branch: for ``dropped`` videos the denoiser
    gets a zero CLIP token and ``reference_mask`` False (the ReferenceNet still reads the real
    embedding, as in :func:`dynascene_core.sampling.pipeline.generate`). Stage I passes no camera.
    """

    def __init__(self, models: DynaSceneModels, stage: int):
        super().__init__()
        self.stage = stage
        self.denoiser = models.denoiser
        self.reference_net = models.reference_net
        self.camera_encoder = models.camera_encoder

    def forward(self, sample, timesteps, image_embeds, dropped, scene_latent, plucker=None):
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.stage == 1):
            bank = self.reference_net(scene_latent, image_embeds)
        camera = self.camera_encoder(plucker) if plucker is not None else None
        embeds = torch.where(dropped[:, None, None], zero_image_embeds_like(image_embeds), image_embeds)
        return self.denoiser(sample, timesteps, embeds, reference=bank, reference_mask=~dropped,
                             camera_features=camera)
