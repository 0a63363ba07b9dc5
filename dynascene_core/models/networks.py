"""The container of every DynaScene network, with the fast (meta-device) build used for loading.

The networks' modules (diffusers, transformers) are imported by the builders, when a model is built.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DynaSceneConfig


def _denoiser(config: DynaSceneConfig) -> nn.Module:
    from .denoiser import DynaSceneDenoiser

    return DynaSceneDenoiser(config)


def _reference_net(config: DynaSceneConfig) -> nn.Module:
    from .reference import ReferenceNet

    return ReferenceNet(config)


def _camera_encoder(config: DynaSceneConfig) -> nn.Module:
    from .camera_encoder import CameraEncoder

    return CameraEncoder(**config.camera)


def _image_encoder(config: DynaSceneConfig) -> nn.Module:
    from .clip import ImageEncoder

    return ImageEncoder(config.clip_vision)


def _vae(config: DynaSceneConfig) -> nn.Module:
    if config.codec is not None:  # the weightless patch codec of the small models
        from .codec import PatchCodec

        return PatchCodec(config.codec["patch_size"], config.scaling_factor)
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config.vae, scaling_factor=config.scaling_factor)


PARTS = {"denoiser": _denoiser, "reference_net": _reference_net, "camera_encoder": _camera_encoder,
         "image_encoder": _image_encoder, "vae": _vae}
"""Each network of :class:`DynaSceneModels`: attribute name -> builder taking the config."""


class DynaSceneModels(nn.Module):
    """Container: ``denoiser``, ``reference_net``, ``camera_encoder``, ``image_encoder`` and ``vae``
    (diffusers ``AutoencoderKL``, or the weightless :class:`PatchCodec` when the config names one),
    plus the ``config`` they were built from."""

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
            if part is None:  # left out (see ``assemble_models(networks=...)``)
                continue
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

    def latent_codec(self):
        """This model's :class:`~dynascene_core.conditioning.LatentCodec` (one rule for training,
        ``generate``, validation and the nodes): the patch codec itself, or the VAE's posterior mean."""
        from .codec import PatchCodec

        if isinstance(self.vae, PatchCodec):
            return self.vae
        from ..conditioning import DiffusersVAECodec

        return DiffusersVAECodec(self.vae, self.config.scaling_factor)

    def enable_gradient_checkpointing(self) -> None:
        self.denoiser.enable_gradient_checkpointing()
        self.reference_net.enable_gradient_checkpointing()
        self.camera_encoder.enable_gradient_checkpointing()

    def disable_gradient_checkpointing(self) -> None:
        self.denoiser.disable_gradient_checkpointing()
        self.reference_net.disable_gradient_checkpointing()
        self.camera_encoder.disable_gradient_checkpointing()
