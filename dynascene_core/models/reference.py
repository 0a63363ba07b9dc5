"""ReferenceNet: a 2D copy of the inpainting U-Net that reads the scene image once per sampling call
and records the input of every spatial self-attention (``norm1(h)``) into a reference bank."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from .attention import (ChunkedAttnProcessor, ControlState, ReferenceBank, ReferenceWriteProcessor,
                        checkpoint_with_state)
from .camera_encoder import level_sizes
from .config import DynaSceneConfig


def reference_input(scene_latent: torch.Tensor) -> torch.Tensor:
    """The ReferenceNet's input for a scene latent ``(B, C, h, w)`` -> ``(B, 2C + 1, h, w)`` (C = 4 for
    SD1.5: 9 channels).

    Rule (used identically in training and inference): ``[scene latent | mask of zeros | scene
    latent]``. In SD-inpainting terms the whole scene image is known content and nothing is to be
    generated (mask 1 = generate), so the "known content" channels carry the scene latent itself.
    """
    if scene_latent.ndim != 4:
        raise ValueError(f"scene latent must be (B, C, h, w), got {tuple(scene_latent.shape)}")
    zeros = scene_latent.new_zeros(scene_latent.shape[0], 1, *scene_latent.shape[2:])
    return torch.cat([scene_latent, zeros, scene_latent], dim=1)


class ReferenceNet(nn.Module):
    """``forward(scene_latent (B,4,h,w), image_embeds (B,1,D)) -> ReferenceBank {block name: (B, h*w, C)}``.

    Runs ``self.unet`` (a diffusers ``UNet2DConditionModel``) at timestep 0 on
    :func:`reference_input`. The U-Net runs to the end (diffusers has no early exit); the tail after
    the last writer's input never influences the bank and is listed by
    :meth:`non_influencing_parameter_names` so training leaves it frozen.
    """

    def __init__(self, config: DynaSceneConfig):
        super().__init__()
        self.config = config
        self.control = ControlState()
        self.unet = UNet2DConditionModel(**config.unet)
        plain = ChunkedAttnProcessor()
        positions = config.spatial_position is not None
        for name, module in self.unet.named_modules():
            if name.endswith(".attn1"):
                module.set_processor(ReferenceWriteProcessor(name.rsplit(".", 1)[0], self.control, positions))
            elif name.endswith(".attn2"):
                module.set_processor(plain)

    def writer_block_names(self) -> list[str]:
        """Spatial transformer blocks whose ``norm1`` output goes into the bank, in forward order."""
        names = [n.rsplit(".", 1)[0] for n, _ in self.unet.named_modules() if n.endswith(".attn1")]
        stage = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}  # module registration order differs
        return sorted(names, key=lambda n: stage[n.split(".", 1)[0]])

    def non_influencing_parameter_names(self) -> set[str]:
        """Names (relative to this module) of parameters that cannot influence the bank.

        The bank's last entry is the ``norm1`` output of the last transformer block of the last up
        block; everything computed from it onward is the tail: that block's ``attn1``, ``attn2``,
        ``norm2``, ``norm3``, ``ff``, its transformer's ``proj_out``, later up-block layers (none in
        SD1.5), ``conv_norm_out`` and ``conv_out``.
        """
        last = self.writer_block_names()[-1]
        transformer = last.split(".transformer_blocks.")[0]
        up_block = transformer.split(".attentions.")[0]
        tail = set()
        for name, _ in self.named_parameters():
            local = name.removeprefix("unet.")
            if local.startswith(last + ".") and not local.startswith(last + ".norm1."):
                tail.add(name)
            elif local.startswith((transformer + ".proj_out.", up_block + ".upsamplers.",
                                   "conv_norm_out.", "conv_out.")):
                tail.add(name)
        return tail

    def enable_gradient_checkpointing(self) -> None:
        """Recomputation during backward sees this call's token grid (the position code) and does not write the
        bank again."""
        self.unet.enable_gradient_checkpointing(gradient_checkpointing_func=checkpoint_with_state(self.control))

    def disable_gradient_checkpointing(self) -> None:
        self.unet.disable_gradient_checkpointing()

    def forward(self, scene_latent: torch.Tensor, image_embeds: torch.Tensor) -> ReferenceBank:
        dim, channels = self.config.unet["cross_attention_dim"], self.config.latent_channels
        if scene_latent.ndim != 4 or scene_latent.shape[1] != channels:
            raise ValueError(f"scene latent must be (B, {channels}, h, w), got {tuple(scene_latent.shape)}")
        x = reference_input(scene_latent)
        if image_embeds.ndim != 3 or image_embeds.shape[0] != x.shape[0] or image_embeds.shape[2] != dim:
            raise ValueError(f"image_embeds must be ({x.shape[0]}, 1, {dim}), got {tuple(image_embeds.shape)}")
        bank = ReferenceBank(grid=level_sizes(*x.shape[-2:], len(self.config.unet["block_out_channels"])))
        self.control.bank, self.control.grid = bank, bank.grid
        try:
            timestep = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            self.unet(x.to(self.unet.dtype), timestep, encoder_hidden_states=image_embeds)
        finally:
            self.control.clear()
        return bank
