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
from .clip import ImageEncoder, clip_preprocess, zero_image_embeds_like
from .config import PRESETS, DynaSceneConfig
from .denoiser import DynaSceneDenoiser
from .params import parameter_groups, set_trainable, trainable_parameters
from .reference import ReferenceNet, reference_input

__all__ = [
    "CameraEncoder", "DynaSceneConfig", "DynaSceneDenoiser", "DynaSceneModels", "ImageEncoder", "PARTS", "PRESETS",
    "ReferenceNet", "clip_preprocess", "level_sizes", "parameter_groups", "reference_input", "set_trainable",
    "trainable_parameters", "zero_image_embeds_like",
]


PARTS = {
    "denoiser": DynaSceneDenoiser,
    "reference_net": ReferenceNet,
    "camera_encoder": lambda config: CameraEncoder(**config.camera),
    "image_encoder": lambda config: ImageEncoder(config.clip_vision),
    "vae": lambda config: AutoencoderKL(**config.vae, scaling_factor=config.scaling_factor),
}
"""Each network of :class:`DynaSceneModels`: attribute name -> builder taking the config."""


class DynaSceneModels(nn.Module):
    """Container: ``denoiser``, ``reference_net``, ``camera_encoder``, ``image_encoder`` and ``vae``
    (diffusers ``AutoencoderKL``), plus the ``config`` they were built from."""

    def __init__(self, config: DynaSceneConfig):
        super().__init__()
        self.config = config
        for name, build in PARTS.items():
            setattr(self, name, build(config))

    @classmethod
    def empty(cls, config: DynaSceneConfig) -> "DynaSceneModels":
        """Models whose parameters are on the ``meta`` device (no memory, no random init) for loaders to
        assign file tensors into; buffers (sinusoidal tables, position ids) are built as usual. Call
        :meth:`materialize` after loading."""
        from accelerate import init_empty_weights

        with init_empty_weights(include_buffers=False):
            return cls(config)

    def materialize(self) -> list[str]:
        """Give every parameter still on ``meta`` the value a normally built network has (random init,
        zeros for fresh camera adaptors and motion ``proj_out``) by building that network once;
        returns the names filled so."""
        filled = []
        for name, build in PARTS.items():
            part = getattr(self, name)
            empty = [k for k, v in part.state_dict().items() if v.is_meta]
            if empty:
                fresh = build(self.config).state_dict()
                part.load_state_dict({k: fresh[k] for k in empty}, strict=False, assign=True)
                filled += [f"{name}.{k}" for k in empty]
        return filled

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
