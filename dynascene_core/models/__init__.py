"""DynaScene networks built from diffusers/transformers blocks (see docs/ARCHITECTURE.md for names).

:class:`DynaSceneModels` holds every network of the method; ``DynaSceneModels.build(config)`` makes
them with random weights (no network access; configs ship in :mod:`.config`), and the checkpoint
loaders fill them.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from torch import nn

from .camera_encoder import CameraEncoder, level_sizes
from .codec import PatchCodec
from .clip import ImageEncoder, clip_preprocess, zero_image_embeds_like
from .config import PRESETS, DynaSceneConfig
from .denoiser import DynaSceneDenoiser
from .params import parameter_groups, set_trainable, trainable_parameters
from .reference import ReferenceNet, reference_input

__all__ = [
    "CameraEncoder", "DynaSceneConfig", "DynaSceneDenoiser", "DynaSceneModels", "ImageEncoder", "PRESETS", "PatchCodec",
    "ReferenceNet", "clip_preprocess", "level_sizes", "parameter_groups", "reference_input", "set_trainable",
    "trainable_parameters", "zero_image_embeds_like",
]


class DynaSceneModels(nn.Module):
    """Container: ``denoiser``, ``reference_net``, ``camera_encoder``, ``image_encoder`` and ``vae``
    (diffusers ``AutoencoderKL``, or the weightless :class:`PatchCodec` when the config names one),
    plus the ``config`` they were built from."""

    def __init__(self, config: DynaSceneConfig):
        super().__init__()
        self.config = config
        self.denoiser = DynaSceneDenoiser(config)
        self.reference_net = ReferenceNet(config)
        self.camera_encoder = CameraEncoder(**config.camera)
        self.image_encoder = ImageEncoder(config.clip_vision)
        if config.codec is None:
            self.vae = AutoencoderKL(**config.vae, scaling_factor=config.scaling_factor)
        else:
            self.vae = PatchCodec(config.codec["patch_size"], config.scaling_factor)

    def latent_codec(self):
        """This model's :class:`~dynascene_core.conditioning.LatentCodec` (one rule for training,
        ``generate``, validation and the nodes): the patch codec itself, or the VAE's posterior mean."""
        if isinstance(self.vae, PatchCodec):
            return self.vae
        from ..conditioning import DiffusersVAECodec

        return DiffusersVAECodec(self.vae, self.config.scaling_factor)

    @classmethod
    def build(cls, config: DynaSceneConfig | str = "tiny", device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> "DynaSceneModels":
        """Random-init models for ``config`` (a :class:`DynaSceneConfig` or a preset name)."""
        if isinstance(config, str):
            config = DynaSceneConfig.preset(config)
        with torch.device(device):  # allocate on the target device directly (no full-size CPU copy)
            models = cls(config)
        return models.to(dtype=dtype)

    def enable_gradient_checkpointing(self) -> None:
        self.denoiser.enable_gradient_checkpointing()
        self.reference_net.enable_gradient_checkpointing()
        self.camera_encoder.enable_gradient_checkpointing()
