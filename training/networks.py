"""Building the models for a training stage and the trainable forward pass that accelerate wraps.

Weights come only from files named in the config (nothing is downloaded): ``model.init_from``
(weight files of any kind, routed by detected format: SD1.5-inpainting single files / diffusers folders,
DynaScene files, applied in order), ``model.motion_module`` (AnimateDiff v2, stage II),
``model.clip_vision``, ``model.vae``. Every part the stage needs must come from a file, except for the
architectures trained from scratch (``tiny``, the default, and ``small``, the proof-of-learning model)
or with ``model.allow_random: true``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from dynascene_core.models import (DynaSceneConfig, DynaSceneModels, parameter_groups, set_trainable,
                                   zero_image_embeds_like)

logger = logging.getLogger("dynascene.training")


REQUIRED = {1: ("denoiser_spatial", "reference_net", "vae", "image_encoder"),
            2: ("denoiser_spatial", "reference_net", "motion_modules", "vae", "image_encoder")}
"""Parameter groups a stage must load from files (frozen parts and the starting point of trained ones)."""

FROM_SCRATCH_PRESETS = ("tiny", "small")
"""Presets whose parts may all start random: they are trained from scratch by design."""

CAMERA_GROUPS = ("camera_encoder", "camera_adaptor")
"""Stage-II groups that ``train.camera_control: false`` (the camera ablation) leaves untrained."""

CONFIG_KEYS = {
    "denoiser_spatial": "model.init_from (an SD1.5-inpainting checkpoint, or the stage-I DynaScene file)",
    "reference_net": "model.init_from (an SD1.5-inpainting checkpoint, or the stage-I DynaScene file)",
    "motion_modules": "model.motion_module (mm_sd_v15_v2.ckpt), or a DynaScene file holding them in model.init_from",
    "vae": "model.vae (sd-vae-ft-mse), unless the SD1.5 checkpoint in model.init_from holds its VAE",
    "image_encoder": "model.clip_vision (CLIP ViT-L/14 image encoder)",
}


def check_weight_files(model_cfg: dict) -> None:
    """Fail fast, before data or models are touched: every weight file the ``model`` section names exists and
    holds weights (its first bytes only; empty files, web pages and text are refused with the config key)."""
    from dynascene_core.checkpoints.io import check_weight_file

    for key in ("init_from", "motion_module", "vae", "clip_vision"):
        value = model_cfg[key]
        for path in value if isinstance(value, list) else [] if value is None else [value]:
            check_weight_file(path, f"model.{key}")


def build_models(model_cfg: dict, stage: int) -> tuple[DynaSceneModels, set[str]]:
    """``(models, loaded groups)`` for the ``model`` config section, with the named weight files loaded
    (fp32, CPU); groups not in ``loaded groups`` kept their random initialisation.

    The architecture is the first DynaScene file's stored config if there is one, else ``model.preset``, with
    ``model.spatial_position`` set over it when not null (a weightless switch: the same weights load either way).
    Load order and key accounting are :func:`dynascene_core.checkpoints.assemble_models`'. Raises
    ``ValueError`` naming the config keys to set when a part in :data:`REQUIRED` for ``stage`` would
    stay random, unless the architecture is a :data:`FROM_SCRATCH_PRESETS` preset or
    ``model.allow_random`` is true.
    """
    from dynascene_core.checkpoints import ModelFiles, assemble_models, read_dynascene_header

    check_weight_files(model_cfg)
    files = ModelFiles.from_paths(model_cfg["init_from"] or [])
    for kind, key in (("motion_module", "motion_module"), ("vae", "vae"), ("image_encoder", "clip_vision")):
        if model_cfg[key] is not None:
            files.add(model_cfg[key], kind)
    config = None if files.dynascene else DynaSceneConfig.preset(model_cfg["preset"])
    if model_cfg["spatial_position"] is not None:  # weightless: any file's weights fit either way
        config = config or read_dynascene_header(files.dynascene[0])[0]
        config.spatial_position = None if model_cfg["spatial_position"] == "none" else model_cfg["spatial_position"]
    assembled = assemble_models(files, config=config, require=())
    from_scratch = any(assembled.models.config.same_weights_as(DynaSceneConfig.preset(name))
                       for name in FROM_SCRATCH_PRESETS)
    if "reference_net" not in assembled.loaded_groups:
        start_reference_net_as_denoiser(assembled.models)
    missing = [g for g in REQUIRED[stage] if g not in assembled.loaded_groups]
    if missing and not (from_scratch or model_cfg["allow_random"]):
        keys = list(dict.fromkeys(CONFIG_KEYS[g] for g in missing))
        raise ValueError(f"stage {stage} would train with random {', '.join(missing)}: set " + "; ".join(keys)
                         + " (or model.allow_random: true to start from random weights on purpose)")
    return assembled.models, set(assembled.loaded_groups)


def start_reference_net_as_denoiser(models: DynaSceneModels) -> None:
    """Give the ReferenceNet the denoiser's spatial weights (every U-Net tensor both have).

    The paper starts both U-Nets from the same SD1.5 weights, so at the start of training the
    ReferenceNet's bank lies in the feature space the denoiser's attention already reads; a model trained
    from scratch gets the same start this way instead of two unrelated random networks."""
    denoiser = models.denoiser.unet.state_dict()
    shared = {name: tensor for name, tensor in models.reference_net.unet.state_dict().items()
              if name in denoiser and denoiser[name].shape == tensor.shape}
    with torch.no_grad():
        for name, tensor in shared.items():
            tensor.copy_(denoiser[name])
    logger.info("ReferenceNet starts from the denoiser's weights (%d of %d tensors)", len(shared),
                len(models.reference_net.unet.state_dict()))


def prepare_stage(models: DynaSceneModels, stage: int, gradient_checkpointing: bool,
                  camera_control: bool = True, also_train: tuple[str, ...] = ()) -> dict[str, nn.Parameter]:
    """Freeze everything but the stage's parameter groups and the groups in ``also_train`` (stage I also
    bypasses motion modules); returns ``{name: parameter}`` of the trainable ones. ``camera_control=False``
    also freezes :data:`CAMERA_GROUPS` (the ablation: the zero-initialised adaptor then leaves the camera
    without effect)."""
    if stage == 1:
        models.denoiser.bypass_motion_modules()
    trainable = set_trainable(models, stage, also_train)
    if not camera_control:
        camera = {n for g in CAMERA_GROUPS for n in parameter_groups(models)[g]}
        for name in camera & set(trainable):
            trainable.pop(name).requires_grad_(False)
    models.train()
    models.vae.eval()
    models.image_encoder.eval()
    if gradient_checkpointing:
        models.enable_gradient_checkpointing()
    return trainable


def hold_groups_in_dtype(models: DynaSceneModels, groups, dtype: torch.dtype) -> int:
    """Store the parameters of the (frozen) parameter ``groups`` in ``dtype``, in place; returns how many
    changed (none for float32 weights held in float32).

    Mixed precision only casts inside autocast: frozen float32 weights would take twice the memory and be
    re-cast on every call. Frozen groups hold no floating-point buffers, so parameters are all there is."""
    named = parameter_groups(models)
    changed = 0
    for group in groups:
        for param in named[group].values():
            if param.dtype != dtype:
                param.data = param.data.to(dtype)
                changed += 1
    return changed


class TrainingNetworks(nn.Module):
    """The trainable forward pass (the module accelerate wraps for DDP/FSDP).

    ``forward(sample (B,9,F,h,w), timesteps (B,), image_embeds (B,1,D), dropped (B,) bool on the CPU (no sync),
    scene_latent (B,4,h,w), plucker (B,F,6,H,W) or None) -> prediction (B,4,F,h,w)`` (the noise or ``v``, as
    the model config says).

    Unconditional dropout is exactly the sampler's CFG branch: for ``dropped`` videos the denoiser
    gets a zero CLIP token and ``reference_mask`` False (the ReferenceNet still reads the real
    embedding, as in :func:`dynascene_core.sampling.pipeline.generate`). Stage I passes no camera.
    """

    def __init__(self, models: DynaSceneModels):
        super().__init__()
        self.reference_trained = any(p.requires_grad for p in models.reference_net.parameters())
        self.denoiser = models.denoiser
        self.reference_net = models.reference_net
        self.camera_encoder = models.camera_encoder

    def forward(self, sample, timesteps, image_embeds, dropped, scene_latent, plucker=None):
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.reference_trained):
            bank = self.reference_net(scene_latent, image_embeds)
        camera = self.camera_encoder(plucker) if plucker is not None else None
        embeds = torch.where(dropped.to(image_embeds.device)[:, None, None], zero_image_embeds_like(image_embeds),
                             image_embeds)
        return self.denoiser(sample, timesteps, embeds, reference=bank, reference_mask=(~dropped).tolist(),
                             camera_features=camera)
