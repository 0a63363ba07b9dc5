"""A fixed, exactly invertible latent codec for small models: pixel patches as latent channels.

A trained SD VAE is far too large for the ``small`` model, and a random-weight VAE destroys the image,
so nothing could be learnt through it. :class:`PatchCodec` instead maps each ``p × p`` pixel patch to
``3·p²`` latent channels (``PixelUnshuffle``) of the pixels in [-1, 1], times a scale factor: no
weights, nothing to train, bit-exact inverse up to float rounding. It is the ``vae`` network of a
config whose ``codec`` is ``{"type": "patch", "patch_size": p}``, so training, ``generate`` and the
ComfyUI loaders all get it from the same config. Like the SD masked-image convention, a background
set to 0 in [-1, 1] encodes to an all-zero latent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CODEC_TYPES = ("patch",)


class PatchCodec(nn.Module):
    """:class:`~dynascene_core.conditioning.LatentCodec` with no weights: pixels ``(N, 3, H, W)`` in
    [0, 1] ⇄ latents ``(N, 3·p², H/p, W/p)`` = ``scaling_factor · unshuffle(2·pixels − 1)``."""

    def __init__(self, patch_size: int, scaling_factor: float):
        super().__init__()
        if patch_size < 1:
            raise ValueError(f"patch codec: patch_size must be >= 1, got {patch_size}")
        self.patch_size = patch_size
        self.scaling_factor = scaling_factor
        self.latent_channels = 3 * patch_size ** 2

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-2] % p or pixels.shape[-1] % p:
            raise ValueError(f"patch codec: pixels must be (N, 3, H, W) with H, W multiples of {p}, "
                             f"got {tuple(pixels.shape)}")
        return F.pixel_unshuffle(pixels.float() * 2 - 1, p) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"patch codec: latents must be (N, {self.latent_channels}, h, w), "
                             f"got {tuple(latents.shape)}")
        pixels = F.pixel_shuffle(latents.float() / self.scaling_factor, self.patch_size)
        return pixels.add_(1).div_(2).clamp_(0, 1)
