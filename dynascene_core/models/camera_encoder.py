"""Camera encoder: Plücker embeddings -> multi-scale camera features for the camera adaptors.

Follows CameraCtrl's pose encoder (hehao13/CameraCtrl ``cameractrl/models/pose_adaptor.py``), with
diffusers building blocks and the module names fixed in docs/ARCHITECTURE.md. Findings from
CameraCtrl's code that DESIGN.md leaves implicit:

- its released config uses ``sk=True, ksize=1, use_conv=False``: the ResNet block's ``in_conv`` and
  ``block2`` are 1x1, ``block1`` is 3x3, there is no separate skip conv, and downsampling is a
  2x2 average pool (no conv);
- the temporal block is a ``TemporalTransformerBlock`` with a single temporal self-attention: its
  own LayerNorm (``norms.0``) -> sinusoidal positions added after the norm -> attention (no qkv bias)
  -> residual, then LayerNorm (``ff_norm``) -> GEGLU feed-forward -> residual. There is no outer
  GroupNorm/proj_in/proj_out; diffusers' ``BasicTransformerBlock`` without cross-attention is the
  same computation (``norm1``, ``attn1``, ``norm3``, ``ff``);
- CameraCtrl's positional table has 16 rows (it trains on 16 frames); ours is regenerated with
  ``max_seq_length`` rows from the same formula, so the first 16 rows are identical.

Latent sizes not divisible by 8 (768x432 -> 96x54): the U-Net halves with stride-2 convs, i.e. with
ceil (54 -> 27 -> 14 -> 7), while CameraCtrl's floor pooling would give 27 -> 13 -> 6. We pool with
``AvgPool2d(2, ceil_mode=True)`` so every scale has exactly the U-Net's size; the last, partial window
averages only the rows that exist. For even sizes this is identical to CameraCtrl's pooling.
"""

from __future__ import annotations

import torch
from diffusers.models.attention import BasicTransformerBlock
from torch import nn

from .attention import ChunkedAttnProcessor


def level_sizes(height: int, width: int, levels: int = 4) -> list[tuple[int, int]]:
    """Spatial size of each U-Net level for a latent of ``height x width`` (ceil halving)."""
    sizes = [(height, width)]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class CameraResnetBlock(nn.Module):
    """[AvgPool2d(2, ceil) if downscaling] -> [1x1 in_conv if channels change] -> 3x3 block1 -> ReLU
    -> 1x1 block2 -> residual. No norms (CameraCtrl)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool):
        super().__init__()
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if downsample else None
        self.in_conv = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        self.block1 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act = nn.ReLU()
        self.block2 = nn.Conv2d(out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if self.in_conv is not None:
            x = self.in_conv(x)
        return x + self.block2(self.act(self.block1(x)))


class CameraEncoderBlock(nn.Module):
    """One ResNet block followed by temporal self-attention over the frames of each pixel."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, heads: int, max_seq_length: int):
        super().__init__()
        self.resnet = CameraResnetBlock(in_channels, out_channels, downsample)
        self.temporal = BasicTransformerBlock(
            out_channels, heads, out_channels // heads, cross_attention_dim=None, activation_fn="geglu",
            attention_bias=False, positional_embeddings="sinusoidal", num_positional_embeddings=max_seq_length)
        self.temporal.attn1.set_processor(ChunkedAttnProcessor())

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """``(B*F, C, h, w)`` -> ``(B*F, C', h', w')``; frames inner."""
        x = self.resnet(x)
        bf, c, h, w = x.shape
        frames = bf // batch
        tokens = x.view(batch, frames, c, h, w).permute(0, 3, 4, 1, 2).reshape(batch * h * w, frames, c)
        tokens = self.temporal(tokens)
        return tokens.view(batch, h, w, frames, c).permute(0, 3, 4, 1, 2).reshape(bf, c, h, w)


class CameraEncoder(nn.Module):
    """Plücker ``(B, F, 6, H, W)`` (or ``(B*F, 6, H, W)`` with ``num_frames``) -> list of
    ``(B, C_i, F, h_i, w_i)``, one per U-Net level, ``h_0 = H / downscale_factor`` and ceil halving.

    PixelUnshuffle(8) -> 3x3 ``conv_in`` -> 4 scales of ``blocks_per_scale`` x [ResNet block +
    temporal attention]; scales 1..3 start by halving. Keys: ``conv_in``, ``scales.{i}.{j}.resnet.*``,
    ``scales.{i}.{j}.temporal.*``.
    """

    def __init__(self, in_channels: int = 6, downscale_factor: int = 8, channels=(320, 640, 1280, 1280),
                 blocks_per_scale: int = 1, num_attention_heads: int = 8, max_seq_length: int = 32):
        super().__init__()
        self.in_channels = in_channels
        self.downscale_factor = downscale_factor
        self.channels = list(channels)
        self.max_seq_length = max_seq_length
        self.gradient_checkpointing = False
        self.unshuffle = nn.PixelUnshuffle(downscale_factor)
        self.conv_in = nn.Conv2d(in_channels * downscale_factor**2, self.channels[0], 3, padding=1)
        scales, previous = [], self.channels[0]
        for i, c in enumerate(self.channels):
            blocks = []
            for j in range(blocks_per_scale):
                blocks.append(CameraEncoderBlock(previous, c, downsample=(i > 0 and j == 0),
                                                 heads=num_attention_heads, max_seq_length=max_seq_length))
                previous = c
            scales.append(nn.ModuleList(blocks))
        self.scales = nn.ModuleList(scales)

    def enable_gradient_checkpointing(self) -> None:
        self.gradient_checkpointing = True

    def disable_gradient_checkpointing(self) -> None:
        self.gradient_checkpointing = False

    def forward(self, plucker: torch.Tensor, num_frames: int | None = None) -> list[torch.Tensor]:
        if plucker.ndim == 5:
            batch, frames = plucker.shape[:2]
            x = plucker.flatten(0, 1)
        elif plucker.ndim == 4 and num_frames:
            frames, x = num_frames, plucker
            if x.shape[0] % frames:
                raise ValueError(f"camera encoder: batch*frames {x.shape[0]} is not a multiple of num_frames {frames}")
            batch = x.shape[0] // frames
        else:
            raise ValueError(f"camera encoder expects Plücker (B, F, {self.in_channels}, H, W) or (B*F, ...) with "
                             f"num_frames, got shape {tuple(plucker.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"camera encoder expects {self.in_channels} Plücker channels, got {x.shape[1]}")
        d = self.downscale_factor
        if x.shape[-2] % d or x.shape[-1] % d:
            raise ValueError(f"Plücker size {tuple(x.shape[-2:])} must be divisible by {d} (pixel resolution)")
        if frames > self.max_seq_length:
            raise ValueError(f"camera encoder: {frames} frames exceed max_seq_length {self.max_seq_length}; "
                             f"use context windows or a config with a larger max_seq_length")
        x = self.conv_in(self.unshuffle(x.to(self.conv_in.weight.dtype)))
        features = []
        for blocks in self.scales:
            for block in blocks:
                if self.gradient_checkpointing and torch.is_grad_enabled():
                    x = torch.utils.checkpoint.checkpoint(block, x, batch, use_reentrant=False)
                else:
                    x = block(x, batch)
            c, h, w = x.shape[1:]
            features.append(x.view(batch, frames, c, h, w).transpose(1, 2))
        return features
