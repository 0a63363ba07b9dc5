"""How DynaScene's conditions are built from pixels — shared by training and inference.

One place for: the latent codec (VAE encode/decode in frame chunks, scaling 0.18215), the
generation mask at latent resolution and the 9-channel denoiser input in SD-inpainting order
``[noisy latent | generation mask | foreground latent]``. The final composite is
:mod:`dynascene_core.compositing`.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

LATENT_SCALE = 0.18215
VAE_DOWNSCALE = 8


class LatentCodec(Protocol):
    """Pixels ``(N, 3, H, W)`` in [0, 1] ⇄ scaled latents ``(N, 4, H/8, W/8)``."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


class DiffusersVAECodec:
    """:class:`LatentCodec` over a diffusers ``AutoencoderKL``; encodes to the posterior mean
    (deterministic, identical in training and inference)."""

    def __init__(self, vae, scaling_factor: float = LATENT_SCALE):
        self.vae = vae
        self.scaling_factor = scaling_factor

    def _param(self) -> torch.Tensor:
        return next(self.vae.parameters())

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        p = self._param()
        x = pixels.to(p.device, p.dtype) * 2 - 1
        return self.vae.encode(x).latent_dist.mean * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        p = self._param()
        x = self.vae.decode(latents.to(p.device, p.dtype) / self.scaling_factor).sample
        return (x.float() + 1).div_(2).clamp_(0, 1)


def resize_cover_crop(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N, C, h, w)`` → ``(N, C, height, width)``: resize (bicubic, antialiased) to cover the target
    with the aspect kept, then centre-crop — the geometry ``CameraTrajectory.for_resolution`` assumes."""
    h, w = images.shape[-2:]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        lo, hi = images.amin(), images.amax()  # bicubic overshoot clamped to the input's range (no host sync)
        images = F.interpolate(images.float(), size=(new_h, new_w), mode="bicubic", antialias=True,
                               align_corners=False).clamp_(lo, hi)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return images[..., top:top + height, left:left + width]


def encode_frames(codec: LatentCodec, frames: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """``(F, 3, H, W)`` → ``(F, 4, h, w)`` float32, encoding ``chunk`` frames at a time."""
    if chunk < 1:
        raise ValueError(f"VAE chunk size must be >= 1, got {chunk}")
    return torch.cat([codec.encode(frames[i:i + chunk]).float() for i in range(0, len(frames), chunk)])


def decode_latents(codec: LatentCodec, latents: torch.Tensor, chunk: int = 8, device=None) -> torch.Tensor:
    """``(F, 4, h, w)`` → ``(F, 3, H, W)`` float32 in [0, 1] on ``device`` (default: the latents')."""
    if chunk < 1:
        raise ValueError(f"VAE chunk size must be >= 1, got {chunk}")
    device = latents.device if device is None else device
    return torch.cat([codec.decode(latents[i:i + chunk]).float().to(device) for i in range(0, len(latents), chunk)])


def generation_mask(alpha: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Human alpha ``(F, 1, H, W)`` (1 = human) → generation mask ``(F, 1, h, w)`` (1 = background to
    generate), resized to latent resolution by area averaging so thin edges stay partly masked."""
    return 1.0 - F.interpolate(alpha.float(), size=latent_size, mode="area")


MASKED_PIXEL = 0.5
"""Value of masked-out pixels in [0, 1]: 0 in the VAE's [-1, 1] range (mid grey), the masked-image
convention SD1.5-inpainting was trained with — not 0 in [0, 1] (black)."""


def foreground_pixels(frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The foreground video the model sees ``(F, 3, H, W)`` in [0, 1]: the human (alpha 1) kept, the
    background (alpha 0) set to :data:`MASKED_PIXEL`, soft edges blended between the two — i.e.
    ``(2·frames − 1)·alpha`` in the VAE's [-1, 1] range, as SD-inpainting's masked image."""
    return frames * alpha + MASKED_PIXEL * (1 - alpha)


def denoiser_input(noisy: torch.Tensor, gen_mask: torch.Tensor, fg_latent: torch.Tensor) -> torch.Tensor:
    """Concatenate the 9-channel U-Net input along channels (dim 1); works for ``(B, C, F, h, w)`` and
    ``(N, C, h, w)`` alike: ``[noisy (4) | generation mask (1) | foreground latent (4)]``."""
    return torch.cat([noisy, gen_mask.to(noisy.dtype), fg_latent.to(noisy.dtype)], dim=1)

