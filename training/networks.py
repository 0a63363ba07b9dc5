"""Building the models for a training stage and the trainable forward pass that accelerate wraps.

Weights come only from files named in the config (nothing is downloaded): ``model.init_from``
(SD1.5-inpainting single files / diffusers folders and DynaScene files, applied in order),
``model.motion_module`` (AnimateDiff v2, stage II), ``model.clip_vision``, ``model.vae``. Anything not
named keeps its random initialisation (the tiny default trains from scratch).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from dynascene_core.models import DynaSceneConfig, DynaSceneModels, set_trainable, zero_image_embeds_like

logger = logging.getLogger("dynascene.training")


def build_models(model_cfg: dict) -> DynaSceneModels:
    """Models for the ``model`` config section, with the named weight files loaded (fp32, CPU).

    ``init_from`` may name one SD1.5-inpainting checkpoint and any DynaScene files; the architecture
    is the first DynaScene file's stored config if there is one, else ``model.preset``. Load order and
    key accounting are :func:`dynascene_core.checkpoints.assemble_models`'.
    """
    from dynascene_core.checkpoints import CheckpointError, ModelFiles, assemble_models, read_dynascene_header

    dynascene, others = [], []
    for path in model_cfg["init_from"] or []:
        try:
            read_dynascene_header(path)
            dynascene.append(path)
        except CheckpointError:
            others.append(path)
    if len(others) > 1:
        raise ValueError(f"model.init_from: at most one SD1.5-inpainting checkpoint, got {others}")
    files = ModelFiles(dynascene=dynascene, sd15_inpainting=others[0] if others else None,
                       motion_module=model_cfg["motion_module"], vae=model_cfg["vae"],
                       image_encoder=model_cfg["clip_vision"])
    config = None if dynascene else DynaSceneConfig.preset(model_cfg["preset"])
    return assemble_models(files, config=config, require=()).models


def prepare_stage(models: DynaSceneModels, stage: int, gradient_checkpointing: bool) -> dict[str, nn.Parameter]:
    """Freeze everything but the stage's parameter groups (stage I also bypasses motion modules);
    returns ``{name: parameter}`` of the trainable ones."""
    if stage == 1:
        models.denoiser.bypass_motion_modules()
    trainable = set_trainable(models, stage)
    models.train()
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
