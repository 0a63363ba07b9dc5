"""Model nodes: load a full DynaScene file, or assemble a model from SD1.5-inpainting + AnimateDiff (+ CameraCtrl
and DynaScene stage files).

The networks (denoiser, ReferenceNet, camera encoder) travel as a :class:`DynaSceneModel` on the
``DYNASCENE_MODEL`` socket, wrapped in the host's ``ModelPatcher`` so ComfyUI's memory management
moves them to the GPU only while a sampler uses them. The VAE and CLIP image encoder are the host's
own (``VAELoader``, ``CLIPVisionLoader``); :class:`HostVAECodec` adapts the host VAE to the core's
:class:`~dynascene_core.conditioning.LatentCodec`. All loading logic is in :mod:`dynascene_core.checkpoints`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from dynascene_core.checkpoints.assemble import ModelFiles, assemble_models, file_kind
from dynascene_core.conditioning import LATENT_SCALE
from dynascene_core.models import DynaSceneConfig, DynaSceneModels

from . import host
from .types import CATEGORY, MODEL

MODEL_CATEGORY = f"{CATEGORY}/Models"

DYNASCENE_FILE = ("a full DynaScene .safetensors file (merge training's stage files into one with "
                  "python -m dynascene_core.checkpoints merge)")
SD15_INPAINTING_FILE = ("the Stable Diffusion 1.5 INPAINTING checkpoint (sd-v1-5-inpainting.ckpt or "
                        "512-inpainting-ema.safetensors, 9-channel U-Net) from runwayml/stable-diffusion-inpainting")
MOTION_MODULE_FILE = ("an AnimateDiff SD1.5 motion module (mm_sd_v15_v2.ckpt; v1, v3 and diffusers MotionAdapter "
                      "files also load) from guoyww/animatediff on Hugging Face")
CAMERA_FILE = ("a CameraCtrl checkpoint (CameraCtrl.ckpt from hehao13/CameraCtrl) or a DynaScene stage-II file "
               "(motion modules + camera adaptor + camera encoder)")
STAGE_FILE = "a DynaScene file, e.g. the stage-I output of training (dynascene.safetensors)"
NONE = "none"
NEEDED_NETWORKS = ("denoiser_spatial", "reference_net", "motion_modules")
"""Parameter groups a file set must provide (VAE and CLIP come from the host's loaders)."""
NETWORK_NAMES = ("denoiser", "reference_net", "camera_encoder")


class DynaSceneNetworks(nn.Module):
    """The three networks the sampler runs (what ``dynascene_core.sampling.generate`` takes)."""

    def __init__(self, models: DynaSceneModels):
        super().__init__()
        self.denoiser = models.denoiser
        self.reference_net = models.reference_net
        self.camera_encoder = models.camera_encoder


@dataclass
class DynaSceneModel:
    """A ``DYNASCENE_MODEL``: the networks in their inference dtype, the config, the host's ModelPatcher
    (None without a host) and one line per loaded file (load reports)."""

    networks: DynaSceneNetworks
    config: DynaSceneConfig
    patcher: object | None
    sources: list[str] = field(default_factory=list)

    @classmethod
    def wrap(cls, models: DynaSceneModels, sources: list[str]) -> "DynaSceneModel":
        """Keep the sampler's networks of ``models`` (the host provides VAE and CLIP), cast to the host's
        inference dtype on the offload device, wrapped for the host's memory management."""
        networks = DynaSceneNetworks(models)
        num_parameters = sum(p.numel() for p in networks.parameters())
        dtype = host.inference_dtype(host.get_torch_device(), num_parameters)
        networks.to(device=host.unet_offload_device(), dtype=dtype).eval().requires_grad_(False)
        return cls(networks, models.config, host.model_patcher(networks), sources)

    def load_for_inference(self, memory_required: int = 0) -> DynaSceneNetworks:
        """Have the host put the networks on the GPU with ``memory_required`` bytes of working memory to spare
        (it offloads other models as needed); a no-op while they are still loaded. Returns the networks."""
        if not host.is_loaded(self.patcher):
            host.load_models_gpu([self.patcher], memory_required, what="the DynaScene networks")
        return self.networks

    @property
    def cross_attention_dim(self) -> int:
        return self.config.unet["cross_attention_dim"]


class LoadDynaSceneModel:
    DESCRIPTION = ("Load a complete DynaScene model (denoiser with motion modules and camera adaptor, ReferenceNet, "
                   "camera encoder) from one file in models/dynascene. Use with ComfyUI's own VAE Loader "
                   "(sd-vae-ft-mse) and Load CLIP Vision (ViT-L/14).")
    CATEGORY = MODEL_CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("dynascene_model",)
    OUTPUT_TOOLTIPS = ("The DynaScene networks, moved to the GPU only while sampling.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (host.model_file_list("dynascene"), {
            "tooltip": "A full DynaScene .safetensors file from the models/dynascene folder."})}}

    def load(self, model_name):
        path = host.resolve_model_file("dynascene", model_name, DYNASCENE_FILE)
        assembled = assemble_models(ModelFiles(dynascene=[path]), require=NEEDED_NETWORKS, networks=NETWORK_NAMES)
        return (DynaSceneModel.wrap(assembled.models, assembled.summary().splitlines()),)


class AssembleDynaSceneModel:
    DESCRIPTION = ("Build a DynaScene model from files you may already have: the SD1.5 inpainting checkpoint "
                   "(models/checkpoints) for the denoiser and ReferenceNet, an AnimateDiff motion module "
                   "(models/animatediff_models), optionally CameraCtrl or a DynaScene stage-II file "
                   "(models/dynascene) for camera control, and optionally a second DynaScene file (e.g. the "
                   "stage-I output) loaded last. Without trained DynaScene weights the result is a starting "
                   "point for training, not a finished model.")
    CATEGORY = MODEL_CATEGORY
    FUNCTION = "assemble"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("dynascene_model",)
    OUTPUT_TOOLTIPS = ("The assembled DynaScene networks.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "inpainting_checkpoint": (host.model_file_list("checkpoints"), {
                    "tooltip": "SD1.5 inpainting checkpoint (9-channel U-Net) from models/checkpoints."}),
                "motion_module": (host.model_file_list("animatediff_models"), {
                    "tooltip": "AnimateDiff SD1.5 motion module from models/animatediff_models."}),
            },
            "optional": {
                "camera_weights": ([NONE] + host.model_file_list("dynascene"), {
                    "default": NONE,
                    "tooltip": "CameraCtrl.ckpt or a DynaScene stage-II file from models/dynascene "
                               "(none: camera adaptor starts at zero, i.e. no camera control)."}),
                "dynascene_weights": ([NONE] + host.model_file_list("dynascene"), {
                    "default": NONE,
                    "tooltip": "Another DynaScene file from models/dynascene, loaded after the others, e.g. the "
                               "stage-I output (denoiser 2D weights + ReferenceNet) with the stage-II file above."}),
            },
        }

    def assemble(self, inpainting_checkpoint, motion_module, camera_weights=NONE, dynascene_weights=NONE):
        sd_path = host.resolve_model_file("checkpoints", inpainting_checkpoint, SD15_INPAINTING_FILE)
        mm_path = host.resolve_model_file("animatediff_models", motion_module, MOTION_MODULE_FILE)
        files = ModelFiles(sd15_inpainting=sd_path, motion_module=mm_path)
        for slot, name, allowed, what in (("camera_weights", camera_weights, ("cameractrl", "dynascene"), CAMERA_FILE),
                                          ("dynascene_weights", dynascene_weights, ("dynascene",), STAGE_FILE)):
            if name == NONE:
                continue
            path = host.resolve_model_file("dynascene", name, what)
            kind = file_kind(path)
            if kind not in allowed:
                raise ValueError(f"{slot} '{name}' is a {kind} file; expected {what}")
            files.add(path, kind)
        assembled = assemble_models(files, require=NEEDED_NETWORKS, networks=NETWORK_NAMES)  # config implied by the files
        return (DynaSceneModel.wrap(assembled.models, assembled.summary().splitlines()),)


class HostVAECodec:
    """The host's VAE as a core :class:`~dynascene_core.conditioning.LatentCodec`.

    Host VAEs take IMAGE-layout pixels ``(N, H, W, 3)`` and give unscaled latents; the core works on
    ``(N, 3, H, W)`` pixels and SD1.5-scaled latents (× 0.18215). Loading the VAE may make the host
    offload other models to find room: ``keep_loaded`` (called after each encode, e.g.
    :meth:`DynaSceneModel.load_for_inference`) brings the sampler's networks back only if that happened,
    since the sampler encodes its conditions right before it runs the networks.
    """

    def __init__(self, vae, scaling_factor: float = LATENT_SCALE, keep_loaded: "Callable[[], object] | None" = None):
        self.vae = vae
        self.scaling_factor = scaling_factor
        self.keep_loaded = keep_loaded

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        latents = self.vae.encode(pixels.permute(0, 2, 3, 1).float().cpu()).float() * self.scaling_factor
        if self.keep_loaded is not None:
            self.keep_loaded()
        return latents

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        images = self.vae.decode(latents.float().cpu() / self.scaling_factor)
        return images.float().permute(0, 3, 1, 2)


def check_vae(vae) -> None:
    """Refuse VAEs whose latents are not SD1.5's 4 channels (SD3/Flux/video VAEs), naming what was given."""
    channels = getattr(vae, "latent_channels", 4)
    if channels != 4:
        raise ValueError(f"the VAE makes {channels}-channel latents; DynaScene needs the SD1.5 VAE (4 channels, "
                         "e.g. sd-vae-ft-mse in models/vae)")


def clip_image_embeds(clip_vision, image: torch.Tensor, expected_dim: int) -> torch.Tensor:
    """``(1, 1, D)`` CLIP image embedding of IMAGE ``(1, H, W, 3)`` through the host's CLIP_VISION."""
    embeds = clip_vision.encode_image(image[:1]).image_embeds
    if embeds is None or embeds.shape[-1] != expected_dim:
        got = None if embeds is None else embeds.shape[-1]
        raise ValueError(f"the CLIP vision model gives {got}-d image embeddings but the DynaScene model expects "
                         f"{expected_dim}-d: load CLIP ViT-L/14 (openai/clip-vit-large-patch14) in Load CLIP Vision")
    return embeds.float().reshape(1, 1, -1)


NODE_CLASS_MAPPINGS = {
    "DynaSceneLoadModel": LoadDynaSceneModel,
    "DynaSceneAssembleModel": AssembleDynaSceneModel,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "DynaSceneLoadModel": "Load Model (DynaScene)",
    "DynaSceneAssembleModel": "Assemble Model from SD1.5 + AnimateDiff (DynaScene)",
}
